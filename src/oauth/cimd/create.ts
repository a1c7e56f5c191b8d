/** Wires CIMD into the OAuth plugin: the hardened fetcher and the registry, closed with the app. */
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../../config/load.js'
import type { Store } from '../../store/store.js'
import { SafeFetcher } from './fetch.js'
import { CimdClients } from './resolve.js'

/** The CIMD client source when `cimd.enabled`, else undefined. */
export function createCimdClients(app: FastifyInstance, config: GatewayConfig, store: Store): CimdClients | undefined {
  const cimd = config.cimd
  if (!cimd.enabled) return undefined
  const fetcher = new SafeFetcher({ ...cimd.fetch, allowPrivateAddresses: cimd.allowPrivateAddresses })
  app.addHook('onClose', async () => fetcher.close())
  return new CimdClients({ config: cimd, store, fetcher, selfOrigin: new URL(config.issuer).origin, log: app.log })
}
