/**
 * Remembered consent: what one person already allowed one client on one resource, so the
 * consent page is not shown again for the same request (MCPS-01's per-client registry, kept in
 * the store by hashes of the person and the client).
 *
 * For a metadata-document client a consent holds only for the document it was given to
 * (SEC-23): when a re-fetched document changes a security member (redirect URIs, auth method,
 * grant types, scope, keys) or what the person was shown (name, logo), the client's
 * fingerprints differ and the person is asked again.
 */
import { hash } from '../../login/sessions.js'
import { storeKeys } from '../../store/keys.js'
import type { Store } from '../../store/store.js'
import type { OAuthClient } from '../clients/registry.js'

interface RememberedConsent {
  scopes: string[]
  /** The client's fingerprints when consent was given; absent for the gateway's own records. */
  client?: string
}

export class Consents {
  constructor(
    private readonly store: Store,
    private readonly ttlSeconds: number,
  ) {}

  /** The scopes this person already allowed this client on this resource (none if it changed). */
  async scopes(sub: string, client: OAuthClient, resourceId: string): Promise<string[]> {
    const stored = await this.store.get(keyOf(sub, client, resourceId))
    if (stored === undefined) return []
    const consent = JSON.parse(stored) as RememberedConsent
    return consent.client === versionOf(client) ? consent.scopes : []
  }

  /** Adds scopes to what the person allowed, for this version of the client. */
  async remember(sub: string, client: OAuthClient, resourceId: string, scopes: readonly string[]): Promise<void> {
    const all = [...new Set([...(await this.scopes(sub, client, resourceId)), ...scopes])]
    const version = versionOf(client)
    const consent: RememberedConsent = { scopes: all, ...(version !== undefined && { client: version }) }
    await this.store.set(keyOf(sub, client, resourceId), JSON.stringify(consent), this.ttlSeconds * 1000)
  }
}

function keyOf(sub: string, client: OAuthClient, resourceId: string): string {
  return storeKeys.consent(hash(sub), hash(client.clientId), resourceId)
}

function versionOf(client: OAuthClient): string | undefined {
  return client.fingerprint === undefined ? undefined : `${client.fingerprint}.${client.displayFingerprint ?? ''}`
}
