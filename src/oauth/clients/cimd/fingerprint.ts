/**
 * Fingerprints of a Client ID Metadata Document, for change detection (SEC-23, SEC-34, CIMD-40).
 *
 * - `fingerprint` covers the members that decide what a grant allows: redirect_uris,
 *   token_endpoint_auth_method, grant_types, scope, and the key source: the jwks_uri value, or
 *   the RFC 7638 thumbprints of inline jwks keys. Keys behind a jwks_uri are not covered, so
 *   normal rotation there changes nothing (SEC-34: tolerate rotation).
 * - `displayFingerprint` covers what the consent page shows as the client's own words:
 *   client_name and logo_uri.
 *
 * Values are normalized first (absent members take their defaults, lists are sorted), so only a
 * change in meaning changes a digest. Computed on the document as published: it is what the
 * client controls; the operator's policy on top of it is the operator's own change. Pure.
 */
import { createHash } from 'node:crypto'
import type { Metadata } from './document.js'
import { jwkThumbprint } from '../../../policy/client-public-keys.js'

export const SECURITY_MEMBERS = ['redirect_uris', 'token_endpoint_auth_method', 'grant_types', 'scope', 'jwks', 'jwks_uri'] as const
export const DISPLAY_MEMBERS = ['client_name', 'logo_uri'] as const

export interface Fingerprints {
  fingerprint: string
  displayFingerprint: string
  /** A digest per member, so a change can be reported by member name. */
  members: Record<string, string>
}

const digest = (value: unknown) => createHash('sha256').update(JSON.stringify(value ?? null), 'utf8').digest('base64url')
const sortedStrings = (v: unknown): string[] | undefined =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').sort() : undefined

function normalized(doc: Metadata, member: string): unknown {
  switch (member) {
    case 'redirect_uris':
      return sortedStrings(doc.redirect_uris)
    case 'token_endpoint_auth_method':
      return doc.token_endpoint_auth_method ?? 'none' // OQ-05
    case 'grant_types':
      return sortedStrings(doc.grant_types) ?? ['authorization_code'] // RFC 7591 §2 default
    case 'scope':
      return typeof doc.scope === 'string' ? doc.scope.split(' ').filter(Boolean).sort() : undefined
    case 'jwks': {
      const keys = (doc.jwks as { keys?: unknown } | undefined)?.keys
      return Array.isArray(keys) ? keys.map((k) => jwkThumbprint(k as Record<string, unknown>)).sort() : undefined
    }
    default:
      return doc[member]
  }
}

export function fingerprintsOf(doc: Metadata): Fingerprints {
  const members: Record<string, string> = {}
  for (const m of [...SECURITY_MEMBERS, ...DISPLAY_MEMBERS]) members[m] = digest(normalized(doc, m))
  return {
    fingerprint: digest(SECURITY_MEMBERS.map((m) => members[m])),
    displayFingerprint: digest(DISPLAY_MEMBERS.map((m) => members[m])),
    members,
  }
}
