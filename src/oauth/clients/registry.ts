/**
 * Where OAuth clients come from: pre-registered clients (YAML), dynamically registered ones
 * and Client ID Metadata Document clients, behind one registry. Ids never collide across sources: pre-registered ids cannot be URL-shaped (schema), CIMD ids are URLs.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { StaticClientConfig } from '../../config/schema.js'
import type { ClientKeySource, PublicKeySet } from '../../policy/client-public-keys.js'

/** private_key_jwt (RFC 7523): metadata-document clients that declare it (CIMD-38) and pre-registered clients given keys. */
export type ClientAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt'

export interface OAuthClient {
  readonly clientId: string
  readonly name: string
  readonly redirectUris: readonly string[]
  readonly authMethod: ClientAuthMethod
  readonly grantTypes: readonly string[]
  /** Where the client came from; ids of the three sources never collide (see below). */
  readonly source: 'static' | 'registered' | 'cimd'
  /** What the gateway verified about the client, shown beside its self-chosen name (SEC-24). */
  readonly verifiedAs: string
  /** private_key_jwt clients: where the public keys that check their assertions come from (SEC-32). */
  readonly keys?: ClientKeySource
  /** RFC 9449 §5.2 dpop_bound_access_tokens: token requests without a DPoP proof are refused (DPOP-09). */
  readonly dpopBound?: boolean
  /** client_credentials clients: the operator's limits; absent members mean no limit (what the resources know). */
  readonly machine?: { readonly resources?: readonly string[]; readonly scopes?: readonly string[] }
  /** private_key_jwt clients: token_endpoint_auth_signing_alg, when the client declared one; assertions must use it. */
  readonly signingAlg?: string
  /**
   * CIMD clients: a digest of the document's security-relevant members (redirect_uris,
   * token_endpoint_auth_method, grant_types, scope, jwks key thumbprints or the jwks_uri value).
   * It changes when the client changes what a grant allows, and not when keys rotate behind a
   * jwks_uri (SEC-23, SEC-34); remembered consent can depend on it.
   */
  readonly fingerprint?: string
  /** CIMD clients: a digest of client_name and logo_uri, what the consent page shows as the client's own words (SEC-23). */
  readonly displayFingerprint?: string
  /** Checks a presented secret in constant time; false for public clients. */
  verifySecret(secret: string): boolean
}

export interface ClientRegistry {
  find(clientId: string): Promise<OAuthClient | undefined>
}

const digest = (s: string) => createHash('sha256').update(s).digest()

export class StaticClients implements ClientRegistry {
  readonly #clients: ReadonlyMap<string, OAuthClient>

  constructor(configs: readonly StaticClientConfig[]) {
    this.#clients = new Map(configs.map((c) => [c.clientId, staticClient(c)]))
  }

  async find(clientId: string): Promise<OAuthClient | undefined> {
    return this.#clients.get(clientId)
  }
}

function staticClient(c: StaticClientConfig): OAuthClient {
  // Only the digest is kept; comparing digests makes the comparison length-independent too.
  const secretDigest = c.secret === undefined ? undefined : digest(c.secret)
  return {
    clientId: c.clientId,
    name: c.name,
    redirectUris: c.redirectUris ?? [],
    authMethod: c.tokenEndpointAuthMethod,
    grantTypes: c.grantTypes,
    ...(c.dpopBoundAccessTokens && { dpopBound: true }),
    ...(c.jwks !== undefined && { keys: { jwks: c.jwks as unknown as PublicKeySet } }),
    ...(c.jwksUri !== undefined && { keys: { jwksUri: c.jwksUri } }),
    ...(c.grantTypes.includes('client_credentials') && {
      machine: { ...(c.resources && { resources: c.resources }), ...(c.scopes && { scopes: c.scopes }) },
    }),
    source: 'static',
    verifiedAs: 'registered by the operator',
    verifySecret: (secret) => secretDigest !== undefined && timingSafeEqual(digest(secret), secretDigest),
  }
}

/**
 * Looks a client id up in each source in turn: pre-registered clients first, so an operator's
 * registration always wins (SEC-05), then dynamically registered ones, then metadata documents.
 */
export class ClientSources implements ClientRegistry {
  constructor(private readonly sources: readonly ClientRegistry[]) {}

  async find(clientId: string): Promise<OAuthClient | undefined> {
    for (const source of this.sources) {
      const client = await source.find(clientId)
      if (client) return client
    }
    return undefined
  }
}
