/** What CIMD resolution needs from outside: a hardened fetcher and a log (both replaced in tests). */
import type { FetchedJson } from './fetch.js'

export interface CimdFetcher {
  /** `maxBytes` overrides the fetcher's document cap (key sets are larger). */
  fetchJson(url: string, limits?: { maxBytes?: number }): Promise<FetchedJson>
}

export interface CimdLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}
