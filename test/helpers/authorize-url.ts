/**
 * Authorization requests as the tests write them: the parameters of a valid request for the
 * client `web` (registered with https://app.example.com/cb in most suites) with a fresh S256
 * challenge, which each suite overrides or removes to probe one rule at a time, and the code
 * read back from the redirect.
 */
import { createHash, randomBytes } from 'node:crypto'

/** Parameters on top of the defaults; a parameter given as undefined is left out. */
export type AuthorizeParams = Record<string, string | undefined>

/**
 * The query of an authorization request: response_type=code, client_id=web,
 * redirect_uri=https://app.example.com/cb, an S256 code_challenge (of a fresh verifier nobody
 * keeps, unless one is given), then `params` in order; `repeated` is appended after them
 * (a parameter sent twice).
 */
export function authorizeQuery(params: AuthorizeParams = {}, repeated: [string, string][] = []): URLSearchParams {
  const query = new URLSearchParams()
  const defaults: Record<string, string> = {
    response_type: 'code',
    client_id: 'web',
    redirect_uri: 'https://app.example.com/cb',
    code_challenge: createHash('sha256').update(randomBytes(32)).digest('base64url'),
    code_challenge_method: 'S256',
  }
  for (const [k, v] of Object.entries({ ...defaults, ...params })) if (v !== undefined) query.set(k, v)
  for (const [k, v] of repeated) query.append(k, v)
  return query
}

/** The authorization request URL at `origin` (see authorizeQuery). */
export function authorizeUrl(origin: string, params: AuthorizeParams = {}, repeated: [string, string][] = []): string {
  const url = new URL('/oauth/authorize', origin)
  url.search = authorizeQuery(params, repeated).toString()
  return url.href
}

/** The code in a redirect to the client, or null when there is none. */
export const codeOf = (visit: { location?: string }): string | null =>
  visit.location ? new URL(visit.location).searchParams.get('code') : null
