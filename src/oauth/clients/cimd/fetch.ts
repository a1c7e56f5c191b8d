/**
 * The hardened outbound fetch for Client ID Metadata Documents, shared with `jwks_uri`
 * (SEC-06..15, CIMD-24/25/42/45).
 *
 * - Every address a name resolves to is classified (ipaddr.js ranges; IPv4-mapped addresses by
 *   their embedded IPv4); one special-use answer refuses the host (SEC-06). The check runs in the
 *   socket's own `lookup`, so the socket connects to exactly the vetted addresses: a DNS answer
 *   that changes between check and use cannot slip through (SEC-07). IP-literal hosts, which skip
 *   `lookup`, are checked before connecting, and the connected peer is checked again afterwards.
 *   TLS SNI and certificate checks stay on the hostname.
 * - No redirects (a 3xx is a failure), only 200 with a JSON content type, a byte cap on the body
 *   while it streams (identity encoding only, so the cap is on what is parsed), connect and total
 *   timeouts, a global bound on concurrent fetches (SEC-10..14).
 * - A minimal request: GET, Accept: application/json, a fixed User-Agent, no cookies or
 *   credentials (SEC-15).
 * - Errors carry a kind and a fixed message; nothing the remote side sent is echoed (SEC-36).
 *
 * Longer than 300 lines because the guard is one chain (resolve, classify, connect, re-check the
 * peer, stream under a cap): split, its pieces could be reused without the rest of the chain.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import { isIP, type LookupFunction } from 'node:net'
import ipaddr from 'ipaddr.js'
import { Agent, buildConnector, request } from 'undici'
import { withSpan } from '../../../tracing/span.js'

export type FetchErrorKind =
  | 'not_allowed_address'
  | 'redirect'
  | 'status'
  | 'content_type'
  | 'too_large'
  | 'timeout'
  | 'network'
  | 'invalid_json'

const MESSAGES: Record<FetchErrorKind, string> = {
  not_allowed_address: 'the host resolves to an address the gateway does not connect to',
  redirect: 'the server answered with a redirect, which is not followed',
  status: 'the server did not answer 200 OK',
  content_type: 'the server answered with something other than JSON (for example a web page or a bot challenge)',
  too_large: 'the document is larger than the gateway accepts',
  timeout: 'the server did not answer in time',
  network: 'the server could not be reached',
  invalid_json: 'the document is not valid JSON',
}

export class FetchError extends Error {
  override readonly name = 'FetchError'
  constructor(
    readonly kind: FetchErrorKind,
    /** Log-only detail from our side (never remote content). */
    readonly detail?: string,
  ) {
    super(MESSAGES[kind])
  }
}

/**
 * The special-use range an address falls in, or undefined for a public unicast address.
 * Anything ipaddr.js does not call `unicast` is special-use (loopback, private, link-local,
 * CGNAT, multicast, broadcast, documentation, benchmarking, reserved, ULA, NAT64, 6to4, Teredo,
 * discard, ORCHID, site-local...). IPv4-mapped IPv6 is judged by its embedded IPv4 address.
 */
export function specialUseRange(address: string): string | undefined {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6
  try {
    parsed = ipaddr.parse(address.replace(/^\[|\]$/g, '').replace(/%.*$/, ''))
  } catch {
    return 'unparseable'
  }
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    const v4 = (parsed as ipaddr.IPv6).toIPv4Address()
    const range = v4.range()
    return range === 'unicast' ? undefined : `ipv4Mapped/${range}`
  }
  const range = parsed.range()
  // ipaddr.js calls the deprecated IPv4-compatible form (::a.b.c.d, e.g. ::7f00:1 for
  // 127.0.0.1) unicast; ::/8 is reserved by the IETF and no public host lives there (SEC-06).
  if (range === 'unicast' && parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).match(ipaddr.IPv6.parse('::'), 8)) return 'reserved'
  return range === 'unicast' ? undefined : range
}

