/**
 * The console's clients: pre-registered ones from the configuration, self-registered ones from
 * the store (`registered-client:`), and the metadata documents in the cache (`cimd-doc:`) with
 * their fingerprints (SEC-23) and the trust rule that admits each under the configuration in
 * effect. And `cimd inspect` for any URL, as the CLI command: read-only on the cache, under the
 * gateway's own fetch rules (SSRF checks, byte cap, timeouts), audited with the admin.
 */
import { contextOf, type AuditTrail } from '../../audit/events.js'
import type { GatewayConfig } from '../../config/load.js'
import { decideTrust, type TrustEntry } from '../../policy/cimd-trust.js'
import { storeKeys } from '../../store/keys.js'
import type { Store } from '../../store/store.js'
import type { CachedDocument } from '../clients/cimd/cache.js'
import { SafeFetcher } from '../clients/cimd/fetch.js'
import { fingerprintsOf } from '../clients/cimd/fingerprint.js'
import { inspectClientId } from '../clients/cimd/inspect.js'
import { RegisteredClients } from '../clients/registered.js'
import type { AdminRoutes } from './routes.js'
import { cimdInspectPage, clientsPage, type CimdRow, type RegisteredRow } from './views/clients.js'

/** A page, not an export: past this many records the operator uses the CLI. */
const MAX_ROWS = 500
/** A URL longer than this is no client id the gateway would accept (cimd-url-rules) and is not inspected. */
const MAX_URL = 2048

export function registerClientsSection(routes: AdminRoutes, deps: { config: GatewayConfig; store: Store; audit: AuditTrail }): void {
  const { config, store, audit } = deps

  routes.page('/admin/clients', async (admin) => {
    const statics = config.clients.map((c) => ({
      clientId: c.clientId,
      name: c.name,
      authMethod: c.tokenEndpointAuthMethod,
      grantTypes: c.grantTypes,
      redirectUris: c.redirectUris ?? [],
    }))
    return clientsPage(admin, {
      statics,
      registered: config.registration.enabled ? await registeredRows(new RegisteredClients(store, config.registration)) : undefined,
      cimd: config.cimd.enabled ? await cachedDocuments(store, config) : undefined,
    })
  })

  routes.page('/admin/cimd', async (admin) => cimdInspectPage(admin, { url: '' }))

  routes.form('/admin/cimd', async (admin, form, request) => {
    const url = (form.url ?? '').trim().slice(0, MAX_URL)
    const fetcher = new SafeFetcher({ ...config.cimd.fetch, allowPrivateAddresses: config.cimd.allowPrivateAddresses })
    try {
      const result = await inspectClientId(url, { config, store, fetcher })
      audit.record({ type: 'admin.cimd_inspected', actor: admin.actor, clientId: url, accepted: result.accepted }, contextOf(request))
      return cimdInspectPage(admin, { url, result })
    } finally {
      await fetcher.close()
    }
  })
}

async function registeredRows(registered: RegisteredClients): Promise<RegisteredRow[]> {
  const rows: RegisteredRow[] = []
  for await (const r of registered.list()) {
    rows.push({ clientId: r.clientId, name: r.metadata.client_name, authMethod: r.metadata.token_endpoint_auth_method, redirectUris: r.metadata.redirect_uris, issuedAt: r.issuedAt })
    if (rows.length === MAX_ROWS) break
  }
  return rows.sort((a, b) => b.issuedAt - a.issuedAt)
}

async function cachedDocuments(store: Store, config: GatewayConfig): Promise<CimdRow[]> {
  const trust = config.cimd.trust
  const policy = { allow: trust.allow as TrustEntry[], deny: trust.deny as TrustEntry[], any: trust.any }
  const rows: CimdRow[] = []
  for await (const key of store.keys(storeKeys.cimdDocument(''))) {
    const stored = await store.get(key)
    if (stored === undefined) continue
    const record = JSON.parse(stored) as CachedDocument
    const prints = fingerprintsOf(record.document)
    const decision = decideTrust(policy, record.clientId)
    rows.push({
      clientId: record.clientId,
      name: typeof record.document.client_name === 'string' ? record.document.client_name : undefined,
      fetchedAt: record.fetchedAt,
      expiresAt: record.expiresAt,
      fingerprint: prints.fingerprint,
      displayFingerprint: prints.displayFingerprint,
      trust: decision.allowed ? `admitted by ${decision.rule}` : `now refused by ${decision.rule}`,
      document: JSON.stringify(record.document, null, 2),
    })
    if (rows.length === MAX_ROWS) break
  }
  return rows.sort((a, b) => b.fetchedAt - a.fetchedAt)
}
