/**
 * The client as it was when a code was issued, carried in the code record (SEC-22, ATL-07):
 * for a metadata-document client the token endpoint authenticates and applies the rules of
 * this snapshot, without fetching the document again, so a document changed between
 * /authorize and /token cannot change the rules mid-flow.
 */
import type { ClientKeySource } from '../../policy/client-public-keys.js'
import type { ClientAuthMethod, OAuthClient } from './registry.js'

/**
 * For a private_key_jwt client the snapshot carries the auth method and the key source as they
 * were (inline keys, or the jwks_uri value), so /token checks the assertion against the keys the
 * document named at /authorize; keys behind that jwks_uri may rotate in between (SEC-22, SEC-34).
 */
export interface ClientSnapshot {
  clientId: string
  source: OAuthClient['source']
  name: string
  redirectUris: string[]
  authMethod: ClientAuthMethod
  grantTypes: string[]
  verifiedAs: string
  keys?: ClientKeySource
  signingAlg?: string
  fingerprint?: string
  displayFingerprint?: string
  dpopBound?: boolean
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
    ...(client.keys !== undefined && { keys: client.keys }),
    ...(client.signingAlg !== undefined && { signingAlg: client.signingAlg }),
    ...(client.fingerprint !== undefined && { fingerprint: client.fingerprint }),
    ...(client.displayFingerprint !== undefined && { displayFingerprint: client.displayFingerprint }),
    ...(client.dpopBound && { dpopBound: true }),
  }
}

export function clientFromSnapshot(s: ClientSnapshot): OAuthClient {
  return { ...s, verifySecret: () => false }
}
