/**
 * The checks of an Identity Assertion JWT Authorization Grant (ID-JAG; SEP-990,
 * draft-ietf-oauth-identity-assertion-authz-grant §4.3, RFC 7523 §3, RFC 7521 §5.2), in order:
 *
 *   format:    a compact JWS whose JOSE `typ` is oauth-id-jag+jwt (XAA-01, RFC 8725 §3.11)
 *   issuer:    `iss` is a configured IdP, exactly; an unknown one is refused before any fetch (XAA-02)
 *   signature: with that IdP's keys (jwks or jwksUri), an asymmetric algorithm it allows (XAA-02)
 *   audience:  `aud` is this authorization server's issuer and nothing else (XAA-03)
 *   time:      `exp` in the future, `iat` and `nbf` not in the future (clock tolerance), exp − iat
 *              at most maxLifetimeSeconds (XAA-06)
 *   claims:    `sub`, `client_id`, `jti` (at most 256 characters) and `resource` are strings
 *
 * Single use of `jti` (XAA-06) is `consume`, called by the grant once every other check of the
 * request has passed, so that a refused request does not burn a good assertion. Every failure is
 * an IdJagRejected naming the check; the grant answers invalid_grant and logs the detail only.
 */
import { createHash } from 'node:crypto'
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import type { IdJagIssuerConfig } from '../../config/enterprise-schema.js'
import { CheckFailed } from '../../errors.js'
import { storeKeys } from '../../store/keys.js'
import type { Store } from '../../store/store.js'

export const ID_JAG_TYPE = 'oauth-id-jag+jwt'
const MAX_JTI_LENGTH = 256
/** How long a JWKS answer is trusted and how long a failed or unknown-kid fetch waits before the next. */
const JWKS_CACHE_MS = 10 * 60_000
const JWKS_COOLDOWN_MS = 30_000
const JWKS_TIMEOUT_MS = 5_000

/** Checks: format, typ, iss, signature, aud, exp, iat, nbf, lifetime, claims, jwks, replay. */
export class IdJagRejected extends CheckFailed {
  override readonly name = 'IdJagRejected'
  constructor(check: string, detail: string) {
    super(check, detail, 'ID-JAG')
  }
}

export interface VerifiedIdJag {
  issuer: IdJagIssuerConfig
  sub: string
  clientId: string
  resource: string
  /** The scopes the IdP granted, when it said (RFC 6749 §3.3 applies to the rest). */
  scopes: string[] | undefined
  email: string | undefined
  groups: string[] | undefined
  jti: string
  exp: number
}

export interface IdJagVerifierOptions {
  issuers: readonly IdJagIssuerConfig[]
  /** This authorization server's issuer: the only accepted audience. */
  audience: string
  store: Store
  clockToleranceSeconds: number
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number
}

export class IdJagVerifier {
  readonly #keys: ReadonlyMap<string, JWTVerifyGetKey>
  readonly #now: () => number

