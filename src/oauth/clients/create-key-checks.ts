/**
 * Wires the parts that fetch and check client keys into the OAuth plugin: one hardened fetcher
 * (metadata documents and every jwks_uri), one per-host fetch limit shared by both, the CIMD
 * client source when `cimd.enabled`, and the private_key_jwt assertion checks when any client
 * can use them (CIMD clients, or pre-registered clients given keys). The fetcher is closed with
 * the app.
 */
import type { FastifyInstance } from 'fastify'
import type { AuditTrail } from '../../audit/events.js'
import type { GatewayConfig } from '../../config/load.js'
import type { Store } from '../../store/store.js'
import { tokenEndpointOf } from '../endpoints.js'
import { ClientAssertions } from './assertion.js'
import { SafeFetcher } from './cimd/fetch.js'
import { ClientKeySets } from './cimd/jwks.js'
import { FetchRateLimiter } from './cimd/rate-limit.js'
import { CimdClients } from './cimd/resolve.js'

export interface ClientKeyParts {
  /** The metadata-document client source; absent when CIMD is off. */
  cimdClients?: CimdClients
  /** private_key_jwt checks for the token, revocation and introspection endpoints; absent when no client can use them. */
  assertions?: ClientAssertions
}

export function createClientKeyChecks(app: FastifyInstance, config: GatewayConfig, store: Store, audit?: AuditTrail): ClientKeyParts {
  const cimd = config.cimd
  const staticKeys = config.clients.some((c) => c.tokenEndpointAuthMethod === 'private_key_jwt')
  if (!cimd.enabled && !staticKeys) return {}
  const fetcher = new SafeFetcher({ ...cimd.fetch, allowPrivateAddresses: cimd.allowPrivateAddresses })
  app.addHook('onClose', async () => fetcher.close())
  const limiter = new FetchRateLimiter(store, cimd.fetchRateLimit)
  const log = app.log
  const keySets = new ClientKeySets({ config: cimd, store, fetcher, limiter, log })
  const assertions = new ClientAssertions({
    issuer: config.issuer,
    tokenEndpoint: tokenEndpointOf(config.issuer),
    settings: cimd.privateKeyJwt,
    keySets,
    store,
  })
  if (!cimd.enabled) return { assertions }
  const cimdClients = new CimdClients({ config: cimd, store, fetcher, limiter, selfOrigin: new URL(config.issuer).origin, log, audit })
  return { cimdClients, assertions }
}
