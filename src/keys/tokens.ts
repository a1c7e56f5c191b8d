/**
 * Access tokens: JWTs per RFC 9068, minted with the active key and verified against a key set
 * (the gateway's own, or an external issuer's JWKS in resource-server-only mode).
 *
 * Verification establishes that a token is genuine and current: signature with an allowed
 * algorithm, `typ`, `iss`, time claims, required claims (JWT-03). Whether it is meant for a
 * particular resource (`aud`) and carries enough scope is decided by the resource side on
 * each request, so one verified token can be cached until it expires.
 */
import { randomUUID } from 'node:crypto'
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose'
import type { Keystore } from './keystore.js'
import { isMachineSubject, workloadOf } from '../policy/access-rules.js'

export interface AccessTokenClaims {
  sub: string
  clientId: string
  /** The canonical resource URI (RFC 8707); becomes `aud`. */
  audience: string
  scopes: readonly string[]
  /** The person's verified email and groups, when the login provider knows them. */
  email?: string | undefined
  groups?: readonly string[] | undefined
  /** RFC 9449 §6.1: the thumbprint of the key the token is bound to (cnf.jkt). */
  jkt?: string | undefined
  /** The grant the token was issued under: revoking it refuses the token everywhere (§11.4 REV-01). */
  grantId?: string | undefined
}

export interface VerifiedToken {
  readonly sub: string
  readonly clientId: string | undefined
  readonly audiences: readonly string[]
  readonly scopes: ReadonlySet<string>
  /** Expiry in seconds since the epoch. */
  readonly exp: number
  readonly jti: string | undefined
  /** Identity claims some issuers add, used by MCP policy rules on users. */
  readonly email: string | undefined
  readonly groups: readonly string[] | undefined
  /** A machine client's own token (client_credentials, sub = client:<client_id>): never a person (CC-05). */
  readonly machine: boolean
  /** A workload's token (sub workload:<issuer id>:<sub>, client_id workload:<name>): its name; never a person (WIF-05). */
  readonly workload: string | undefined
  /** DPoP-bound (cnf.jkt, RFC 9449 §6.1): usable only with the DPoP scheme and a proof by that key. */
  readonly jkt: string | undefined
  /** The gateway's own tokens: the grant they were issued under (`grant_id`), checked against revocations. */
  readonly grantId: string | undefined
}

/** Why a token was refused; the description is safe to send back (RFC 6750 error_description). */
export class TokenRejectedError extends Error {
  override readonly name = 'TokenRejectedError'
  constructor(
    readonly reason: 'malformed' | 'signature' | 'expired' | 'claims' | 'type' | 'revoked' | 'keys_unavailable',
    description: string,
    options?: { cause?: unknown },
  ) {
    super(description, options)
  }
}

export async function mintAccessToken(
  keystore: Keystore,
  issuer: string,
  claims: AccessTokenClaims,
  ttlSeconds: number,
): Promise<string> {
  const { active } = keystore
  return new SignJWT({
    client_id: claims.clientId,
    scope: claims.scopes.join(' '),
    ...(claims.email !== undefined && { email: claims.email }),
    ...(claims.groups !== undefined && { groups: [...claims.groups] }),
    ...(claims.jkt !== undefined && { cnf: { jkt: claims.jkt } }),
    ...(claims.grantId !== undefined && { grant_id: claims.grantId }),
  })
    .setProtectedHeader({ alg: active.alg, typ: 'at+jwt', kid: active.kid })
    .setIssuer(issuer)
    .setSubject(claims.sub)
    .setAudience(claims.audience)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .setJti(randomUUID())
    .sign(active.privateKey)
}

