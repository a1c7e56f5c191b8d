/**
 * DPoP proofs (RFC 9449; SEP-1932), checked the same way by the token endpoint and the resource
 * (§4.3), in this order:
 *
 *   format:    one compact JWS; JOSE `typ` dpop+jwt; `alg` asymmetric and on the allow-list
 *   key:       `jwk` in the header, a public key only (no private or symmetric members)
 *   signature: by that key
 *   claims:    `jti` (≤ 256 characters); `htm` = the request method; `htu` = the request URL
 *              without query and fragment, compared after normalization; `iat` within the window
 *   ath:       at the resource, base64url(SHA-256(access token)) (§4.3 item 11)
 *   nonce:     with dpop.requireNonce, a recent server nonce (§8, §9; dpop-nonce.ts)
 *   replay:    `jti` unseen within the window, per key, in the store every replica shares (§11.1)
 *
 * A failure is a DpopRejected naming the check; callers answer invalid_dpop_proof (DPOP-07).
 * One signature verification per proof (its key is in the proof itself): no key fetch, no cache.
 */
import { createHash } from 'node:crypto'
import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose'
import { CheckFailed } from '../errors.js'
import { storeKeys } from '../store/keys.js'
import type { DpopNonces } from './dpop-nonce.js'
import type { Store } from '../store/store.js'

const MAX_JTI_LENGTH = 256
const MAX_PROOF_LENGTH = 8 * 1024
/** JWK members that only a private or symmetric key has (RFC 7518 §6). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

/** Checks: format, typ, alg, jwk, signature, jti, htm, htu, iat, ath, nonce, replay. */
export class DpopRejected extends CheckFailed {
  override readonly name = 'DpopRejected'
  constructor(check: string, detail: string) {
    super(check, detail, 'DPoP proof')
  }
}

export interface DpopSettings {
  algorithms: readonly string[]
  /** How far a proof's iat may lie in the past or, by the clock tolerance, in the future. */
  proofLifetimeSeconds: number
  clockToleranceSeconds: number
}

export interface ProofRequest {
  method: string
  /** The URL the request was sent to, as the gateway publishes it (never from Host). */
  url: string
  /** At the resource: the access token the proof must be bound to (ath). */
  accessToken?: string
}

export interface AcceptedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key: what cnf.jkt binds (DPOP-04). */
  jkt: string
}

/** Imported proof keys kept (a client signs every proof with the same key): bounded, then emptied. */
const MAX_CACHED_KEYS = 1_000

export class DpopProofs {
  readonly #now: () => number
  /** Importing a JWK and hashing its thumbprint cost more than the verification itself: once per key. */
  readonly #keys = new Map<string, { key: Awaited<ReturnType<typeof importJWK>>; jkt: string }>()

  constructor(
    private readonly settings: DpopSettings,
    private readonly store: Store,
    /** With `dpop.requireNonce`: proofs must carry a recent server nonce (§8, §9). */
    readonly nonces?: DpopNonces,
    now?: () => number,
  ) {
    this.#now = now ?? Date.now
  }

  async verify(proof: string, request: ProofRequest): Promise<AcceptedProof> {
    if (proof.length > MAX_PROOF_LENGTH) throw new DpopRejected('format', 'proof too long')
    let header: ReturnType<typeof decodeProtectedHeader>
    try {
      header = decodeProtectedHeader(proof)
    } catch {
      throw new DpopRejected('format', 'not a compact JWS')
    }
    if (header.typ !== 'dpop+jwt') throw new DpopRejected('typ', 'typ is not dpop+jwt')
    if (typeof header.alg !== 'string' || !this.settings.algorithms.includes(header.alg)) throw new DpopRejected('alg', 'algorithm not allowed')
    const jwk = header.jwk as JWK | undefined
    if (!jwk || typeof jwk !== 'object' || PRIVATE_MEMBERS.some((m) => m in jwk)) throw new DpopRejected('jwk', 'no public jwk in the header')
    let payload: Record<string, unknown>
    let jkt: string
    try {
      const { key, jkt: thumbprint } = await this.#importKey(jwk, header.alg)
      const verified = await compactVerify(proof, key, { algorithms: [header.alg] })
      payload = JSON.parse(new TextDecoder().decode(verified.payload)) as Record<string, unknown>
      jkt = thumbprint
    } catch {
      throw new DpopRejected('signature', 'the proof does not verify with its own key')
    }
    if (payload === null || typeof payload !== 'object') throw new DpopRejected('format', 'the payload is not an object')
    const { jti, htm, htu, iat, ath, nonce } = payload
    if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) throw new DpopRejected('jti', 'jti missing or too long')
    if (htm !== request.method) throw new DpopRejected('htm', 'htm is not the request method')
    if (typeof htu !== 'string' || normalizedHtu(htu) !== normalizedHtu(request.url)) throw new DpopRejected('htu', 'htu is not the request URL')
    const now = Math.floor(this.#now() / 1000)
    const { proofLifetimeSeconds, clockToleranceSeconds } = this.settings
    if (typeof iat !== 'number' || iat > now + clockToleranceSeconds || iat < now - proofLifetimeSeconds) {
      throw new DpopRejected('iat', 'iat is outside the accepted window')
    }
    if (request.accessToken !== undefined) {
      const expected = createHash('sha256').update(request.accessToken).digest('base64url')
      if (ath !== expected) throw new DpopRejected('ath', 'ath does not match the access token')
    }
    // Before the replay record: the client retries with a new proof carrying the nonce (§8.1).
    if (this.nonces && !(await this.nonces.accepts(nonce))) throw new DpopRejected('nonce', nonce === undefined ? 'no nonce' : 'a stale or unknown nonce')
    // §11.1: a proof seen once is not accepted again while it could still be fresh.
    const key = storeKeys.dpopJti(createHash('sha256').update(`${jkt}\n${jti}`).digest('base64url'))
    const ttlMs = (proofLifetimeSeconds + clockToleranceSeconds + 1) * 1000
    if (!(await this.store.setIfAbsent(key, '1', ttlMs))) throw new DpopRejected('replay', 'the proof was used before')
    return { jkt }
  }

  async #importKey(jwk: JWK, alg: string) {
    const id = keyId(jwk, alg)
    const cached = this.#keys.get(id)
    if (cached) return cached
    const entry = { key: await importJWK(jwk, alg), jkt: await calculateJwkThumbprint(jwk, 'sha256') }
    if (this.#keys.size >= MAX_CACHED_KEYS) this.#keys.clear()
    this.#keys.set(id, entry)
    return entry
  }
}

/** A key, by its algorithm and public members; the cache never skips a verification. */
function keyId(jwk: JWK, alg: string): string {
  return JSON.stringify([alg, jwk.kty, jwk.crv, jwk.x, jwk.y, jwk.n, jwk.e])
}

/** §4.3 item 9: compared without query and fragment, after URL normalization (case, default port, dot segments). */
function normalizedHtu(value: string): string | undefined {
  if (!URL.canParse(value)) return undefined
  const url = new URL(value)
  return `${url.origin}${url.pathname}`
}

/** Exactly one DPoP header (§4.3 item 1); rawHeaders shows repeats that headers would merge. */
export function dpopHeaderOf(rawHeaders: readonly string[]): { proof: string } | { count: number } {
  let proof: string | undefined
  let count = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === 4 && rawHeaders[i]!.toLowerCase() === 'dpop') {
      count++
      proof = rawHeaders[i + 1]
    }
  }
  return count === 1 && proof !== undefined ? { proof } : { count }
}
