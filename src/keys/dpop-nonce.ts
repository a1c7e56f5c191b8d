/**
 * DPoP server nonces (RFC 9449 §8, §9), when `dpop.requireNonce` is on: a proof must carry a
 * nonce the gateway issued recently, which limits how long a proof made in advance (for example
 * by malware that can sign but not keep the key) stays usable.
 *
 * Stateless across replicas: a nonce is a time window and its HMAC, keyed by a secret that the
 * first replica writes to the store and every replica reads (the same way the development
 * signing key is shared). The current and the previous window are accepted.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { storeKeys } from '../store/keys.js'
import type { Store } from '../store/store.js'

const WINDOW_SECONDS = 60
/** Long enough never to change under running replicas; a store that loses it gets a new one (clients retry once). */
const SECRET_TTL_MS = 10 * 365 * 24 * 3600 * 1000

export class DpopNonces {
  #secret: Promise<Buffer> | undefined
  readonly #now: () => number

  constructor(
    private readonly store: Store,
    now?: () => number,
  ) {
    this.#now = now ?? Date.now
  }

  /** The nonce to hand out now (the `DPoP-Nonce` header). */
  async current(): Promise<string> {
    return this.#nonceFor(this.#window(), await this.#key())
  }

  /** Whether a proof's `nonce` claim is one this gateway issued in this window or the last. */
  async accepts(nonce: unknown): Promise<boolean> {
    if (typeof nonce !== 'string' || nonce.length > 128) return false
    const key = await this.#key()
    const now = this.#window()
    return [now, now - 1].some((w) => {
      const expected = Buffer.from(this.#nonceFor(w, key))
      const given = Buffer.from(nonce)
      return given.length === expected.length && timingSafeEqual(given, expected)
    })
  }

  #window(): number {
    return Math.floor(this.#now() / 1000 / WINDOW_SECONDS)
  }

  #nonceFor(window: number, key: Buffer): string {
    return `${window.toString(36)}.${createHmac('sha256', key).update(`dpop-nonce:${window}`).digest('base64url').slice(0, 32)}`
  }

  #key(): Promise<Buffer> {
    this.#secret ??= (async () => {
      const fresh = randomBytes(32).toString('base64url')
      await this.store.setIfAbsent(storeKeys.dpopNonceSecret, fresh, SECRET_TTL_MS)
      const shared = await this.store.get(storeKeys.dpopNonceSecret)
      return Buffer.from(shared ?? fresh, 'base64url')
    })().catch((err: unknown) => {
      this.#secret = undefined // a store outage: try again on the next request
      throw err
    })
    return this.#secret
  }
}
