/** PKCE with S256 only (O21-05, BCP-03, MCPA-67). */
import { createHash } from 'node:crypto'

/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/
/** BASE64URL(SHA-256(verifier)) is always 43 characters. */
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/

export function isValidChallenge(challenge: string): boolean {
  return CHALLENGE.test(challenge)
}

export function verifyPkce(challenge: string, verifier: string): boolean {
  return VERIFIER.test(verifier) && createHash('sha256').update(verifier).digest('base64url') === challenge
}