export interface VerifierOptions {
  issuer: string
  algorithms: readonly string[]
  /** Accepted `typ` values, compared without an `application/` prefix, case-insensitively. */
  tokenTypes: readonly string[]
  clockToleranceSeconds: number
  /** Claims a token must carry besides `iss`, `sub`, `exp`. */
  requiredClaims: readonly string[]
  /** How many verified tokens to remember. */
  cacheSize?: number
  /** Revoked grants (keys/revocations.ts); a token of one is refused even from the cache (§11.4 REV-01). */
  revocations?: { isRevoked(grantId: string): boolean } | undefined
}

export class AccessTokenVerifier {
  readonly #keys: JWTVerifyGetKey
  readonly #options: VerifierOptions
  readonly #types: ReadonlySet<string>
  readonly #cache = new Map<string, VerifiedToken>()
  readonly #cacheSize: number

  constructor(keys: JWTVerifyGetKey, options: VerifierOptions) {
    this.#keys = keys
    this.#options = options
    this.#types = new Set(options.tokenTypes.map(normalizeType))
    this.#cacheSize = options.cacheSize ?? 10_000
  }

  /** Verifies tokens signed by the gateway's own keys. */
  static forKeystore(
    keystore: Keystore,
    issuer: string,
    clockToleranceSeconds: number,
    revocations?: VerifierOptions['revocations'],
  ): AccessTokenVerifier {
    const algorithms = [...new Set(keystore.jwks.keys.map((k) => k.alg!))]
    return new AccessTokenVerifier(createLocalJWKSet(keystore.jwks), {
      issuer,
      algorithms,
      tokenTypes: ['at+jwt'],
      clockToleranceSeconds,
      requiredClaims: ['aud', 'iat', 'jti', 'client_id'],
      revocations,
    })
  }

  /** Verifies tokens of an external issuer; its JWKS is fetched, cached and refreshed on an unknown kid. */
  static forRemoteIssuer(options: {
    issuer: string
    jwksUri: string
    algorithms: readonly string[]
    tokenTypes: readonly string[]
    clockToleranceSeconds: number
    jwksCacheSeconds: number
    jwksRefreshCooldownSeconds: number
  }): AccessTokenVerifier {
    const keys = createRemoteJWKSet(new URL(options.jwksUri), {
      cacheMaxAge: options.jwksCacheSeconds * 1000,
      cooldownDuration: options.jwksRefreshCooldownSeconds * 1000,
      timeoutDuration: 5_000,
    })
    return new AccessTokenVerifier(keys, { ...options, requiredClaims: ['aud'] })
  }

