/**
 * Wires CIMD into the OAuth plugin: one hardened fetcher (documents and jwks_uri), one per-host
 * fetch limit shared by both, the client registry and the private_key_jwt assertion checks;
 * the fetcher is closed with the app.
 */
import type { FastifyInstance } from 'fastify'
import type { AuditTrail } from '../../../audit/events.js'
import type { GatewayConfig } from '../../../config/load.js'
import type { Store } from '../../../store/store.js'
import { ClientAssertions } from '../assertion.js'
import { tokenEndpointOf } from '../../endpoints.js'
import { SafeFetcher } from './fetch.js'
import { ClientKeySets } from './jwks.js'
import { FetchRateLimiter } from './rate-limit.js'
import { CimdClients } from './resolve.js'

export interface CimdParts {
  clients: CimdClients
  /** private_key_jwt checks for the token, revocation and introspection endpoints. */
  assertions: ClientAssertions
}

/** The CIMD client source and assertion checks when `cimd.enabled`, else undefined. */
export function createCimdClients(app: FastifyInstance, config: GatewayConfig, store: Store, audit?: AuditTrail): CimdParts | undefined {
  const cimd = config.cimd
  if (!cimd.enabled) return undefined
  const fetcher = new SafeFetcher({ ...cimd.fetch, allowPrivateAddresses: cimd.allowPrivateAddresses })
  app.addHook('onClose', async () => fetcher.close())
  const limiter = new FetchRateLimiter(store, cimd.fetchRateLimit)
  const log = app.log
  const clients = new CimdClients({ config: cimd, store, fetcher, limiter, selfOrigin: new URL(config.issuer).origin, log, audit })
  const keySets = new ClientKeySets({ config: cimd, store, fetcher, limiter, log })
  const assertions = new ClientAssertions({
    issuer: config.issuer,
    tokenEndpoint: tokenEndpointOf(config.issuer),
    settings: cimd.privateKeyJwt,
    keySets,
    store,
  })
  return { clients, assertions }
}
