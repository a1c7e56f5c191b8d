/**
 * Finds the access token of a request, by the rules of RFC 6750 §2 as MCP narrows them:
 * the Authorization header only (MCPA-51, BRR-01), exactly once; scheme Bearer or DPoP (RFC 9449 §7.1).
 */
import type { IncomingMessage } from 'node:http'

export type BearerExtraction =
  /** `scheme` dpop: RFC 9449 §7.1 `Authorization: DPoP <token>`, whose proof the guard checks. */
  | { kind: 'token'; token: string; scheme: 'bearer' | 'dpop' }
  /** No bearer credentials: the challenge carries no error code (BRR-03). */
  | { kind: 'none' }
  /** A malformed attempt: 400 invalid_request (RFC 6750 §3.1). */
  | { kind: 'invalid'; description: string }

/** RFC 6750 §2.1 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

export function extractBearer(raw: IncomingMessage): BearerExtraction {
  // Node keeps only the first Authorization header; rawHeaders shows them all.
  let count = 0
  for (let i = 0; i < raw.rawHeaders.length; i += 2) {
    if (raw.rawHeaders[i]!.length === 13 && raw.rawHeaders[i]!.toLowerCase() === 'authorization') count++
  }
  if (hasQueryToken(raw.url ?? '')) {
    return { kind: 'invalid', description: 'access tokens are not accepted in the query string' }
  }
  if (count > 1) return { kind: 'invalid', description: 'more than one Authorization header' }
  const header = raw.headers.authorization
  if (header === undefined) return { kind: 'none' }
  const space = header.indexOf(' ')
  const scheme = space === -1 ? header : header.slice(0, space)
  const lower = scheme.toLowerCase()
  if (lower !== 'bearer' && lower !== 'dpop') return { kind: 'none' }
  const token = header.slice(space + 1).trim()
  if (space === -1 || !B64TOKEN.test(token)) {
    return { kind: 'invalid', description: 'the Authorization header is not a valid bearer token' }
  }
  return { kind: 'token', token, scheme: lower }
}

/** `access_token` in the query as any form decoder would read it (`access%5Ftoken` included). */
function hasQueryToken(url: string): boolean {
  const q = url.indexOf('?')
  return q !== -1 && new URLSearchParams(url.slice(q + 1)).has('access_token')
}
