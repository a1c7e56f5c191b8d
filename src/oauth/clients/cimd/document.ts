/**
 * Validation of a fetched Client ID Metadata Document (SEC-16, SEC-17, CIMD-11..19, OQ-03,
 * OQ-05). Two stages, so that the operator's metadata policy can repair what it is meant to
 * repair (an unsupported grant type is dropped by `subset_of`, not a crash):
 *
 * 1. `validateDocument`: the document itself, before the policy: a JSON object without
 *    duplicate keys, `client_id` byte-equal to the URL, no secrets and no private keys,
 *    well-typed members, an acceptable auth method, `jwks` xor `jwks_uri`.
 * 2. `validateEffective`: the result of the policy, which is what the gateway uses: everything
 *    of stage 1 again, non-empty `redirect_uris` (https or http loopback), and grant types,
 *    response types and auth method the gateway supports; for `private_key_jwt`, a key source
 *    (SEC-33), a `jwks_uri` under the client id URL rules (SEC-09, SEC-32) and a signing
 *    algorithm from the allow-list.
 */
import { isLoopbackHost } from '../../../config/loopback.js'
import { keySetProblem } from '../../../policy/client-public-keys.js'
import { checkClientIdUrl, type UrlRulesOptions } from '../../../policy/cimd-url-rules.js'

