/**
 * Checks on the raw `client_id` string before any network I/O (SEC-01..03, CIMD-01..09).
 *
 * The raw string is the identity and the cache key (SEC-02, CIMD-08): nothing here normalizes
 * it. WHATWG `new URL()` removes dot segments, lowercases hosts and drops default ports, so
 * the rules that such normalization would hide are checked on the raw string itself; the
 * parsed URL is used only for what it cannot hide (the host as the resolver will see it).
 */
import { isIP } from 'node:net'

export interface UrlRulesOptions {
  /** Accept http:// client ids (development only; ATL-05). */
  allowHttp: boolean
  /** Accept a query component (ATL-06: refused by default). */
  allowQuery: boolean
  /** Longest accepted client id, in characters (all ASCII). */
  maxUrlLength: number
  /** Accept IP-literal hosts (development loopback mode only; SEC-03). */
  allowPrivateAddresses: boolean
}

/** The raw components of a client id, as written (no normalization). */
export interface RawUrlParts {
  scheme: 'https' | 'http'
  /** host[:port] exactly as written. */
  authority: string
  /** The path exactly as written, starting with `/`. */
  path: string
  /** The query without `?`, or undefined when there is none. */
  query: string | undefined
}

export type UrlRuleOutcome =
  | { ok: true; url: URL; parts: RawUrlParts }
  | { ok: false; rule: string; reason: string }

/** Whether a client id is URL-shaped at all; other ids belong to the other client sources. */
export function looksLikeUrlClientId(clientId: string): boolean {
  return /^https?:\/\//i.test(clientId)
}

/** Splits a raw http(s) URL string into its components without normalizing anything. */
export function splitRawUrl(raw: string): RawUrlParts | undefined {
  const m = /^(https?):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?$/.exec(raw)
  if (!m) return undefined
  return { scheme: m[1] as 'https' | 'http', authority: m[2]!, path: m[3]!, query: m[4] }
}

const refuse = (rule: string, reason: string): UrlRuleOutcome => ({ ok: false, rule, reason })

export function checkClientIdUrl(raw: string, options: UrlRulesOptions): UrlRuleOutcome {
  if (raw.length > options.maxUrlLength) {
    return refuse('url.length', `the client id is longer than ${options.maxUrlLength} characters`)
  }
  // Printable ASCII only: no spaces, controls or raw non-ASCII (IDN hosts must be punycode).
  if (!/^[\x21-\x7e]+$/.test(raw)) return refuse('url.characters', 'the client id contains characters a URL cannot have')
  // RFC 3986 §2 characters only. WHATWG URL reads some others its own way (`\` is `/` in an
  // https URL), so the trust policy, which reads the raw string, and the fetch would disagree:
  // `https://evil.test\.example.com/x` is fetched from evil.test (SEC-01, SEC-04).
  if (!/^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/.test(raw)) return refuse('url.characters', 'the client id contains characters a URL cannot have')
  // Lowercase scheme only: simple string comparison makes HTTPS:// a different, odd identity.
  const scheme = raw.startsWith('https://') ? 'https' : raw.startsWith('http://') ? 'http' : undefined
  if (scheme === undefined) return refuse('url.scheme', 'the client id must be an https URL')
  if (scheme === 'http' && !options.allowHttp) return refuse('url.scheme', 'the client id must be an https URL')
  if (raw.includes('#')) return refuse('url.fragment', 'the client id must not have a fragment')
  const parts = splitRawUrl(raw)
  if (!parts) return refuse('url.syntax', 'the client id is not a valid URL')
  if (parts.authority.includes('@')) return refuse('url.userinfo', 'the client id must not carry a user name or password')
  if (parts.authority === '') return refuse('url.host', 'the client id has no host')
  if (parts.path === '' || parts.path === '/') {
    return refuse('url.path', 'the client id must have a path (not just /)')
  }
  // Dot segments, also percent-encoded (%2e), checked raw: URL parsing would remove them (CIMD-05).
  for (const segment of parts.path.split('/')) {
    const decoded = segment.replace(/%2e/gi, '.')
    if (decoded === '.' || decoded === '..') return refuse('url.dot-segment', 'the client id must not have . or .. path segments')
  }
  if (parts.query !== undefined && !options.allowQuery) return refuse('url.query', 'the client id must not have a query')
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return refuse('url.syntax', 'the client id is not a valid URL')
  }
  // Hosts as the resolver sees them: decimal, octal and hex IPv4 forms come out dotted here.
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (isIP(host) !== 0 && !options.allowPrivateAddresses) {
    return refuse('url.ip-literal', 'the client id must name a host, not an IP address')
  }
  if (/[^a-z0-9.:-]/.test(host)) return refuse('url.host', 'the client id host is not a plain DNS name')
  // The authority as written must be the one the fetcher connects to (lowercase, no default
  // port, no percent-encoding, no trailing dot): the trust policy reads the raw authority, so
  // `EVIL.test`, `evil.test:443`, `evil%2etest` or `evil.test.` would slip past a deny entry (SEC-04).
  if (parts.authority !== url.host || url.hostname.endsWith('.')) {
    return refuse('url.host', 'the client id host must be written plainly: lowercase, without the default port, percent-encoding or a trailing dot')
  }
  return { ok: true, url, parts }
}