export interface ResolvedAddress {
  address: string
  family: 4 | 6
}

/** Resolves a host name to every address (tests pass a stub). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>

const systemResolver: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family as 4 | 6 }))

export interface SafeFetchOptions {
  /** Largest accepted body, in bytes. */
  maxBytes: number
  connectTimeoutMs: number
  /** Deadline for the whole fetch, waiting for a slot included. */
  timeoutMs: number
  /** Fetches in flight at once, process-wide. */
  maxConcurrent: number
  /** Development switch: connect to loopback, private and other special-use addresses too. */
  allowPrivateAddresses: boolean
  /** Test hook: how host names are resolved (default: the system resolver, all answers). */
  resolver?: Resolver
  /** Test hook: extra trust anchors (PEM) for TLS. Production relies on the system store and NODE_EXTRA_CA_CERTS. */
  ca?: string | readonly string[]
}

export interface FetchedJson {
  /** The parsed body (a plain JSON.parse; callers re-parse strictly when they need to). */
  json: unknown
  text: string
  /** Caching headers, for the lifetime computation. */
  cacheControl: string | undefined
  expires: string | undefined
  date: string | undefined
  age: string | undefined
}

export const USER_AGENT = 'Gatehouse-CIMD/1 (+https://github.com/gatehouse)'

export class SafeFetcher {
  readonly #options: SafeFetchOptions
  readonly #agent: Agent
  #active = 0
  readonly #waiting: (() => void)[] = []

