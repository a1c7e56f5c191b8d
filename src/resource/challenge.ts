/**
 * The `WWW-Authenticate: Bearer` challenge of the resource side (RFC 6750 §3, RFC 9728 §5.1).
 * Pure: builds the header value only.
 *
 * - No credentials at all: no `error` attribute (BRR-03, MCPA-18).
 * - `resource_metadata` is always present and absolute, so clients never fall back to
 *   guessing well-known URLs (MCPA-12, OQ-07).
 * - `scope` names every scope the operation needs, in one challenge (MCPA-14, MCPA-F05).
 */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope'

export interface Challenge {
  resourceMetadataUrl: string
  scopes: readonly string[]
  error?: BearerErrorCode
  description?: string
}

export function bearerChallenge(c: Challenge): string {
  const params: string[] = []
  if (c.error) {
    params.push(`error="${c.error}"`)
    if (c.description) params.push(`error_description="${quotable(c.description)}"`)
  }
  if (c.scopes.length > 0) params.push(`scope="${c.scopes.join(' ')}"`)
  params.push(`resource_metadata="${c.resourceMetadataUrl}"`)
  return `Bearer ${params.join(', ')}`
}

/** RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E. */
function quotable(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '').slice(0, 200)
}
