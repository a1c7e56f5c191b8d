/**
 * Which headers cross the upstream hop and in what form: what never goes upstream (hop-by-hop,
 * the client's credentials), what only the gateway may set, what never comes back, and how a
 * value is made safe for a header.
 */
import { isGatehouseCookie } from '../http/cookies.js'

/** Hop-by-hop (RFC 9110 §7.6.1) and credential headers that never go upstream. */
export const DROPPED_REQUEST_HEADERS = [
  'authorization',
  // The DPoP proof belongs to the client's token, which never goes upstream either (UPS-01).
  'dpop',
  'proxy-authorization',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Node has already answered `Expect: 100-continue` and read the body; undici refuses to send
  // the header at all (it would turn every curl POST over 1 KiB into a 502).
  'expect',
  'forwarded',
  'x-real-ip',
  // The gateway has checked Origin (MCPT-01); passed on, a browser origin would trip the
  // DNS-rebinding guards MCP servers commonly run for localhost.
  'origin',
]

/**
 * Headers the gateway checks or sets. Spelled with `_` for `-`, a client copy would slip past
 * the checks, yet CGI-style servers (WSGI, PHP, Rack) read `X_User` as `X-User` (both become
 * HTTP_X_USER): such copies are dropped (BCP-13). Other names with `_` pass untouched (MCPT-15).
 */
export const GUARDED_REQUEST_HEADERS = [
  ...DROPPED_REQUEST_HEADERS,
  'cookie',
  'host',
  'mcp-session-id',
  'mcp-protocol-version',
  'mcp-method',
  'mcp-name',
  'content-type',
  'content-length',
  'content-encoding',
  'traceparent',
  'tracestate',
]

/**
 * Hop-by-hop response headers (RFC 9110 §7.6.1), and the upstream's own challenge: the gateway is
 * the protected resource clients authenticate to (MCPS-07), so an upstream WWW-Authenticate must
 * not send them to another authorization server.
 */
export const DROPPED_RESPONSE_HEADERS = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'www-authenticate']

/**
 * Whether a Set-Cookie line would land on one of Gatehouse's cookies. Names compare without
 * case, and a nameless cookie (`=gatehouse-session=x`) counts by its value: browsers send it
 * as that bare value, which the gateway would read as its own cookie.
 */
export function setsGatehouseCookie(line: string): boolean {
  const pair = line.split(';', 1)[0]!
  const eq = pair.indexOf('=')
  const name = (eq === -1 ? '' : pair.slice(0, eq)).trim()
  const effective = name === '' ? pair.slice(eq + 1).split('=', 1)[0]!.trim() : name
  return isGatehouseCookie(effective.toLowerCase().replace(/^__(host|secure)-/, ''))
}

/** Header values must be visible ASCII; anything else (non-ASCII names, CR/LF) is percent-encoded. */
export function headerSafe(value: string): string {
  return /^[\x20-\x7E]*$/.test(value) ? value : encodeURIComponent(value)
}

/** The scope header of a verified token, built once: the verifier's cache hands out the same scope set on every call. */
const scopeHeaders = new WeakMap<ReadonlySet<string>, string>()

export function scopeHeader(scopes: ReadonlySet<string>): string {
  let header = scopeHeaders.get(scopes)
  if (header === undefined) {
    header = [...scopes].join(' ')
    scopeHeaders.set(scopes, header)
  }
  return header
}
