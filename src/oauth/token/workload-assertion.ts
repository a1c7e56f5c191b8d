/**
 * The checks of a workload JWT presented as a jwt-bearer grant (SEP-1933, draft; RFC 7523 §3;
 * RFC 7521 §5.2; WIF-01, WIF-02, WIF-04), in order:
 *
 *   format:    a compact JWS with a JSON object payload
 *   typ:       absent or JWT: any other profile is not a workload assertion (WIF-01); an ID-JAG
 *              (typ oauth-id-jag+jwt) is refused by its own check name, `id-jag`
 *   issuer:    `iss` is a trusted workload issuer, compared exactly; an unknown one is refused
 *              here, before any fetch (WIF-02)
 *   algorithm: on the issuer's list, asymmetric only (the schema cannot list none or HS*)
 *   keys:      the issuer's key set (workload-keys.ts)
 *   signature: with the key its kid names (or the only fitting one); an unknown kid reloads the
 *              set once per cooldown
 *   audience:  every member of `aud` is this authorization server, as its issuer identifier (or
 *              the configured audience), either with or without a trailing slash, or its token
 *              endpoint URL: RFC 7523 §3; a list naming anyone else is refused (WIF-02)
 *   time:      `exp` present and not past, `nbf` and `iat` not in the future (clock tolerance)
 *   lifetime:  exp − iat (exp − now without iat) at most the issuer's maxLifetimeSeconds
 *   claims:    `sub` a non-empty string; `jti`, when present, a string of at most 256 characters
 *
 * Single use (WIF-04) is `consume`, run by the grant after every other check of the request, so a
 * refused request does not burn a good token: (iss, jti) or, without a jti, the hash of the whole
 * assertion, is recorded in the store every replica shares until `exp` (plus the tolerance).
 * Every failure is a WorkloadRejected naming the check: invalid_grant, detail in the log only.
 */
import { createHash } from 'node:crypto'
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose'
import type { WorkloadIssuerConfig } from '../../config/workload-schema.js'
import { CheckFailed } from '../../errors.js'
import { storeKeys } from '../../store/keys.js'
import type { Store } from '../../store/store.js'
import { ID_JAG_TYPE } from './id-jag.js'
import { KeysUnavailable, type KeySet, type WorkloadKeys } from './workload-keys.js'

const MAX_JTI_LENGTH = 256
const MAX_SUB_LENGTH = 1024

export class WorkloadRejected extends CheckFailed {
  override readonly name = 'WorkloadRejected'
  constructor(check: string, detail: string) {
    super(check, detail, 'workload assertion')
  }
}

/** One step of the checks, for `gatehouse workload inspect`. */
export interface TraceStep {
  step: string
  ok: boolean
  detail: string
}

export interface VerifiedWorkload {
  issuer: WorkloadIssuerConfig
  sub: string
  claims: JWTPayload
  exp: number
  /** What single use is recorded under: the jti, or the assertion's hash. */
  replayBasis: string
}

export interface WorkloadVerifierOptions {
  /** Trusted issuers with their key sources, by exact `iss`. */
  keys: ReadonlyMap<string, WorkloadKeys>
  /** This authorization server's issuer identifier and token endpoint URL. */
  issuer: string
  tokenEndpoint: string
  store: Store
  clockToleranceSeconds: number
  now?: () => number
}

