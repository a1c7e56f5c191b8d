/**
 * private_key_jwt: the checks of a client assertion (RFC 7523 §3, RFC 7521 §4.2, SEC-31,
 * CIMD-38), in this order:
 *
 *   header: alg on the allow-list (never none or HS*: the schema cannot list them), equal to
 *           the client's token_endpoint_auth_signing_alg when it declared one
 *   key:    the key named by kid, or the only key that suits the alg when there is no kid; the
 *           JWK's alg, kty/crv and use must fit. An unknown kid with a jwks_uri refetches the set
 *           at most once per interval per client (SEC-32), then refuses
 *   signature
 *   claims: iss = sub = the client id (exact string); aud contains the gateway's issuer or its
 *           token endpoint URL; exp present, not past (small tolerance), at most
 *           maxAssertionLifetimeSeconds ahead; iat and nbf not in the future; jti present
 *   replay: the jti is recorded in the store with setIfAbsent until exp; a second use is refused
 *
 * `aud`: RFC 7523 §3 asks for a value identifying the authorization server and says the token
 * endpoint URL MAY be used; both are accepted, whichever endpoint (token, revocation,
 * introspection) receives the assertion. The issuer is what the MCP SDK and RFC 7523bis use.
 *
 * Every failure is an `AssertionRejected` naming the check; the caller answers 401
 * invalid_client and logs the detail only (RFC 6749 §5.2, SEC-36).
 */
import { createHash } from 'node:crypto'
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose'
import type { PrivateKeyJwtConfig } from '../../config/cimd-schema.js'
import { storeKeys } from '../../store/keys.js'
import type { Store } from '../../store/store.js'
import { KeySetError, type ClientKeySets } from './cimd/jwks.js'
import type { PublicJwk } from '../../policy/client-public-keys.js'
import type { OAuthClient } from './registry.js'
import { CheckFailed } from '../../errors.js'

/** RFC 7523 §2.2: the only client_assertion_type the gateway understands. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/** Longest jti kept: it is hashed into the store key, but an unbounded claim is refused anyway. */
const MAX_JTI_LENGTH = 256

/** Checks: alg, key, unknown_kid, signature, iss, sub, aud, exp, lifetime, iat, nbf, jti, replay, jwks_*; never echoes the assertion (SEC-36). */
export class AssertionRejected extends CheckFailed {
  override readonly name = 'AssertionRejected'
  constructor(check: string, detail: string) {
    super(check, detail, 'client assertion')
  }
}

export interface ClientAssertionsOptions {
  /** The gateway's issuer: the audience clients should use. */
  issuer: string
  /** The token endpoint URL, also accepted as audience (RFC 7523 §3). */
  tokenEndpoint: string
  settings: PrivateKeyJwtConfig
  keySets: ClientKeySets
  store: Store
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number
}

/** What an accepted assertion was signed with, for the log. */
export interface AcceptedAssertion {
  alg: string
  kid: string | undefined
}

export class ClientAssertions {
  readonly #now: () => number

  constructor(private readonly options: ClientAssertionsOptions) {
    this.#now = options.now ?? Date.now
  }

  /** The iss/sub claim the assertion names, read without verification, to find the client by. */
  static claimedClientId(assertion: string): string | undefined {
    const parts = assertion.split('.')
    if (parts.length !== 3) return undefined
    try {
      const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown
      if (claims === null || typeof claims !== 'object') return undefined
      const sub = (claims as { sub?: unknown }).sub
      return typeof sub === 'string' ? sub : undefined
    } catch {
      return undefined
    }
  }

  /** Checks `assertion` for `client` (a private_key_jwt client with a key source); throws AssertionRejected. */
  async verify(assertion: string, client: OAuthClient): Promise<AcceptedAssertion> {
    const { settings } = this.options
    let header: { alg?: unknown; kid?: unknown; crit?: unknown }
    try {
      header = decodeProtectedHeader(assertion)
    } catch {
      throw new AssertionRejected('format', 'not a compact JWS')
    }
    if (assertion.split('.').length !== 3) throw new AssertionRejected('format', 'not a compact JWS')
    const alg = typeof header.alg === 'string' ? header.alg : ''
    if (!(settings.algorithms as readonly string[]).includes(alg)) {
      throw new AssertionRejected('alg', `alg ${JSON.stringify(alg.slice(0, 20))} is not on the allow-list`)
    }
    if (client.signingAlg !== undefined && alg !== client.signingAlg) {
      throw new AssertionRejected('alg', `alg ${alg} differs from the client's token_endpoint_auth_signing_alg ${client.signingAlg}`)
    }
    const kid = typeof header.kid === 'string' ? header.kid : undefined
    if (header.kid !== undefined && kid === undefined) throw new AssertionRejected('key', 'kid is not a string')
    const jwk = await this.#selectKey(client, alg, kid)

    let payload: Uint8Array
    try {
      const key = await importJWK(jwk as JWK, alg)
      payload = (await compactVerify(assertion, key, { algorithms: [alg] })).payload
    } catch (err) {
      const name = (err as { code?: string; name?: string }).code ?? (err as Error).name
      if (name === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw new AssertionRejected('signature', `signature does not verify with key ${kid ?? '(only key)'}`)
      throw new AssertionRejected('key', `key ${kid ?? '(only key)'} cannot verify ${alg}: ${name}`)
    }
    const claims = parseClaims(payload)
    this.#checkClaims(claims, client.clientId)
    await this.#recordJti(client.clientId, claims.jti as string, claims.exp as number)
    return { alg, kid }
  }

  /** The verification key: by kid, else the only suitable one; one refetch for an unknown kid (SEC-31, SEC-32). */
  async #selectKey(client: OAuthClient, alg: string, kid: string | undefined): Promise<PublicJwk> {
    const { keySets } = this.options
    const source = client.keys
    if (!source) throw new AssertionRejected('key', 'the client has no key source')
    const pick = (keys: readonly PublicJwk[]): PublicJwk | undefined => {
      if (kid !== undefined) {
        const named = keys.filter((k) => k.kid === kid)
        if (named.length > 1) throw new AssertionRejected('key', `kid ${kid} names several keys`)
        if (named.length === 1 && !suits(named[0]!, alg)) throw new AssertionRejected('key', `key ${kid} does not fit alg ${alg} (alg, kty, crv or use)`)
        return named[0]
      }
      const suitable = keys.filter((k) => suits(k, alg))
      if (suitable.length > 1) throw new AssertionRejected('key', `no kid, and ${suitable.length} keys fit alg ${alg}`)
      return suitable[0]
    }
    const keys = await withKeySetErrors(() => keySets.keys(client.clientId, source))
    const found = pick(keys)
    if (found) return found
    const fresh = await withKeySetErrors(() => keySets.refetch(client.clientId, source))
    const what = kid === undefined ? `no key fits alg ${alg}` : `unknown kid ${kid.slice(0, 64)}`
    if (!fresh) {
      throw new AssertionRejected('unknown_kid', 'jwks' in source ? `${what} in the document's jwks` : `${what}; jwks_uri was refetched less than the interval ago`)
    }
    const again = pick(fresh)
    if (!again) throw new AssertionRejected('unknown_kid', `${what}, also after refetching jwks_uri`)
    return again
  }

