/**
 * Revoked grants, known to every replica within a second (§11.4 REV-01) without a store round trip
 * per call (§11.4 REV-02).
 *
 * Access tokens are JWTs checked offline, so a revoked grant's tokens would otherwise live until
 * they expire. Each revocation is appended to a log in the store (a Redis stream), and every
 * replica reads the log every POLL_MS into an in-memory set that the token check consults. A
 * replica reads from where it left off, so one that lost its connection for a while catches up
 * with everything it missed on its first read after reconnecting; a starting replica reads the
 * whole log before it serves. Entries live as long as an access token can (its lifetime plus the
 * clock tolerance), after which the token they refuse has expired anyway.
 *
 * While the store is unreachable no replica can revoke either (the revocation is written to the
 * store first, and the caller gets a 503 when that fails), so the set stays as fresh as it can be.
 */
import { storeKeys } from '../store/keys.js'
import type { Store } from '../store/store.js'

/** How often a replica reads the log: well within the second of §11.4 REV-01. */
export const POLL_MS = 250
/** Entries read per store call while catching up. */
const PAGE = 1000

/** A revocation must outlive every access token of the grant: their lifetime plus the clock tolerance. */
export function revocationKeepMs(accessTokens: { ttlSeconds: number; clockToleranceSeconds: number }): number {
  return (accessTokens.ttlSeconds + accessTokens.clockToleranceSeconds) * 1000
}

export interface RevocationLog {
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
}

export class RevocationList {
  /** grantId → until when its tokens are refused (ms since the epoch). */
  readonly #revoked = new Map<string, number>()
  #lastId = ''
  #timer: NodeJS.Timeout | undefined
  #failing = false
  #reading: Promise<void> | undefined

  constructor(
    private readonly store: Store,
    /** How long a revocation must be remembered: the longest an access token lives, plus tolerance. */
    private readonly keepMs: number,
    private readonly log?: RevocationLog,
  ) {}

  /** Whether tokens of this grant must be refused. A memory lookup: the hot path never waits. */
  isRevoked(grantId: string): boolean {
    const until = this.#revoked.get(grantId)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.#revoked.delete(grantId)
    return false
  }

  /** Records the revocation in the store for every replica, and here at once. */
  async revoke(grantId: string): Promise<void> {
    await this.store.append(storeKeys.revocations, grantId, this.keepMs)
    this.#revoked.set(grantId, Date.now() + this.keepMs)
  }

  /**
   * Reads the whole log, then keeps reading it every POLL_MS. A store that cannot be read now
   * does not stop the start: the first read that succeeds brings everything.
   */
  async start(): Promise<void> {
    await this.poll()
    this.#timer = setInterval(() => void this.poll(), POLL_MS).unref()
  }

  /** Reads what was appended since the last read; one read at a time. */
  poll(): Promise<void> {
    this.#reading ??= this.#readNew().finally(() => (this.#reading = undefined))
    return this.#reading
  }

  close(): void {
    clearInterval(this.#timer)
  }

  async #readNew(): Promise<void> {
    try {
      for (;;) {
        const entries = await this.store.readLog(storeKeys.revocations, this.#lastId, PAGE)
        const until = Date.now() + this.keepMs
        for (const { id, value } of entries) {
          this.#revoked.set(value, until)
          this.#lastId = id
        }
        if (entries.length < PAGE) break
      }
      if (this.#failing) this.log?.info({}, 'revocations: reading the log again')
      this.#failing = false
      this.#forgetExpired()
    } catch (err) {
      if (!this.#failing) this.log?.warn({ error: (err as Error).message }, 'revocations: cannot read the log; retrying')
      this.#failing = true
    }
  }

  #forgetExpired(): void {
    const now = Date.now()
    for (const [grantId, until] of this.#revoked) if (until <= now) this.#revoked.delete(grantId)
  }
}
