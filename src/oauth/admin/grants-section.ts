/**
 * The console's grants: every live grant (a walk of the store, as `gatehouse grants list`), found
 * by person or client, and revoked as `gatehouse grants revoke` does: `grant.revoked` by
 * `operator` with the admin as actor (§11.4 REV-01: effective at every replica within a second).
 */
import { contextOf, type AuditTrail } from '../../audit/events.js'
import { PublicError } from '../../errors.js'
import type { Grants } from '../grants/grants.js'
import { singleValued } from '../params.js'
import type { AdminRoutes } from './routes.js'
import { grantsPage, type GrantRow } from './views/grants.js'

/** A page of an admin search; more than this and the operator narrows the search. */
const MAX_ROWS = 200

export function registerGrantsSection(routes: AdminRoutes, deps: { grants: Grants; audit: AuditTrail }): void {
  const { grants, audit } = deps

  routes.page('/admin/grants', async (admin, request) => {
    const query = singleValued(request.query)
    const user = (query.user ?? '').trim().toLowerCase()
    const client = (query.client ?? '').trim().toLowerCase()
    const rows: GrantRow[] = []
    let more = false
    for await (const g of grants.list()) {
      if (user && !g.sub.toLowerCase().includes(user) && !(g.email ?? '').toLowerCase().includes(user)) continue
      if (client && !g.clientId.toLowerCase().includes(client)) continue
      if (rows.length === MAX_ROWS) {
        more = true
        break
      }
      rows.push({ ...g, dpopBound: g.dpopJkt !== undefined })
    }
    rows.sort((a, b) => b.createdAt - a.createdAt)
    const revoked = query.revoked
    return grantsPage(admin, {
      user: query.user ?? '',
      client: query.client ?? '',
      rows,
      more,
      ...(revoked !== undefined && { notice: `Grant ${revoked.slice(0, 64)} revoked.` }),
    })
  })

  routes.form('/admin/grants/revoke', async (admin, form, request, reply) => {
    const grant = form.grant_id ? await grants.get(form.grant_id) : undefined
    if (!grant) throw new PublicError('not_found', 404, 'this grant does not exist or was already revoked')
    await grants.revoke(grant.grantId)
    audit.record({ type: 'grant.revoked', grantId: grant.grantId, by: 'operator', actor: admin.actor, sub: grant.sub, clientId: grant.clientId }, contextOf(request))
    const back = new URLSearchParams({ revoked: grant.grantId, ...(form.user && { user: form.user }), ...(form.client && { client: form.client }) })
    return reply.header('cache-control', 'no-store').redirect(`/admin/grants?${back}`, 303)
  })
}
