/**
 * What a metadata-document client's key set may hold, wherever it comes from (`jwks` in the
 * document or the body behind `jwks_uri`): public keys only (CIMD-18, SEC-32), and the RFC 7638
 * thumbprints the change-detection fingerprint uses for inline keys (SEC-34). Pure functions.
 */
import { createHash } from 'node:crypto'

/** JWK members that carry private or symmetric key material (RFC 7518 §6, RFC 8037 §2, ML-DSA `priv`). */
export const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth', 'priv']
/** More keys than any real client publishes; bounds the work one assertion can cause. */
export const MAX_KEYS = 100

/** A public JWK as received (a null-prototype object from the strict parser). */
export type PublicJwk = Readonly<Record<string, unknown>> & { readonly kty: string; readonly kid?: string }

export interface PublicKeySet {
  readonly keys: readonly PublicJwk[]
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Why `value` is not an acceptable public JWK Set, or undefined when it is one. */
export function keySetProblem(value: unknown): string | undefined {
  const keys = isObject(value) ? value.keys : undefined
  if (!Array.isArray(keys)) return 'must be a JWK Set ({"keys": [...]})'
  if (keys.length > MAX_KEYS) return `holds more than ${MAX_KEYS} keys`
  for (const key of keys) {
    if (!isObject(key)) return 'holds something that is not a key'
    if (PRIVATE_JWK_MEMBERS.some((m) => Object.hasOwn(key, m))) return 'holds private or symmetric key material (CIMD §4.1)'
    if (typeof key.kty !== 'string') return 'holds a key without kty'
    if (key.kid !== undefined && typeof key.kid !== 'string') return 'holds a key whose kid is not a string'
  }
  return undefined
}

/** The members RFC 7638 §3.2 hashes, per key type. */
const THUMBPRINT_MEMBERS: Record<string, readonly string[]> = {
  EC: ['crv', 'kty', 'x', 'y'],
  RSA: ['e', 'kty', 'n'],
  OKP: ['crv', 'kty', 'x'],
}

/**
 * RFC 7638 JWK thumbprint (SHA-256, base64url). For a key type RFC 7638 does not cover, or a
 * key missing a required member, the hash of all its members in sorted order: still a stable
 * identity for change detection, never used to select or trust a key.
 */
export function jwkThumbprint(jwk: Readonly<Record<string, unknown>>): string {
  const required = THUMBPRINT_MEMBERS[String(jwk.kty)]
  const members = required && required.every((m) => typeof jwk[m] === 'string') ? required : Object.keys(jwk).sort()
  const canonical = `{${members.map((m) => `${JSON.stringify(m)}:${JSON.stringify(jwk[m])}`).join(',')}}`
  return createHash('sha256').update(canonical, 'utf8').digest('base64url')
}

/** Where a private_key_jwt client's keys come from: exactly one of inline `jwks` or a `jwks_uri` (SEC-17, SEC-32). */
export type ClientKeySource = { readonly jwks: PublicKeySet } | { readonly jwksUri: string }