  async verify(token: string, nowSeconds = Date.now() / 1000): Promise<VerifiedToken> {
    const cached = this.verifyCached(token, nowSeconds)
    if (cached !== undefined) return cached
    const verified = await this.#verifyJwt(token)
    if (this.#cache.size >= this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!)
    this.#cache.set(token, verified)
    return this.#unlessRevoked(verified)
  }

  /**
   * verify() for a token verified before, without waiting: the cached result (expiry and
   * revocation checked again), or undefined when the token must be verified in full. The
   * resource's per-call check takes this path, so a call with a known token makes no promise.
   */
  verifyCached(token: string, nowSeconds = Date.now() / 1000): VerifiedToken | undefined {
    const cached = this.#cache.get(token)
    if (cached === undefined) return undefined
    if (nowSeconds <= cached.exp + this.#options.clockToleranceSeconds) return this.#unlessRevoked(cached)
    this.#cache.delete(token)
    throw new TokenRejectedError('expired', 'the access token has expired')
  }

  #unlessRevoked(token: VerifiedToken): VerifiedToken {
    if (token.grantId !== undefined && this.#options.revocations?.isRevoked(token.grantId)) {
      throw new TokenRejectedError('revoked', 'the access token was revoked')
    }
    return token
  }

  async #verifyJwt(token: string): Promise<VerifiedToken> {
    const o = this.#options
    let payload: JWTPayload
    let typ: string | undefined
    try {
      const result = await jwtVerify(token, this.#keys, {
        issuer: o.issuer,
        algorithms: [...o.algorithms],
        clockTolerance: o.clockToleranceSeconds,
        requiredClaims: ['iss', 'sub', 'exp', ...o.requiredClaims],
      })
      payload = result.payload
      typ = result.protectedHeader.typ
    } catch (err) {
      throw rejection(err)
    }
    // RFC 9068 §4: an ID token or any other JWT signed by the same key is not an access token.
    if (typ === undefined || !this.#types.has(normalizeType(typ))) {
      throw new TokenRejectedError('type', 'the token is not an access token')
    }
    // A token issued in the future cannot be genuine and current (JWT-03; the same tolerance as exp
    // and nbf). jose checks iat's type but not its value unless maxTokenAge is set.
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + o.clockToleranceSeconds) throw claimsError('iat')
    if (typeof payload.sub !== 'string' || payload.sub === '') throw claimsError('sub')
    if (payload.client_id !== undefined && typeof payload.client_id !== 'string') throw claimsError('client_id')
    if (payload.jti !== undefined && typeof payload.jti !== 'string') throw claimsError('jti')
    if (payload.grant_id !== undefined && typeof payload.grant_id !== 'string') throw claimsError('grant_id')
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? [])
    return {
      sub: payload.sub,
      clientId: payload.client_id as string | undefined,
      audiences,
      scopes: scopesOf(payload),
      exp: payload.exp!,
      jti: payload.jti,
      email: typeof payload.email === 'string' ? payload.email : undefined,
      groups: Array.isArray(payload.groups) ? payload.groups.filter((g): g is string => typeof g === 'string') : undefined,
      machine: isMachineSubject(payload.sub, payload.client_id as string | undefined),
      workload: workloadOf(payload.sub, payload.client_id as string | undefined),
      jkt: boundKeyOf(payload.cnf),
      // Only the gateway's own tokens name a grant of its store; another issuer's claim of that name means nothing here.
      grantId: this.#options.revocations ? (payload.grant_id as string | undefined) : undefined,
    }
  }
}

/** RFC 9068 `scope` is space-delimited; some issuers (Entra ID) send `scp` instead. */
function scopesOf(payload: JWTPayload): ReadonlySet<string> {
  const raw = payload.scope ?? payload.scp
  if (typeof raw === 'string') return new Set(raw.split(' ').filter(Boolean))
  if (Array.isArray(raw)) return new Set(raw.filter((s): s is string => typeof s === 'string'))
  return new Set()
}

function normalizeType(typ: string): string {
  const t = typ.toLowerCase()
  return t.startsWith('application/') ? t.slice('application/'.length) : t
}

function claimsError(claim: string): TokenRejectedError {
  return new TokenRejectedError('claims', `the token's ${claim} claim is invalid`)
}

function rejection(err: unknown): TokenRejectedError {
  if (err instanceof joseErrors.JWTExpired) {
    return new TokenRejectedError('expired', 'the access token has expired', { cause: err })
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return new TokenRejectedError('claims', `the token's ${err.claim} claim is invalid`, { cause: err })
  }
  // A JWKS that cannot be fetched (network errors are not JOSE errors) says nothing about the token.
  if (!(err instanceof joseErrors.JOSEError) || err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) {
    return new TokenRejectedError('keys_unavailable', 'the signing keys could not be loaded', { cause: err })
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSNoMatchingKey) {
    return new TokenRejectedError('signature', 'the token signature is invalid', { cause: err })
  }
  return new TokenRejectedError('malformed', 'the access token is malformed or uses a refused algorithm', { cause: err })
}

/** cnf.jkt when present; a cnf that is not an object, or a jkt that is not a string, binds to nothing usable. */
function boundKeyOf(cnf: unknown): string | undefined {
  if (cnf === undefined) return undefined
  const jkt = cnf !== null && typeof cnf === 'object' ? (cnf as { jkt?: unknown }).jkt : undefined
  // A token whose binding cannot be read must not become a bearer token: an impossible thumbprint.
  return typeof jkt === 'string' && jkt !== '' ? jkt : '!unreadable'
}