  constructor(private readonly options: IdJagVerifierOptions) {
    this.#now = options.now ?? Date.now
    this.#keys = new Map(
      options.issuers.map((i) => [
        i.issuer,
        i.jwks !== undefined
          ? createLocalJWKSet(i.jwks as unknown as Parameters<typeof createLocalJWKSet>[0])
          : createRemoteJWKSet(new URL(i.jwksUri!), { timeoutDuration: JWKS_TIMEOUT_MS, cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: JWKS_CACHE_MS }),
      ]),
    )
  }

  async verify(assertion: string): Promise<VerifiedIdJag> {
    let typ: unknown
    let claimed: JWTPayload
    try {
      typ = decodeProtectedHeader(assertion).typ
      claimed = decodeJwt(assertion)
    } catch {
      throw new IdJagRejected('format', 'not a compact JWS with a JSON payload')
    }
    if (typeof typ !== 'string' || typ.toLowerCase().replace(/^application\//, '') !== ID_JAG_TYPE) {
      throw new IdJagRejected('typ', `typ is ${typeof typ === 'string' ? JSON.stringify(typ.slice(0, 64)) : 'absent'}`)
    }
    const issuer = this.options.issuers.find((i) => i.issuer === claimed.iss)
    if (!issuer) throw new IdJagRejected('iss', `untrusted issuer ${JSON.stringify(String(claimed.iss).slice(0, 256))}`)
    const tolerance = this.options.clockToleranceSeconds
    const now = Math.floor(this.#now() / 1000)
    let payload: JWTPayload
    try {
      const verified = await jwtVerify(assertion, this.#keys.get(issuer.issuer)!, {
        algorithms: [...issuer.algorithms],
        issuer: issuer.issuer,
        clockTolerance: tolerance,
        currentDate: new Date(now * 1000),
        requiredClaims: ['exp', 'iat'],
      })
      payload = verified.payload
    } catch (err) {
      throw rejectionOf(err)
    }
    // XAA-03: the audience is this authorization server, alone (a list naming others is refused too).
    const aud = Array.isArray(payload.aud) && payload.aud.length === 1 ? payload.aud[0] : payload.aud
    if (aud !== this.options.audience) throw new IdJagRejected('aud', 'the audience is not this authorization server')
    if (payload.iat! > now + tolerance) throw new IdJagRejected('iat', 'issued in the future')
    if (payload.exp! - payload.iat! > issuer.maxLifetimeSeconds) throw new IdJagRejected('lifetime', `exp − iat exceeds ${issuer.maxLifetimeSeconds} s`)
    const { sub, client_id: clientId, jti, resource } = payload as JWTPayload & Record<string, unknown>
    for (const [name, value] of Object.entries({ sub, client_id: clientId, jti, resource })) {
      if (typeof value !== 'string' || value === '') throw new IdJagRejected('claims', `${name} is missing or not a string`)
    }
    if ((jti as string).length > MAX_JTI_LENGTH) throw new IdJagRejected('claims', 'jti is too long')
    const scope = payload.scope
    if (scope !== undefined && typeof scope !== 'string') throw new IdJagRejected('claims', 'scope is not a string')
    const email = payload[issuer.claims.email]
    const groups = payload[issuer.claims.groups]
    return {
      issuer,
      sub: sub as string,
      clientId: clientId as string,
      resource: resource as string,
      scopes: scope === undefined ? undefined : scope.split(' ').filter(Boolean),
      email: typeof email === 'string' ? email : undefined,
      groups: Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : undefined,
      jti: jti as string,
      exp: payload.exp!,
    }
  }

  /** XAA-06: the first use of (iss, jti) wins, in the store all replicas share, until the assertion expires. */
  async consume(jag: VerifiedIdJag): Promise<void> {
    const key = storeKeys.idJagJti(createHash('sha256').update(`${jag.issuer.issuer}\n${jag.jti}`).digest('base64url'))
    const ttlMs = Math.max(1, jag.exp + this.options.clockToleranceSeconds - Math.floor(this.#now() / 1000)) * 1000
    if (!(await this.options.store.setIfAbsent(key, '1', ttlMs))) throw new IdJagRejected('replay', 'the jti was already used')
  }
}

function rejectionOf(err: unknown): IdJagRejected {
  if (err instanceof errors.JWTExpired) return new IdJagRejected('exp', 'expired')
  if (err instanceof errors.JWTClaimValidationFailed) return new IdJagRejected(err.claim === 'nbf' ? 'nbf' : 'claims', `${err.claim}: ${err.reason}`)
  if (err instanceof errors.JOSEAlgNotAllowed) return new IdJagRejected('signature', 'algorithm not allowed')
  if (err instanceof errors.JWSSignatureVerificationFailed) return new IdJagRejected('signature', 'signature does not verify')
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return new IdJagRejected('signature', 'no single key of the IdP matches')
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return new IdJagRejected('jwks', (err as Error).message)
  if (err instanceof errors.JOSEError) return new IdJagRejected('format', err.code)
  // A network failure fetching the IdP's keys: still the client's answer is invalid_grant (XAA-08).
  return new IdJagRejected('jwks', err instanceof Error ? err.name : 'unknown failure')
}
