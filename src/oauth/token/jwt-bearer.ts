/**
 * grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer with an ID-JAG (RFC 7523 §2.1; SEP-990
 * Enterprise-Managed Authorization; draft-ietf-oauth-identity-assertion-authz-grant §4.3): an
 * agent whose access the company's IdP governs presents the grant the IdP signed for it, instead
 * of sending the person to the browser.
 *
 * - Confidential clients only, named by the issuer's `clients` and by the assertion's `client_id`
 *   (XAA-04, ID-JAG §9.1); the assertion checks are id-jag.ts (XAA-01..03, XAA-06).
 * - The assertion's `resource` names the audience (XAA-05); a `resource` parameter must agree.
 * - Scopes (RFC 6749 §3.3 on the `scope` claim): what the IdP granted ∩ what the resource knows,
 *   narrowed by a `scope` parameter; nothing left of a non-empty request is invalid_scope.
 * - The person is `<issuer id>:<sub>` with the mapped email and groups, and the resource's access
 *   rules apply exactly as after a login (XAA-07). No refresh token: the agent asks its IdP again.
 * - Every other failure is invalid_grant with the reason in the log, never a 5xx (XAA-08).
 */
import type { AuditTrail } from '../../audit/events.js'
import type { GatewayConfig } from '../../config/load.js'
import { JWT_BEARER_GRANT } from '../../config/enterprise-schema.js'
import { InvalidGrantError, InvalidRequestError, InvalidScopeError, InvalidTargetError, OAuthError, UnauthorizedClientError } from '../../errors.js'
import { mayAccess } from '../../policy/access-rules.js'
import type { Grants } from '../grants/grants.js'
import { resolveResource } from '../resource-indicator.js'
import type { GrantHandler } from './grant.js'
import { IdJagRejected, type IdJagVerifier } from './id-jag.js'
import type { TokenIssuer } from './issue.js'

export function jwtBearerGrant(config: GatewayConfig, grants: Grants, issuer: TokenIssuer, verifier: IdJagVerifier, audit: AuditTrail): GrantHandler {
  return async ({ form, client, context, dpopJkt }) => {
    if (!client.grantTypes.includes(JWT_BEARER_GRANT) || client.authMethod === 'none') {
      throw new UnauthorizedClientError('this client may not use the jwt-bearer grant')
    }
    if (!form.assertion) throw new InvalidRequestError('the assertion parameter is missing')
    const refuse = (check: string, detail: string) => new InvalidGrantError('the assertion is not acceptable', { detail: `id-jag ${check}: ${detail}` })
    const jag = await verifier.verify(form.assertion).catch((err: unknown) => {
      throw err instanceof IdJagRejected ? refuse(err.check, err.detail) : err
    })
    if (!jag.issuer.clients.includes(client.clientId)) throw refuse('client', `issuer ${jag.issuer.id} does not list this client`)
    if (jag.clientId !== client.clientId) throw refuse('client_id', 'the assertion names another client')
    const resource = (() => {
      try {
        return resolveResource(config, jag.resource)
      } catch (err) {
        if (err instanceof OAuthError) throw refuse('resource', 'the assertion names no resource of this gateway')
        throw err
      }
    })()
    if (form.resource !== undefined && resolveResource(config, form.resource).id !== resource.id) {
      throw new InvalidTargetError('the assertion does not cover this resource')
    }
    const known = resource.scopes.map((s) => s.name)
    const granted = jag.scopes === undefined ? known : known.filter((s) => jag.scopes!.includes(s))
    const asked = form.scope?.split(' ').filter(Boolean)
    const scopes = asked === undefined ? granted : granted.filter((s) => asked.includes(s))
    if (scopes.length === 0 && ((asked?.length ?? 0) > 0 || (jag.scopes?.length ?? 0) > 0)) {
      throw new InvalidScopeError('none of the requested scopes may be granted for this resource')
    }
    const person = {
      sub: `${jag.issuer.id}:${jag.sub}`,
      ...(jag.email !== undefined && { email: jag.email }),
      ...(jag.groups !== undefined && { groups: jag.groups }),
    }
    if (!mayAccess(resource.access, person)) {
      audit.record({ type: 'access.refused', sub: person.sub, provider: jag.issuer.id, clientId: client.clientId, resource: resource.id }, context)
      throw new InvalidGrantError('the user is not allowed to use this resource', { detail: `id-jag access rules refuse ${person.sub}` })
    }
    // Last, so that a request refused above leaves the assertion usable (XAA-06).
    await verifier.consume(jag).catch((err: unknown) => {
      throw err instanceof IdJagRejected ? refuse(err.check, err.detail) : err
    })
    const grant = grants.newGrant({ ...person, clientId: client.clientId, resourceId: resource.id, scopes })
    return issuer.answer(JWT_BEARER_GRANT, grant, scopes, resource, undefined, context, dpopJkt)
  }
}
