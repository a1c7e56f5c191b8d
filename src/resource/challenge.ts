/**
 * The `WWW-Authenticate` challenges of the resource side: Bearer (RFC 6750 §3, RFC 9728 §5.1),
 * then DPoP with its algorithms (RFC 9449 §7.1). Pure: builds the header value only.
 *
 * - No credentials at all: no `error` attribute (BRR-03, MCPA-18).
 * - `resource_metadata` is always present and absolute, so clients never fall back to
 *   guessing well-known URLs (MCPA-12, OQ-07).
 * - `scope` names every scope the operation needs, in one challenge (MCPA-14, MCPA-F05), except
 *   `offline_access`: it asks the authorization server for a refresh token and is never the
 *   resource's to advertise (SEP-2207, REF-04, MCPA-F04), whatever the configuration lists.
 */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope'
export type DpopErrorCode = 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce'

export interface Challenge {
  resourceMetadataUrl: string
  scopes: readonly string[]
  error?: BearerErrorCode
  description?: string
  /** RFC 9449 §7.1: a second challenge for the DPoP scheme, naming the accepted algorithms. */
  dpop?: { algorithms: readonly string[]; error?: DpopErrorCode; description?: string }
}

export function bearerChallenge(c: Challenge): string {
  const params: string[] = []
  if (c.error) {
    params.push(`error="${c.error}"`)
    if (c.description) params.push(`error_description="${quotable(c.description)}"`)
  }
  const scopes = c.scopes.filter((s) => s !== 'offline_access')
  if (scopes.length > 0) params.push(`scope="${scopes.join(' ')}"`)
  params.push(`resource_metadata="${c.resourceMetadataUrl}"`)
  const bearer = `Bearer ${params.join(', ')}`
  if (!c.dpop) return bearer
  // The DPoP challenge after the Bearer one, so clients that read only the first keep working.
  const dpop: string[] = []
  if (c.dpop.error) {
    dpop.push(`error="${c.dpop.error}"`)
    if (c.dpop.description) dpop.push(`error_description="${quotable(c.dpop.description)}"`)
  }
  dpop.push(`algs="${c.dpop.algorithms.join(' ')}"`)
  return `${bearer}, DPoP ${dpop.join(', ')}`
}

/** RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E. */
function quotable(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '').slice(0, 200)
}
