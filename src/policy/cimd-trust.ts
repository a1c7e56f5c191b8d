/**
 * Which Client ID Metadata Document URLs the gateway will even look at (SEC-04, OQ-13).
 * Pure: decided on the raw client id before any DNS resolution or fetch.
 *
 * Entries (in `cimd.trust.allow` and `cimd.trust.deny`):
 * - `url`: exactly this client id, by simple string comparison (CIMD-08).
 * - `prefix`: Authlete's allowlist semantics (ATL-03): the same scheme and authority (string
 *   comparison), a path that starts with all of the entry's path segments in order (so
 *   `/a/b` admits `/a/b` and `/a/b/c`, never `/a/bc`), and the entry's query, if it has one.
 * - `host`: the client id's host (case-insensitive) on the default port, or `host:port`;
 *   `*.example.com` matches any name below example.com (not example.com itself).
 *
 * A matching deny entry always wins. With no allow entry and `any` off, nothing is allowed.
 * The first matching allow entry decides, and its options (clientCredentials) are the ones
 * that apply; `any` admits with no options.
 */
import { splitRawUrl, type RawUrlParts } from './cimd-url-rules.js'

export type TrustEntry = { url: string } | { prefix: string } | { host: string }

export interface TrustPolicy {
  allow: readonly TrustEntry[]
  deny: readonly TrustEntry[]
  /** Accept any client id that passes the URL rules (a startup warning says so). */
  any: boolean
}

export interface TrustDecision {
  allowed: boolean
  /** The rule that decided, for the refusal page and the log, e.g. `cimd.trust.deny[0] (host *.example.com)`. */
  rule: string
  /** The allow entry that admitted the client id, whose options (clientCredentials) apply to it. */
  entry?: TrustEntry
}

export function describeEntry(entry: TrustEntry): string {
  if ('url' in entry) return `url ${entry.url}`
  if ('prefix' in entry) return `prefix ${entry.prefix}`
  return `host ${entry.host}`
}

export function decideTrust(policy: TrustPolicy, clientId: string): TrustDecision {
  const parts = splitRawUrl(clientId)
  const denied = parts ? policy.deny.findIndex((e) => matches(e, clientId, parts)) : -1
  if (denied !== -1) return { allowed: false, rule: `cimd.trust.deny[${denied}] (${describeEntry(policy.deny[denied]!)})` }
  const allowed = parts ? policy.allow.findIndex((e) => matches(e, clientId, parts)) : -1
  if (allowed !== -1) {
    const entry = policy.allow[allowed]!
    return { allowed: true, rule: `cimd.trust.allow[${allowed}] (${describeEntry(entry)})`, entry }
  }
  if (policy.any && parts) return { allowed: true, rule: 'cimd.trust.any' }
  return {
    allowed: false,
    rule: policy.allow.length === 0 ? 'cimd.trust (nothing is allowed yet: default deny)' : 'cimd.trust.allow (no entry matches)',
  }
}

export function matches(entry: TrustEntry, clientId: string, parts: RawUrlParts): boolean {
  if ('url' in entry) return entry.url === clientId
  if ('prefix' in entry) {
    const e = splitRawUrl(entry.prefix)
    if (!e || e.scheme !== parts.scheme || e.authority !== parts.authority) return false
    if (e.query !== undefined && e.query !== parts.query) return false
    const want = segments(e.path)
    const have = segments(parts.path)
    // A trailing slash in the entry ("/clients/") asks for something below it.
    if (e.path.endsWith('/') && e.path !== '/' && have.length <= want.length) return false
    return want.every((s, i) => have[i] === s)
  }
  return hostMatches(entry.host, parts)
}

function segments(path: string): string[] {
  return path.split('/').filter((s, i, all) => i > 0 && !(s === '' && i === all.length - 1))
}

const DEFAULT_PORT = { https: '443', http: '80' } as const

function hostMatches(pattern: string, parts: RawUrlParts): boolean {
  const { host, port } = splitAuthority(parts.authority.toLowerCase())
  const want = splitAuthority(pattern.toLowerCase())
  const effectivePort = port ?? DEFAULT_PORT[parts.scheme]
  if ((want.port ?? DEFAULT_PORT[parts.scheme]) !== effectivePort) return false
  if (want.host.startsWith('*.')) {
    const suffix = want.host.slice(1)
    return host.endsWith(suffix) && host.length > suffix.length
  }
  return host === want.host
}

function splitAuthority(authority: string): { host: string; port: string | undefined } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(authority)
  if (!m) return { host: authority, port: undefined }
  return { host: m[1]!, port: m[2] === undefined || m[2] === '' ? undefined : m[2] }
}

/** Load-time checks of the entries; messages are relative to the entry. */
export function trustEntryProblems(entry: TrustEntry): string[] {
  if ('url' in entry || 'prefix' in entry) {
    const value = 'url' in entry ? entry.url : entry.prefix
    const parts = splitRawUrl(value)
    if (!parts || parts.authority === '' || parts.authority.includes('@')) return ['must be an http(s) URL with a host and no user name']
    if (value.includes('#')) return ['must not have a fragment']
    if ('url' in entry && (parts.path === '' || parts.path === '/')) return ['a client id URL has a path (not just /)']
    return []
  }
  if (!/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/i.test(entry.host)) {
    return ['must be a DNS name, optionally starting with *. and ending with :port']
  }
  return []
}