export class DocumentError extends Error {
  override readonly name = 'DocumentError'
  constructor(
    /** The member at fault, named on the refusal page. */
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field} ${reason}`)
  }
}

export const SUPPORTED_GRANT_TYPES = ['authorization_code', 'refresh_token'] as const
export const SUPPORTED_AUTH_METHODS = ['none', 'private_key_jwt'] as const
const SHARED_SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post', 'client_secret_jwt'])
const MAX_NAME = 200

/** What stage 2 checks against the gateway's configuration. */
export interface EffectiveRules {
  /** cimd.privateKeyJwt.algorithms: token_endpoint_auth_signing_alg must be one of them. */
  assertionAlgorithms: readonly string[]
  /** The client id URL rules, applied to jwks_uri too (same https, host and IP-literal rules). */
  urlRules: UrlRulesOptions
  /** The gateway's own origin: a jwks_uri there is refused like a client id there (SEC-05). */
  selfOrigin: string
}

export type Metadata = Record<string, unknown>

/**
 * Parses the body strictly: a JSON object, no duplicate keys (RFC 8259 leaves them undefined;
 * we refuse), every object rebuilt without a prototype so `__proto__` is just a key (SEC-16).
 */
export function parseDocument(text: string): Metadata {
  let value: unknown
  try {
    value = JSON.parse(text, (_key, v: unknown) =>
      v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.assign(Object.create(null), v) : v,
    )
  } catch {
    throw new DocumentError('document', 'is not valid JSON')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new DocumentError('document', 'is not a JSON object')
  const duplicate = findDuplicateKey(text)
  if (duplicate !== undefined) throw new DocumentError(duplicate, 'appears twice in one object')
  return value as Metadata
}

/** Stage 1: the document as published (before the metadata policy). */
export function validateDocument(doc: Metadata, clientId: string): void {
  if (doc.client_id !== clientId) throw new DocumentError('client_id', 'is not exactly the URL the document was fetched from')
  for (const secret of ['client_secret', 'client_secret_expires_at']) {
    if (Object.hasOwn(doc, secret)) throw new DocumentError(secret, 'must not appear: a metadata document holds no secrets')
  }
  stringArray(doc, 'redirect_uris')
  stringArray(doc, 'grant_types')
  stringArray(doc, 'response_types')
  for (const field of ['client_name', 'scope', 'client_uri', 'logo_uri', 'tos_uri', 'policy_uri', 'jwks_uri', 'token_endpoint_auth_method', 'token_endpoint_auth_signing_alg']) {
    if (Object.hasOwn(doc, field) && typeof doc[field] !== 'string') throw new DocumentError(field, 'must be a string')
  }
  if (typeof doc.client_name === 'string' && doc.client_name.length > MAX_NAME) {
    throw new DocumentError('client_name', `is longer than ${MAX_NAME} characters`)
  }
  const method = doc.token_endpoint_auth_method
  if (typeof method === 'string' && SHARED_SECRET_METHODS.has(method)) {
    throw new DocumentError('token_endpoint_auth_method', 'must not be a shared-secret method (CIMD §4.1)')
  }
  if (Object.hasOwn(doc, 'jwks') && Object.hasOwn(doc, 'jwks_uri')) throw new DocumentError('jwks', 'and jwks_uri must not both appear')
  if (Object.hasOwn(doc, 'jwks')) checkPublicJwks(doc.jwks)
  if (typeof doc.jwks_uri === 'string' && !doc.jwks_uri.startsWith('https://')) throw new DocumentError('jwks_uri', 'must be an https URL')
  // OQ-05: absent means none; but keys without a declared method would be a silent downgrade (SEC-30).
  if (method === undefined && (Object.hasOwn(doc, 'jwks') || Object.hasOwn(doc, 'jwks_uri'))) {
    throw new DocumentError('token_endpoint_auth_method', 'is missing although the document publishes keys')
  }
}

/**
 * Stage 2: the effective metadata (after the policy), what the gateway will enforce. `machine`:
 * the trust entry that admitted the client id allows client_credentials (CC-01); such a client
 * must use private_key_jwt, and needs no redirect URIs when that is its only grant.
 */
export function validateEffective(meta: Metadata, clientId: string, rules: EffectiveRules, machine = false): void {
  validateDocument(meta, clientId)
  const grants = grantTypesOf(meta)
  const machineGrant = grants.includes('client_credentials')
  const redirecting = grants.filter((g) => g !== 'client_credentials')
  if (machineGrant && !machine) throw new DocumentError('grant_types', CLIENT_CREDENTIALS_NOT_ALLOWED)
  const redirectUris = stringArray(meta, 'redirect_uris') ?? []
  if (redirectUris.length === 0 && (redirecting.length > 0 || !machineGrant)) {
    throw new DocumentError('redirect_uris', 'must list at least one redirect URI')
  }
  redirectUris.forEach((uri) => {
    if (!isCimdRedirectUri(uri)) throw new DocumentError('redirect_uris', 'must be https or http on a loopback host, without fragment or user name')
  })
  const method = (meta.token_endpoint_auth_method as string | undefined) ?? 'none'
  if (!(SUPPORTED_AUTH_METHODS as readonly string[]).includes(method)) {
    throw new DocumentError('token_endpoint_auth_method', 'must be none or private_key_jwt')
  }
  if (method === 'private_key_jwt') checkKeySource(meta, rules)
  if (machineGrant && method !== 'private_key_jwt') {
    throw new DocumentError('token_endpoint_auth_method', 'must be private_key_jwt with client_credentials: a public client never gets that grant (CC-01)')
  }
  const unsupported = redirecting.filter((g) => !(SUPPORTED_GRANT_TYPES as readonly string[]).includes(g))
  if (unsupported.length > 0) {
    throw new DocumentError('grant_types', 'lists a grant type the gateway does not support (a metadata policy subset_of can drop it)')
  }
  if (machineGrant && redirecting.length === 0) {
    // RFC 7591 §2.1: a client that never redirects has no response types.
    if ((stringArray(meta, 'response_types') ?? []).length > 0) throw new DocumentError('response_types', 'must be absent or [] when client_credentials is the only grant')
    return
  }
  if (!grants.includes('authorization_code')) throw new DocumentError('grant_types', 'must include authorization_code')
  const responses = stringArray(meta, 'response_types') ?? ['code']
  if (responses.length === 0 || responses.some((r) => r !== 'code')) throw new DocumentError('response_types', 'must be ["code"]')
}

export const CLIENT_CREDENTIALS_NOT_ALLOWED =
  'lists client_credentials, which the trust entry admitting this client id does not allow (clientCredentials on a cimd.trust.allow entry; CC-01)'

/** RFC 7591 §2 default when absent. */
export function grantTypesOf(meta: Metadata): string[] {
  return stringArray(meta, 'grant_types') ?? ['authorization_code']
}

/** https, or http on a loopback host (CIMD redirect URIs; private-use schemes are not accepted). */
export function isCimdRedirectUri(uri: string): boolean {
  let u: URL
  try {
    u = new URL(uri)
  } catch {
    return false
  }
  if (uri.includes('#') || u.username || u.password) return false
  if (u.protocol === 'https:') return true
  return u.protocol === 'http:' && isLoopbackHost(u.hostname)
}

function stringArray(doc: Metadata, field: string): string[] | undefined {
  if (!Object.hasOwn(doc, field)) return undefined
  const v = doc[field]
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new DocumentError(field, 'must be an array of strings')
  return v as string[]
}

function checkPublicJwks(jwks: unknown): void {
  const problem = keySetProblem(jwks)
  if (problem !== undefined) throw new DocumentError('jwks', problem)
}

/**
 * private_key_jwt needs keys to check assertions with (SEC-33: the draft is silent, WG issue
 * #100; refused rather than accepted as a client that can never authenticate). A jwks_uri is
 * fetched later with the document's fetcher, so it must pass the same URL rules as a client id
 * now (SEC-09, CIMD-42), and must not point at the gateway itself.
 */
function checkKeySource(meta: Metadata, rules: EffectiveRules): void {
  const jwks = meta.jwks as { keys?: unknown[] } | undefined
  if (jwks === undefined && meta.jwks_uri === undefined) {
    throw new DocumentError('token_endpoint_auth_method', 'private_key_jwt needs jwks or jwks_uri (SEC-33)')
  }
  if (jwks !== undefined && (jwks.keys ?? []).length === 0) throw new DocumentError('jwks', 'holds no keys, so private_key_jwt cannot work (SEC-33)')
  if (typeof meta.jwks_uri === 'string') {
    const checked = checkClientIdUrl(meta.jwks_uri, rules.urlRules)
    if (!checked.ok) throw new DocumentError('jwks_uri', `breaks the URL rule ${checked.rule}`)
    if (checked.url.origin === rules.selfOrigin) throw new DocumentError('jwks_uri', 'points at the gateway itself')
  }
  const alg = meta.token_endpoint_auth_signing_alg
  if (alg !== undefined && !rules.assertionAlgorithms.includes(alg as string)) {
    throw new DocumentError('token_endpoint_auth_signing_alg', `must be one of ${rules.assertionAlgorithms.join(', ')}`)
  }
}

/**
 * The first key that appears twice in one object, or undefined. A small scanner over text
 * JSON.parse already accepted, so it only tracks strings, nesting and key positions.
 */
export function findDuplicateKey(text: string): string | undefined {
  const stack: { keys: Set<string> | undefined; expectKey: boolean }[] = []
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === '"') {
      let j = i + 1
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      const top = stack[stack.length - 1]
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string
        if (top.keys.has(key)) return key
        top.keys.add(key)
        top.expectKey = false
      }
      i = j + 1
      continue
    }
    if (c === '{') stack.push({ keys: new Set(), expectKey: true })
    else if (c === '[') stack.push({ keys: undefined, expectKey: false })
    else if (c === '}' || c === ']') stack.pop()
    else if (c === ',') {
      const top = stack[stack.length - 1]
      if (top?.keys) top.expectKey = true
    }
    i++
  }
  return undefined
}
