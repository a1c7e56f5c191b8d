/**
 * `gatehouse cimd inspect URL`: the decision for one client id, step by step, as the gateway
 * would take it (URL rules → trust → cache → fetch → document → policy → effective client),
 * from `CimdClients.resolve(id, trace)`.
 *
 * The inspection reads the configured store's cache but never writes it: a fetch made from the
 * operator's machine (another network, another resolver) must not become the deployment's cached
 * document, nor a failure there its negative cache. What the gateway would have cached is shown
 * as such. The fetch runs under the configured rules (same byte cap, timeouts, address checks,
 * development switches); TLS trust is this process's (system store and NODE_EXTRA_CA_CERTS).
 *
 * For a private_key_jwt client it also shows where the keys come from and their kids: inline
 * keys as they are, a jwks_uri fetched under the same rules (its own byte cap), read-only too.
 */
import type { GatewayConfig } from '../../../config/load.js'
import type { Store } from '../../../store/store.js'
import type { OAuthClient } from '../registry.js'
import type { FetchedJson } from './fetch.js'
import { ClientKeySets, KeySetError } from './jwks.js'
import { FetchRateLimiter } from './rate-limit.js'
import type { CimdFetcher } from './collaborators.js'
import { CimdRefusal } from './refusal.js'
import { CimdClients, type TraceStep } from './resolve.js'
import { looksLikeUrlClientId } from '../../../policy/cimd-url-rules.js'

export interface Inspection {
  /** True when the gateway would accept this client id as it is configured now. */
  accepted: boolean
  /** The report, one line each. */
  lines: string[]
}

/** Reads pass through; writes are dropped, so inspecting never changes what the gateway sees. */
export function readOnlyStore(store: Store): Store {
  return {
    get: (key) => store.get(key),
    set: async () => {},
    setIfAbsent: async () => false,
    take: (key) => store.get(key),
    compareAndSet: async () => false,
    increment: async () => ({ count: 0, ttlMs: 0 }),
    delete: async () => {},
    keys: (prefix) => store.keys(prefix),
    append: async () => '',
    readLog: (key, afterId, limit) => store.readLog(key, afterId, limit),
    addMember: async () => {},
    members: (key) => store.members(key),
    removeMember: async () => {},
    ping: () => store.ping(),
    close: async () => {},
  }
}

const LABEL_WIDTH = 10
const row = (label: string, text: string) => `${label.padEnd(LABEL_WIDTH)} ${text}`

export async function inspectClientId(
  clientId: string,
  deps: { config: GatewayConfig; store: Store; fetcher: CimdFetcher },
): Promise<Inspection> {
  const { config } = deps
  const cimd = config.cimd
  const lines = [row('client id', clientId)]
  if (!looksLikeUrlClientId(clientId)) {
    lines.push(row('result', 'NOT A URL CLIENT ID: pre-registered or dynamically registered clients own this id, not CIMD'))
    return { accepted: false, lines }
  }
  lines.push(
    row('settings', [
      cimd.enabled ? 'cimd enabled' : 'cimd DISABLED (cimd.enabled is false): the gateway refuses every URL client id',
      `store ${config.store.type}`,
      ...(cimd.allowPrivateAddresses ? ['allowPrivateAddresses (development)'] : []),
      ...(cimd.allowHttp ? ['allowHttp (development)'] : []),
      ...(cimd.trust.any ? ['trust.any'] : []),
      ...(cimd.cache.enabled ? [] : ['cache disabled (development)']),
    ].join('; ')),
  )

  let fetched: FetchedJson | undefined
  const fetcher: CimdFetcher = {
    fetchJson: async (url) => (fetched = await deps.fetcher.fetchJson(url)),
  }
  const store = readOnlyStore(deps.store)
  // The read-only store counts nothing, so inspecting never uses up the deployment's fetch limit.
  const limiter = new FetchRateLimiter(store, cimd.fetchRateLimit)
  const clients = new CimdClients({
    config: cimd,
    store,
    fetcher,
    limiter,
    selfOrigin: new URL(config.issuer).origin,
  })
  const trace: TraceStep[] = []
  let client: OAuthClient | undefined
  let refusal: CimdRefusal | undefined
  try {
    client = await clients.resolve(clientId, trace)
  } catch (err) {
    if (!(err instanceof CimdRefusal)) throw err
    refusal = err
  }

  for (const step of trace) {
    let outcome = step.outcome
    if (step.step === 'cache' && /^cached for /.test(outcome)) outcome = `the gateway would have ${outcome} (inspect does not write the cache)`
    lines.push(row(step.step, outcome))
    if (step.step === 'fetch' && fetched && /^fetched /.test(step.outcome)) {
      const headers = [
        fetched.cacheControl !== undefined && `cache-control: ${fetched.cacheControl}`,
        fetched.expires !== undefined && `expires: ${fetched.expires}`,
        fetched.age !== undefined && `age: ${fetched.age}`,
      ].filter(Boolean)
      if (headers.length > 0) lines.push(row('', headers.join('; ')))
    }
  }

  if (refusal) {
    lines.push(row('result', `REFUSED (invalid_client) at step ${refusal.step}, rule ${refusal.rule}`))
    lines.push(row('', `shown to the user: ${refusal.description}`))
    if (refusal.detail !== undefined) lines.push(row('', `log detail: ${refusal.detail}`))
    // The refusal is right in production; on a developer's machine the document server is often
    // on loopback, and the switch that allows it should not have to be looked up.
    if (/not_allowed_address|ip-literal/.test(refusal.rule) && !cimd.allowPrivateAddresses) {
      lines.push(row('hint', 'for a document server on this machine or a private network in DEVELOPMENT: cimd.allowPrivateAddresses: true'))
    }
    return { accepted: false, lines }
  }
  const c = client!
  lines.push(row('result', cimd.enabled ? 'ACCEPTED' : 'would be accepted, but cimd.enabled is false'))
  lines.push(row('client', `name ${JSON.stringify(c.name)}`))
  lines.push(row('', `verified as: ${c.verifiedAs}`))
  lines.push(row('', `redirect_uris: ${c.redirectUris.join(' ')}`))
  lines.push(row('', `grant_types: ${c.grantTypes.join(' ')}`))
  lines.push(row('', `token_endpoint_auth_method: ${c.authMethod}`))
  if (c.keys) {
    const keySets = new ClientKeySets({ config: cimd, store, fetcher: deps.fetcher, limiter })
    if ('jwks' in c.keys) lines.push(row('keys', `jwks in the document`))
    else lines.push(row('keys', `jwks_uri ${c.keys.jwksUri}`))
    if (c.signingAlg !== undefined) lines.push(row('', `token_endpoint_auth_signing_alg: ${c.signingAlg}`))
    try {
      const keys = await keySets.keys(c.clientId, c.keys)
      const kids = keys.map((k) => `${k.kid ?? '(no kid)'} ${k.kty}${typeof k.crv === 'string' ? `/${k.crv}` : ''}${typeof k.alg === 'string' ? ` ${k.alg}` : ''}`)
      lines.push(row('', `${keys.length} key(s): ${kids.join(', ') || 'none'}`))
    } catch (err) {
      if (!(err instanceof KeySetError)) throw err
      // The client itself is valid; assertions would fail until the key set can be read.
      lines.push(row('', `KEY SET NOT USABLE (${err.check}): ${err.detail}`))
    }
  }
  if (c.fingerprint !== undefined) lines.push(row('', `fingerprint: ${c.fingerprint} (display ${c.displayFingerprint})`))
  return { accepted: cimd.enabled, lines }
}
