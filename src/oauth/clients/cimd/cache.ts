/**
 * The shared metadata-document cache (SEC-19..21), in the store so every replica sees it: the
 * validated document, keyed by the hash of the exact client id string (each record repeats the
 * id and is compared on read), and a separate short negative record for failures that never
 * holds a client. Key sets behind a jwks_uri are cached by jwks.ts under their own prefix.
 */
import { createHash } from 'node:crypto'
import { storeKeys } from '../../../store/keys.js'
import type { Store } from '../../../store/store.js'
import type { Metadata } from './document.js'
import type { CimdStep } from './refusal.js'

export interface CachedDocument {
  clientId: string
  document: Metadata
  fetchedAt: number
  expiresAt: number
}

export interface CachedFailure {
  clientId: string
  step: CimdStep
  rule: string
  description: string
}

export const cacheKeyOf = (clientId: string) => createHash('sha256').update(clientId, 'utf8').digest('base64url')

export class CimdDocumentCache {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /** A fresh document of exactly this client id, else a remembered failure of it, else nothing. */
  async read(clientId: string): Promise<{ document: CachedDocument } | { failure: CachedFailure } | undefined> {
    const cached = await this.store.get(storeKeys.cimdDocument(cacheKeyOf(clientId)))
    const record = cached === undefined ? undefined : (JSON.parse(cached) as CachedDocument)
    if (record && record.clientId === clientId && record.expiresAt > this.now()) return { document: record }
    const failed = await this.store.get(storeKeys.cimdFailure(cacheKeyOf(clientId)))
    const failure = failed === undefined ? undefined : (JSON.parse(failed) as CachedFailure)
    return failure && failure.clientId === clientId ? { failure } : undefined
  }

  /** A valid document replaces any failure remembered for its id. */
  async saveDocument(clientId: string, document: Metadata, lifetimeSeconds: number): Promise<void> {
    const now = this.now()
    const record: CachedDocument = { clientId, document, fetchedAt: now, expiresAt: now + lifetimeSeconds * 1000 }
    await this.store.set(storeKeys.cimdDocument(cacheKeyOf(clientId)), JSON.stringify(record), lifetimeSeconds * 1000)
    await this.store.delete(storeKeys.cimdFailure(cacheKeyOf(clientId)))
  }

  async saveFailure(failure: CachedFailure, negativeSeconds: number): Promise<void> {
    await this.store.set(storeKeys.cimdFailure(cacheKeyOf(failure.clientId)), JSON.stringify(failure), negativeSeconds * 1000)
  }

  /**
   * Removes the cached document, failure and key sets of one client id, or every CIMD cache
   * record; returns how many records were removed. Fingerprints (change detection) and fetch
   * counters (rate limit) are not cache and stay.
   */
  async purge(clientId?: string): Promise<number> {
    const { store } = this
    if (clientId !== undefined) {
      // Counts the records that were there, so "purged 0" tells the operator nothing was cached.
      let n = 0
      for (const key of [storeKeys.cimdDocument(cacheKeyOf(clientId)), storeKeys.cimdFailure(cacheKeyOf(clientId))]) {
        if ((await store.take(key)) !== undefined) n++
      }
      // Key sets are keyed by client id and jwks_uri: found by the id each record repeats.
      for await (const key of store.keys(storeKeys.cimdJwks(''))) {
        const record = await store.get(key)
        if (record !== undefined && (JSON.parse(record) as { clientId?: string }).clientId === clientId && (await store.take(key)) !== undefined) n++
      }
      return n
    }
    let n = 0
    for (const prefix of [storeKeys.cimdDocument(''), storeKeys.cimdFailure(''), storeKeys.cimdJwks('')]) {
      for await (const key of store.keys(prefix)) {
        await store.delete(key)
        n++
      }
    }
    return n
  }
}
