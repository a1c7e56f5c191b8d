/**
 * Key sets of metadata-document clients that authenticate with private_key_jwt (RFC 7523,
 * CIMD-18, SEC-32): inline `jwks` from the document as it is, or the set behind `jwks_uri`.
 *
 * - A jwks_uri is fetched with the same hardened fetcher as documents (SSRF checks on every
 *   connected address, no redirects, 200 + JSON only, timeouts) under its own byte cap
 *   (`cimd.privateKeyJwt.jwksMaxBytes`), counted against the client-id host's fetch limit
 *   (SEC-14), parsed strictly and refused when it holds private or symmetric keys.
 * - The set is cached in the store per client and jwks_uri, for the lifetime its caching headers
 *   give, clamped to the document cache bounds; concurrent first uses share one fetch.
 * - An assertion naming a kid the set lacks may refetch it, at most once per
 *   `jwksRefetchIntervalSeconds` per client, across replicas (a `setIfAbsent` marker): rotation
 *   is picked up at once, forged kids cannot make the gateway hammer the host (SEC-31, SEC-32).
 *
 * Failures are `KeySetError`s: the caller turns them into invalid_client with a log-only detail.
 */
import { createHash } from 'node:crypto'
import type { CimdConfig } from '../../../config/cimd-schema.js'
import { storeKeys } from '../../../store/keys.js'
import type { Store } from '../../../store/store.js'
import { DocumentError, parseDocument } from './document.js'
import { FetchError } from './fetch.js'
import { keySetProblem, type ClientKeySource, type PublicJwk, type PublicKeySet } from '../../../policy/client-public-keys.js'
import type { FetchRateLimiter } from './rate-limit.js'
import { cacheLifetimeSeconds } from './cache-lifetime.js'
import type { CimdFetcher, CimdLog } from './collaborators.js'

export class KeySetError extends Error {
  override readonly name = 'KeySetError'
  constructor(
    /** Which check failed, for the log: `jwks_rate_limit`, `jwks_fetch` or `jwks_invalid`. */
    readonly check: string,
    /** Log-only; never remote content (SEC-36). */
    readonly detail: string,
  ) {
    super(`${check}: ${detail}`)
  }
}

export interface ClientKeySetsOptions {
  config: CimdConfig
  store: Store
  fetcher: CimdFetcher
  limiter: FetchRateLimiter
  log?: CimdLog
  now?: () => number
}

interface CachedKeySet {
  clientId: string
  jwksUri: string
  keys: PublicJwk[]
  fetchedAt: number
  expiresAt: number
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('base64url')

export class ClientKeySets {
  readonly #inflight = new Map<string, Promise<readonly PublicJwk[]>>()
  readonly #now: () => number

  constructor(private readonly options: ClientKeySetsOptions) {
    this.#now = options.now ?? Date.now
  }

  /** The client's keys: inline, cached, or fetched now. */
  async keys(clientId: string, source: ClientKeySource): Promise<readonly PublicJwk[]> {
    if ('jwks' in source) return source.jwks.keys
    return (await this.#cached(clientId, source.jwksUri)) ?? (await this.#fetchOnce(clientId, source.jwksUri))
  }

  /**
   * A fresh copy after an unknown kid, or undefined when this client's set was refetched within
   * the interval (or its keys are inline: nothing to refetch).
   */
  async refetch(clientId: string, source: ClientKeySource): Promise<readonly PublicJwk[] | undefined> {
    if ('jwks' in source) return undefined
    const intervalMs = this.options.config.privateKeyJwt.jwksRefetchIntervalSeconds * 1000
    const first = await this.options.store.setIfAbsent(storeKeys.cimdJwksRefetch(sha256(clientId)), '1', intervalMs)
    if (!first) return undefined
    return this.#fetchOnce(clientId, source.jwksUri)
  }

  async #cached(clientId: string, jwksUri: string): Promise<readonly PublicJwk[] | undefined> {
    if (!this.options.config.cache.enabled) return undefined
    const text = await this.options.store.get(storeKeys.cimdJwks(cacheKey(clientId, jwksUri)))
    if (text === undefined) return undefined
    const record = JSON.parse(text) as CachedKeySet
    if (record.clientId !== clientId || record.jwksUri !== jwksUri || record.expiresAt <= this.#now()) return undefined
    // What was validated before writing; checked again so a tampered record cannot slip a private key in.
    return keySetProblem(record) === undefined ? record.keys : undefined
  }

  #fetchOnce(clientId: string, jwksUri: string): Promise<readonly PublicJwk[]> {
    const key = `${clientId}\n${jwksUri}`
    let pending = this.#inflight.get(key)
    if (!pending) {
      pending = this.#fetch(clientId, jwksUri).finally(() => this.#inflight.delete(key))
      this.#inflight.set(key, pending)
    }
    return pending
  }

  async #fetch(clientId: string, jwksUri: string): Promise<readonly PublicJwk[]> {
    const { config, store, fetcher, limiter, log } = this.options
    const host = new URL(clientId).host
    const admission = await limiter.admit(host)
    if (!admission.admitted) {
      log?.warn({ clientId: clientId.slice(0, 256), host, count: admission.count }, 'cimd fetch rate limit reached')
      throw new KeySetError('jwks_rate_limit', `fetch rate limit for clients hosted at ${host} reached; retry in ${admission.retryAfterSeconds} s`)
    }
    let fetched
    try {
      fetched = await fetcher.fetchJson(jwksUri, { maxBytes: config.privateKeyJwt.jwksMaxBytes })
    } catch (err) {
      const kind = err instanceof FetchError ? err.kind : 'network'
      const detail = err instanceof FetchError && err.detail !== undefined ? ` (${err.detail})` : ''
      throw new KeySetError('jwks_fetch', `jwks_uri could not be fetched: ${kind}${detail}`)
    }
    let keys: readonly PublicJwk[]
    try {
      const parsed = parseDocument(fetched.text)
      const problem = keySetProblem(parsed)
      if (problem !== undefined) throw new KeySetError('jwks_invalid', `the key set at jwks_uri ${problem}`)
      keys = (parsed as unknown as PublicKeySet).keys
    } catch (err) {
      if (err instanceof DocumentError) throw new KeySetError('jwks_invalid', `the key set at jwks_uri ${err.reason}`)
      throw err
    }
    if (config.cache.enabled) {
      const now = this.#now()
      const lifetime = cacheLifetimeSeconds(fetched, config.cache, now)
      if (lifetime > 0) {
        const record: CachedKeySet = { clientId, jwksUri, keys: [...keys], fetchedAt: now, expiresAt: now + lifetime * 1000 }
        await store.set(storeKeys.cimdJwks(cacheKey(clientId, jwksUri)), JSON.stringify(record), lifetime * 1000)
      }
    }
    log?.info({ clientId: clientId.slice(0, 256), host, keys: keys.length }, 'cimd key set fetched')
    return keys
  }
}

const cacheKey = (clientId: string, jwksUri: string) => sha256(`${clientId}\n${jwksUri}`)
