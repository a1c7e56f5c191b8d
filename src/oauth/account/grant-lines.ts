/**
 * What the account page says about one grant. Pre-registered and self-registered clients are
 * looked up (configuration and store); a metadata-document client is named by its client-ID
 * host, which is what the gateway verified (SEC-24): showing the page never fetches a document.
 */
import type { GatewayConfig } from '../../config/load.js'
import { looksLikeUrlClientId } from '../../policy/cimd-url-rules.js'
import type { ClientRegistry } from '../clients/registry.js'
import type { Grant } from '../grants/grants.js'
import type { AccessLine } from './views.js'

export async function describeGrant(grant: Grant, config: GatewayConfig, clients: ClientRegistry): Promise<AccessLine> {
  const resource = config.resources.find((r) => r.id === grant.resourceId)
  const client = await describeClient(grant.clientId, clients)
  return {
    grantId: grant.grantId,
    ...client,
    clientId: grant.clientId,
    resourceName: resource?.name ?? grant.resourceId,
    resourceUri: resource?.uri ?? '',
    scopes: grant.scopes,
    createdAt: grant.createdAt,
    lastUsedAt: grant.lastUsedAt,
    dpopBound: grant.dpopJkt !== undefined,
  }
}

async function describeClient(clientId: string, clients: ClientRegistry): Promise<{ clientName: string; verifiedAs: string }> {
  if (looksLikeUrlClientId(clientId)) {
    const host = URL.canParse(clientId) ? new URL(clientId).host : clientId
    return { clientName: host, verifiedAs: `client id hosted at ${host}` }
  }
  const client = await clients.find(clientId)
  return client ? { clientName: client.name, verifiedAs: client.verifiedAs } : { clientName: clientId, verifiedAs: 'no longer registered' }
}