/** The JOSE `typ` as compared (RFC 8725 §3.11): lower case, without an application/ prefix. */
export function normalizedType(assertion: string): string | undefined {
  const typ = decodeProtectedHeader(assertion).typ
  return typeof typ === 'string' ? typ.toLowerCase().replace(/^application\//, '') : undefined
}

export class WorkloadVerifier {
  readonly #now: () => number

  constructor(private readonly options: WorkloadVerifierOptions) {
    this.#now = options.now ?? Date.now
  }

  async verify(assertion: string, trace: TraceStep[] = []): Promise<VerifiedWorkload> {
    const pass = (step: string, detail: string) => void trace.push({ step, ok: true, detail })
    const fail = (step: string, detail: string) => {
      trace.push({ step, ok: false, detail })
      return new WorkloadRejected(step, detail)
    }
    let typ: string | undefined
    let alg: unknown
    let kid: unknown
    let claimed: JWTPayload
    try {
      if (assertion.split('.').length !== 3) throw new Error('parts')
      ;({ alg, kid } = decodeProtectedHeader(assertion))
      typ = normalizedType(assertion)
      claimed = decodeJwt(assertion)
    } catch {
      throw fail('format', 'not a compact JWS with a JSON object payload')
    }
    pass('format', `a compact JWS, alg ${String(alg).slice(0, 20)}${typeof kid === 'string' ? `, kid ${kid.slice(0, 64)}` : ''}`)
    if (typ === ID_JAG_TYPE) throw fail('id-jag', 'typ oauth-id-jag+jwt: an ID-JAG, which needs client authentication')
    if (typ !== undefined && typ !== 'jwt') throw fail('typ', `typ ${JSON.stringify(typ.slice(0, 64))} is not a workload token (absent or JWT)`)
    pass('typ', typ === undefined ? 'typ absent' : 'typ JWT')
    const keys = typeof claimed.iss === 'string' ? this.options.keys.get(claimed.iss) : undefined
    if (!keys) throw fail('issuer', `untrusted issuer ${JSON.stringify(String(claimed.iss).slice(0, 256))}`)
    const issuer = keys.issuer
    pass('issuer', `${issuer.issuer} (workloadIdentity issuer ${issuer.id})`)
    if (typeof alg !== 'string' || !(issuer.algorithms as readonly string[]).includes(alg)) {
      throw fail('algorithm', `alg ${JSON.stringify(String(alg).slice(0, 20))} is not one of ${issuer.algorithms.join(', ')}`)
    }
    pass('algorithm', `${alg} is allowed`)
    const tolerance = this.options.clockToleranceSeconds
    const now = Math.floor(this.#now() / 1000)
    const attempt = async (set: KeySet) =>
      jwtVerify(assertion, createLocalJWKSet({ keys: [...set.keys] as never }), {
        algorithms: [alg as string],
        issuer: issuer.issuer,
        clockTolerance: tolerance,
        currentDate: new Date(now * 1000),
        requiredClaims: ['exp'],
      })
    let payload: JWTPayload
    try {
      let set = await keys.current()
      pass('keys', `${set.keys.length} key(s) from ${set.from}`)
      try {
        payload = (await attempt(set)).payload
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey)) throw err
        const fresh = await keys.refreshed()
        if (!fresh) throw err
        set = fresh
        pass('keys', `no key matched: reloaded, ${set.keys.length} key(s) from ${set.from}`)
        payload = (await attempt(set)).payload
      }
    } catch (err) {
      if (err instanceof KeysUnavailable) throw fail('keys', err.detail)
      const [step, detail] = rejectionOf(err)
      throw fail(step, detail)
    }
    pass('signature', `verified with ${typeof kid === 'string' ? `kid ${kid.slice(0, 64)}` : 'the only fitting key'}`)
    const audiences = this.#audiences(issuer)
    const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : []
    if (aud.length === 0 || !aud.every((a) => audiences.includes(a))) {
      throw fail('audience', `aud ${JSON.stringify(payload.aud ?? null).slice(0, 256)} is not only ${audiences.join(' or ')}`)
    }
    pass('audience', `aud ${JSON.stringify(payload.aud)}`)
    const exp = payload.exp!
    if (payload.iat !== undefined && payload.iat > now + tolerance) throw fail('time', `iat is ${payload.iat - now} s in the future`)
    pass('time', `expires in ${exp - now} s${payload.nbf !== undefined ? ', nbf passed' : ''}${payload.iat !== undefined ? `, issued ${now - payload.iat} s ago` : ''}`)
    const lifetime = exp - (payload.iat ?? now)
    if (lifetime > issuer.maxLifetimeSeconds) throw fail('lifetime', `lifetime ${lifetime} s exceeds maxLifetimeSeconds ${issuer.maxLifetimeSeconds}`)
    pass('lifetime', `${lifetime} s, at most ${issuer.maxLifetimeSeconds}`)
    const { sub, jti } = payload
    if (typeof sub !== 'string' || sub === '' || sub.length > MAX_SUB_LENGTH) throw fail('claims', 'sub is missing, empty, too long or not a string')
    if (jti !== undefined && (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH)) throw fail('claims', 'jti is not a string of 1 to 256 characters')
    pass('claims', `sub ${JSON.stringify(sub.slice(0, 256))}${jti !== undefined ? ', jti present' : ', no jti: single use by the token\'s hash'}`)
    const replayBasis = jti !== undefined ? `jti\n${jti}` : `hash\n${createHash('sha256').update(assertion).digest('base64url')}`
    return { issuer, sub, claims: payload, exp, replayBasis }
  }

  /** WIF-02: the issuer identifier (or configured audience) with and without a trailing slash, and the token endpoint. */
  #audiences(issuer: WorkloadIssuerConfig): string[] {
    const base = issuer.audience ?? this.options.issuer
    const bare = base.replace(/\/$/, '')
    return [bare, `${bare}/`, this.options.tokenEndpoint]
  }

  /** WIF-04: the first use wins, in the store every replica shares, until the token expires. */
  async consume(workload: VerifiedWorkload): Promise<void> {
    const key = storeKeys.workloadJti(createHash('sha256').update(`${workload.issuer.issuer}\n${workload.replayBasis}`).digest('base64url'))
    const ttlMs = Math.max(1, workload.exp + this.options.clockToleranceSeconds - Math.floor(this.#now() / 1000)) * 1000
    if (!(await this.options.store.setIfAbsent(key, '1', ttlMs))) {
      throw new WorkloadRejected('replay', workload.replayBasis.startsWith('jti') ? 'the jti was already used' : 'this token (without jti) was already used')
    }
  }
}

function rejectionOf(err: unknown): [string, string] {
  if (err instanceof errors.JWTExpired) return ['time', 'expired']
  if (err instanceof errors.JWTClaimValidationFailed) return [err.claim === 'nbf' ? 'time' : 'claims', `${err.claim}: ${err.reason}`]
  if (err instanceof errors.JOSEAlgNotAllowed) return ['algorithm', 'algorithm not allowed']
  if (err instanceof errors.JWSSignatureVerificationFailed) return ['signature', 'signature does not verify']
  if (err instanceof errors.JWKSNoMatchingKey) return ['signature', 'no key of the issuer matches the kid and alg']
  if (err instanceof errors.JWKSMultipleMatchingKeys) return ['signature', 'no kid, and several keys of the issuer fit']
  if (err instanceof errors.JOSEError) return ['format', err.code]
  return ['keys', err instanceof Error ? err.name : 'unknown failure']
}
