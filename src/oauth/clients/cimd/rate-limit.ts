/**
 * The outbound fetch limit per client-id host (SEC-14, SEC-35): metadata documents and key sets
 * of clients whose id is on one host share one fixed-window counter in the store, so every
 * replica counts against the same limit. Only real fetches are counted: cache hits and callers
 * that join a fetch in flight never reach here. Over the limit, nothing is fetched.
 */
import { createHash } from 'node:crypto'
import type { CimdFetchRateLimitConfig } from '../../../config/cimd-schema.js'
import { storeKeys } from '../../../store/keys.js'
import type { Store } from '../../../store/store.js'

export interface FetchAdmission {
  admitted: boolean
  /** Fetches counted in the current window, this one included. */
  count: number
  /** Seconds until the window closes. */
  retryAfterSeconds: number
}

export class FetchRateLimiter {
  constructor(
    private readonly store: Store,
    private readonly limit: CimdFetchRateLimitConfig,
  ) {}

  /** Counts one fetch for `host` (host[:port] of the client id, as URL parsing gives it). */
  async admit(host: string): Promise<FetchAdmission> {
    const key = storeKeys.cimdFetchRate(createHash('sha256').update(host.toLowerCase(), 'utf8').digest('base64url'))
    const { count, ttlMs } = await this.store.increment(key, this.limit.windowSeconds * 1000)
    return { admitted: count <= this.limit.perHost, count, retryAfterSeconds: Math.max(1, Math.ceil(ttlMs / 1000)) }
  }
}
