/**
 * CORS for browser-based MCP clients on an allowed origin (MCPT-01). Only origins the operator
 * allowed get CORS headers; credentials are bearer tokens, never cookies, so no
 * Access-Control-Allow-Credentials.
 */
import type { IncomingHttpHeaders } from 'node:http'

/** Response headers a client must be able to read: the session id, the auth challenge and a DPoP nonce (RFC 9449 §9). */
const EXPOSED = 'Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, DPoP-Nonce'
const ALLOWED_METHODS = 'GET, POST, DELETE'
/** Request header names a preflight may ask for: plain token characters only. */
const HEADER_LIST = /^[A-Za-z0-9-]+(\s*,\s*[A-Za-z0-9-]+)*$/

export function corsHeaders(origin: string | undefined, allowed: ReadonlySet<string>) {
  if (origin === undefined || !allowed.has(origin)) return undefined
  return { 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSED, vary: 'Origin' }
}

export function preflightHeaders(headers: IncomingHttpHeaders, allowed: ReadonlySet<string>) {
  const base = corsHeaders(headers.origin, allowed)
  if (!base) return undefined
  const requested = headers['access-control-request-headers']
  return {
    ...base,
    'access-control-allow-methods': ALLOWED_METHODS,
    ...(requested && HEADER_LIST.test(requested) && { 'access-control-allow-headers': requested }),
    'access-control-max-age': '600',
  }
}
