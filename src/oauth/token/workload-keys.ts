/**
 * A trusted workload issuer's signing keys (WIF-02; SEP-1933 steps 2–4), from one of:
 *
 *   discovery: <issuer>/.well-known/openid-configuration (OIDC Discovery §4), whose `issuer` must
 *              equal the configured one exactly (§4.3) and whose `jwks_uri` (https, or http on
 *              loopback) holds the keys
 *   jwksUri:   the key set at a configured URL
 *   jwksFile:  a JWKS file (a Kubernetes cluster's keys mounted from a ConfigMap), read again on
 *              an unknown kid, so a rotated file is picked up without a restart
 *
 * Fetches go through the hardened fetcher of metadata documents (no redirects, 200 + JSON only,
 * byte cap, timeouts, the special-use address check on the connected peer unless the issuer
 * allows private addresses). Only configured issuers ever get here: an untrusted `iss` is refused
 * before any fetch. A key set is kept `cacheMs`; an unknown kid refreshes it at most once per
 * `cooldownMs` per issuer, so forged kids cannot make the gateway hammer the issuer. Sets with
 * private or symmetric members are refused. Failures are `KeysUnavailable` with a log-only detail.
 */
import { readFile } from 'node:fs/promises'
import { keySourceOf, secureOrLoopback, type WorkloadIssuerConfig } from '../../config/workload-schema.js'
import { keySetProblem, type PublicJwk } from '../../policy/client-public-keys.js'
import { FetchError } from '../clients/cimd/fetch.js'
import type { CimdFetcher } from '../clients/cimd/collaborators.js'

export class KeysUnavailable extends Error {
  override readonly name = 'KeysUnavailable'
  constructor(readonly detail: string) {
    super(detail)
  }
}

export interface KeySet {
  keys: readonly PublicJwk[]
  /** Where they came from, for the log and `workload inspect`: a URL or a file. */
  from: string
}

export interface WorkloadKeysOptions {
  /** The fetcher for this issuer (its allowPrivateAddresses setting). */
  fetcher: CimdFetcher
  maxBytes: number
  cacheMs?: number
  cooldownMs?: number
  now?: () => number
}

const DEFAULT_CACHE_MS = 10 * 60_000
const DEFAULT_COOLDOWN_MS = 30_000

export class WorkloadKeys {
  #cached: { set: KeySet; at: number } | undefined
  #inflight: Promise<KeySet> | undefined
  #lastLoad = -Infinity
  readonly #now: () => number

  constructor(
    readonly issuer: WorkloadIssuerConfig,
    private readonly options: WorkloadKeysOptions,
  ) {
    this.#now = options.now ?? Date.now
  }

  /** The current key set: cached, or loaded now. */
  async current(): Promise<KeySet> {
    const cacheMs = this.options.cacheMs ?? DEFAULT_CACHE_MS
    if (this.#cached && this.#now() - this.#cached.at < cacheMs) return this.#cached.set
    return this.#load()
  }

  /** A fresh set after an unknown kid, or undefined when the last load is more recent than the cooldown. */
  async refreshed(): Promise<KeySet | undefined> {
    if (this.#now() - this.#lastLoad < (this.options.cooldownMs ?? DEFAULT_COOLDOWN_MS)) return undefined
    return this.#load()
  }

  #load(): Promise<KeySet> {
    this.#inflight ??= this.#read()
      .then((set) => {
        this.#cached = { set, at: this.#now() }
        return set
      })
      .finally(() => {
        this.#lastLoad = this.#now()
        this.#inflight = undefined
      })
    return this.#inflight
  }

  async #read(): Promise<KeySet> {
    const source = keySourceOf(this.issuer)
    if (source.kind === 'jwksFile') {
      let text: string
      try {
        text = await readFile(source.file, 'utf8')
      } catch (err) {
        throw new KeysUnavailable(`jwksFile ${source.file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
      }
      return { keys: validated(parse(text, source.file), source.file), from: source.file }
    }
    const jwksUri = source.kind === 'jwksUri' ? source.uri : await this.#discover()
    return { keys: validated(await this.#fetch(jwksUri, 'jwks_uri'), jwksUri), from: jwksUri }
  }

  /** OIDC Discovery §4: the document at the issuer plus the well-known path; §4.3: its issuer is ours. */
  async #discover(): Promise<string> {
    const url = `${this.issuer.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
    const doc = await this.#fetch(url, 'discovery')
    const record = doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>) : {}
    if (record.issuer !== this.issuer.issuer) throw new KeysUnavailable(`the discovery document at ${url} names another issuer`)
    const jwksUri = record.jwks_uri
    if (typeof jwksUri !== 'string' || !secureOrLoopback(jwksUri)) {
      throw new KeysUnavailable(`the discovery document at ${url} has no https jwks_uri`)
    }
    return jwksUri
  }

  async #fetch(url: string, what: string): Promise<unknown> {
    try {
      return (await this.options.fetcher.fetchJson(url, { maxBytes: this.options.maxBytes })).json
    } catch (err) {
      const kind = err instanceof FetchError ? `${err.kind}${err.detail !== undefined ? ` (${err.detail})` : ''}` : 'network'
      throw new KeysUnavailable(`${what} ${url} could not be fetched: ${kind}`)
    }
  }
}

function parse(text: string, from: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    throw new KeysUnavailable(`${from} is not JSON`)
  }
}

function validated(set: unknown, from: string): readonly PublicJwk[] {
  const problem = keySetProblem(set)
  if (problem !== undefined) throw new KeysUnavailable(`the key set at ${from} ${problem}`)
  return (set as { keys: PublicJwk[] }).keys
}
