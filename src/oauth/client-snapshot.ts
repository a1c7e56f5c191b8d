/**
 * The client as it was when a code was issued, carried in the code record (SEC-22, ATL-07):
 * for a metadata-document client the token endpoint authenticates and applies the rules of
 * this snapshot, without fetching the document again, so a document changed between
 * /authorize and /token cannot change the rules mid-flow.
 */
import type { ClientAuthMethod, OAuthClient } from './clients.js'

export interface ClientSnapshot {
  clientId: string
  source: OAuthClient['source']
  name: string
  redirectUris: string[]
  authMethod: ClientAuthMethod
  grantTypes: string[]
  verifiedAs: string
}

/** Snapshots are taken of CIMD clients only: the other sources are the gateway's own records. */
export function snapshotOf(client: OAuthClient): ClientSnapshot | undefined {
  if (client.source !== 'cimd') return undefined
  return {
    clientId: client.clientId,
    source: client.source,
    name: client.name,
    redirectUris: [...client.redirectUris],
    authMethod: client.authMethod,
    grantTypes: [...client.grantTypes],
    verifiedAs: client.verifiedAs,
  }
}

export function clientFromSnapshot(s: ClientSnapshot): OAuthClient {
  return { ...s, verifySecret: () => false }
}