  #checkClaims(claims: Record<string, unknown>, clientId: string): void {
    const { settings, issuer, tokenEndpoint } = this.options
    const now = Math.floor(this.#now() / 1000)
    const skew = settings.clockToleranceSeconds
    if (claims.iss !== clientId) throw new AssertionRejected('iss', 'iss is not exactly the client id')
    if (claims.sub !== clientId) throw new AssertionRejected('sub', 'sub is not exactly the client id')
    const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : []
    if (!aud.some((a) => a === issuer || a === tokenEndpoint)) throw new AssertionRejected('aud', 'aud names neither the issuer nor the token endpoint')
    if (!isNumericDate(claims.exp)) throw new AssertionRejected('exp', 'exp is missing or not a number')
    if (claims.exp + skew < now) throw new AssertionRejected('exp', `expired ${now - claims.exp} s ago`)
    if (claims.exp - now > settings.maxAssertionLifetimeSeconds + skew) {
      throw new AssertionRejected('lifetime', `exp is ${claims.exp - now} s ahead, more than ${settings.maxAssertionLifetimeSeconds} s: too long-lived`)
    }
    if (claims.iat !== undefined) {
      if (!isNumericDate(claims.iat)) throw new AssertionRejected('iat', 'iat is not a number')
      if (claims.iat - skew > now) throw new AssertionRejected('iat', `iat is ${claims.iat - now} s in the future`)
    }
    if (claims.nbf !== undefined) {
      if (!isNumericDate(claims.nbf)) throw new AssertionRejected('nbf', 'nbf is not a number')
      if (claims.nbf - skew > now) throw new AssertionRejected('nbf', `not valid for another ${claims.nbf - now} s`)
    }
    if (typeof claims.jti !== 'string' || claims.jti === '') throw new AssertionRejected('jti', 'jti is missing')
    if (claims.jti.length > MAX_JTI_LENGTH) throw new AssertionRejected('jti', `jti is longer than ${MAX_JTI_LENGTH} characters`)
  }

  /** Single use: the first writer wins, across replicas; kept until exp plus the tolerance. */
  async #recordJti(clientId: string, jti: string, exp: number): Promise<void> {
    const ttlMs = Math.max(1000, (exp + this.options.settings.clockToleranceSeconds) * 1000 - this.#now())
    const key = storeKeys.assertionJti(createHash('sha256').update(`${clientId}\n${jti}`, 'utf8').digest('base64url'))
    if (!(await this.options.store.setIfAbsent(key, '1', ttlMs))) throw new AssertionRejected('replay', 'this jti was already used')
  }
}

const isNumericDate = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

function parseClaims(payload: Uint8Array): Record<string, unknown> {
  let claims: unknown
  try {
    claims = JSON.parse(Buffer.from(payload).toString('utf8'))
  } catch {
    throw new AssertionRejected('format', 'the payload is not JSON')
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new AssertionRejected('format', 'the payload is not a JSON object')
  return claims as Record<string, unknown>
}

/** Key set failures (fetch, rate limit, invalid set) are assertion failures named after their check. */
async function withKeySetErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (err) {
    if (err instanceof KeySetError) throw new AssertionRejected(err.check, err.detail)
    throw err
  }
}

/** Curves per JWS algorithm (RFC 7518 §3.4, RFC 8037 §3.1, RFC 9864). */
const EC_CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }

/** Whether a JWK may verify `alg`: its own alg (when given), key type and curve, use and key_ops (SEC-31). */
export function suits(jwk: PublicJwk, alg: string): boolean {
  if (jwk.alg !== undefined && jwk.alg !== alg) return false
  if (jwk.use !== undefined && jwk.use !== 'sig') return false
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return false
  if (alg in EC_CURVES) return jwk.kty === 'EC' && jwk.crv === EC_CURVES[alg]
  if (/^(RS|PS)(256|384|512)$/.test(alg)) return jwk.kty === 'RSA'
  if (alg === 'EdDSA') return jwk.kty === 'OKP' && (jwk.crv === 'Ed25519' || jwk.crv === 'Ed448')
  if (alg === 'Ed25519') return jwk.kty === 'OKP' && jwk.crv === 'Ed25519'
  return false
}