  constructor(options: SafeFetchOptions) {
    this.#options = options
    const resolver = options.resolver ?? systemResolver
    const allowPrivate = options.allowPrivateAddresses
    const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
      const vet = async (): Promise<ResolvedAddress[]> => {
        let answers: ResolvedAddress[]
        try {
          answers = await resolver(hostname)
        } catch {
          throw new FetchError('network', 'dns')
        }
        if (answers.length === 0) throw new FetchError('network', 'no address')
        // Every answer is checked, not just the one used: a mixed answer is refused (SEC-06).
        for (const a of answers) {
          const range = specialUseRange(a.address)
          if (range !== undefined && !allowPrivate) throw new FetchError('not_allowed_address', range)
        }
        const family = lookupOptions.family
        const wanted = family === 4 || family === 6 ? answers.filter((a) => a.family === family) : answers
        if (wanted.length === 0) throw new FetchError('network', 'no address of the wanted family')
        return wanted
      }
      vet().then(
        (wanted) => {
          if (lookupOptions.all) (callback as unknown as (e: null, a: ResolvedAddress[]) => void)(null, wanted)
          else callback(null, wanted[0]!.address, wanted[0]!.family)
        },
        (err: unknown) => callback(err as FetchError, '', 0),
      )
    }
    const connector = buildConnector({
      timeout: options.connectTimeoutMs,
      lookup,
      ...(options.ca !== undefined && { ca: options.ca as string | string[] }),
    } as buildConnector.BuildOptions)
    this.#agent = new Agent({
      connections: options.maxConcurrent,
      pipelining: 1,
      keepAliveTimeout: 1000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connect: (opts, callback) => {
        // IP literals never reach lookup: checked here, before any packet (SEC-03, SEC-06).
        const literal = opts.hostname.replace(/^\[|\]$/g, '')
        if (isIP(literal) !== 0 && !allowPrivate) {
          const range = specialUseRange(literal)
          if (range !== undefined) return callback(new FetchError('not_allowed_address', range), null)
        }
        connector(opts, (err, socket) => {
          if (err || !socket) return callback(err ?? new FetchError('network'), null)
          // Defence in depth: the peer actually connected to.
          const peer = socket.remoteAddress
          const range = peer === undefined ? 'unknown' : specialUseRange(peer)
          if (range !== undefined && !allowPrivate) {
            socket.destroy()
            return callback(new FetchError('not_allowed_address', `connected ${range}`), null)
          }
          callback(null, socket)
        })
      },
    })
  }

  /** GETs a JSON document under every rule above; throws FetchError. */
  async fetchJson(url: string, limits: { maxBytes?: number } = {}): Promise<FetchedJson> {
    const maxBytes = limits.maxBytes ?? this.#options.maxBytes
    const signal = AbortSignal.timeout(this.#options.timeoutMs)
    await this.#acquire(signal)
    try {
      return await withSpan('cimd.fetch', undefined, () => this.#fetch(url, maxBytes, signal), 'client')
    } catch (err) {
      throw classify(err, signal)
    } finally {
      this.#release()
    }
  }

  async #fetch(url: string, maxBytes: number, signal: AbortSignal): Promise<FetchedJson> {
    const target = new URL(url)
    if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new FetchError('network', 'scheme')
    const response = await request(target, {
      method: 'GET',
      dispatcher: this.#agent,
      signal,
      headers: { accept: 'application/json', 'accept-encoding': 'identity', 'user-agent': USER_AGENT },
    })
    const { statusCode, headers, body } = response
    const header = (name: string) => {
      const v = headers[name]
      return Array.isArray(v) ? v.join(', ') : v
    }
    try {
      // Status and type before size: a challenge page is reported as what it is (IOP-04).
      if (statusCode >= 300 && statusCode < 400) throw new FetchError('redirect', String(statusCode))
      if (statusCode !== 200) throw new FetchError('status', String(statusCode))
      if (!isJsonContentType(header('content-type'))) throw new FetchError('content_type')
      const encoding = header('content-encoding')
      if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') throw new FetchError('content_type', 'encoded body')
      const declared = Number(header('content-length'))
      if (Number.isFinite(declared) && declared > maxBytes) throw new FetchError('too_large', 'content-length')
      const chunks: Buffer[] = []
      let total = 0
      for await (const chunk of body) {
        total += (chunk as Buffer).length
        if (total > maxBytes) throw new FetchError('too_large')
        chunks.push(chunk as Buffer)
      }
      const text = Buffer.concat(chunks).toString('utf8')
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        throw new FetchError('invalid_json')
      }
      return {
        json,
        text,
        cacheControl: header('cache-control'),
        expires: header('expires'),
        date: header('date'),
        age: header('age'),
      }
    } finally {
      // Never read the rest of a refused body.
      if (!body.destroyed) {
        body.on('error', () => {})
        body.destroy()
      }
    }
  }

  async #acquire(signal: AbortSignal): Promise<void> {
    if (this.#active < this.#options.maxConcurrent) {
      this.#active++
      return
    }
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        signal.removeEventListener('abort', onAbort)
        this.#active++
        resolve()
      }
      const onAbort = () => {
        const i = this.#waiting.indexOf(go)
        if (i !== -1) this.#waiting.splice(i, 1)
        reject(new FetchError('timeout', 'waiting for a fetch slot'))
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(go)
    })
  }

  #release(): void {
    this.#active--
    this.#waiting.shift()?.()
  }

  async close(): Promise<void> {
    await this.#agent.close()
  }
}

/** application/json or application/<anything>+json, parameters ignored (CIMD-14). */
export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false
  const type = value.split(';')[0]!.trim().toLowerCase()
  return type === 'application/json' || /^application\/[a-z0-9.!#$&^_-]+\+json$/.test(type)
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])

function classify(err: unknown, signal: AbortSignal): FetchError {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof FetchError) return e
  }
  const code = (err as { code?: string } | undefined)?.code
  const name = (err as { name?: string } | undefined)?.name
  if (signal.aborted || name === 'AbortError' || name === 'TimeoutError' || (code && TIMEOUT_CODES.has(code))) {
    return new FetchError('timeout', code ?? name)
  }
  return new FetchError('network', code ?? name ?? 'error')
}
