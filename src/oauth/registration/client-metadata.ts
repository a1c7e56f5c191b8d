/**
 * The client metadata of a registration request (RFC 7591 §2, §3.2.2): what will be registered,
 * or why it cannot be. Decisions are listed in endpoint.ts; machine clients here:
 *
 * - client_credentials (OAuth 2.1 §4.2) only when the operator turned it on for registration
 *   (`registration.clientCredentials`; CC-01), else invalid_client_metadata; the endpoint then
 *   also requires one of that setting's initial access tokens.
 * - Such a client is confidential (a secret method; never `none`, CC-01). With client_credentials
 *   as its only grant it has no redirect URIs and no response types (RFC 7591 §2.1: the grant
 *   uses no redirection); with authorization_code beside it, everything below applies.
 */
import { isAcceptableRedirectUri, isLoopbackHost } from '../../config/loopback.js'
import type { RegistrationConfig } from '../../config/schema.js'
import { InvalidClientMetadataError, InvalidRedirectUriError } from '../../errors.js'
import type { ClientAuthMethod } from '../clients/registry.js'
import type { RegisteredMetadata } from '../clients/registered.js'

const MAX_REDIRECT_URIS = 10
const MAX_URI_LENGTH = 2000
const MAX_NAME_LENGTH = 100
// Control, zero-width, bidi-override and line-separator characters: a name shown on the consent
// page must read as it is (SEC-25; the same set CIMD strips from names).
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/

/** RFC 7591 §2 and §3.2.2: the metadata as it will be registered, or the reason it cannot be. */
export function validateClientMetadata(body: unknown, reg: RegistrationConfig): RegisteredMetadata {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidClientMetadataError('the request body must be a JSON object of client metadata')
  }
  const m = body as Record<string, unknown>
  const grantsAsked = m.grant_types
  if (Array.isArray(grantsAsked) && grantsAsked.length > 0 && grantsAsked.every((g) => g === 'client_credentials')) {
    return machineMetadata(m, reg)
  }

  const uris = m.redirect_uris
  if (!Array.isArray(uris) || uris.length === 0) {
    throw new InvalidRedirectUriError('redirect_uris is required: a non-empty array of redirect URIs')
  }
  if (uris.length > MAX_REDIRECT_URIS) throw new InvalidRedirectUriError(`at most ${MAX_REDIRECT_URIS} redirect_uris`)
  const kinds = uris.map((uri, i) => {
    if (typeof uri !== 'string' || uri.length > MAX_URI_LENGTH || uri.includes('*') || !isAcceptableRedirectUri(uri)) {
      throw new InvalidRedirectUriError(
        `redirect_uris[${i}] must be an absolute https URI, http on localhost/127.0.0.1/[::1], or a private-use ` +
          'scheme (com.example.app:/cb), without fragment, credentials or wildcards',
      )
    }
    const u = new URL(uri)
    return u.protocol === 'https:' ? 'https' : u.protocol === 'http:' && isLoopbackHost(u.hostname) ? 'loopback' : 'private-use'
  })

  let applicationType: 'native' | 'web'
  if (m.application_type === undefined) {
    if (kinds.every((k) => k === 'https')) applicationType = 'web'
    else if (kinds.every((k) => k !== 'https')) applicationType = 'native'
    else {
      throw new InvalidClientMetadataError(
        'application_type is required when redirect_uris mix https with loopback or private-use schemes (MCPA-F02)',
      )
    }
  } else if (m.application_type === 'native' || m.application_type === 'web') {
    applicationType = m.application_type
  } else {
    throw new InvalidClientMetadataError('application_type must be native or web')
  }
  kinds.forEach((kind, i) => {
    if (applicationType === 'web' && kind !== 'https') {
      throw new InvalidRedirectUriError(`redirect_uris[${i}]: a web application redirects to https URIs only`)
    }
    if (applicationType === 'native' && kind === 'https') {
      throw new InvalidRedirectUriError(
        `redirect_uris[${i}]: a native application redirects to http loopback or a private-use scheme; ` +
          'register claimed https redirect URIs as application_type web',
      )
    }
  })

  const grantTypes = stringList(m.grant_types, 'grant_types') ?? ['authorization_code']
  const unsupportedGrant = grantTypes.find((g) => g !== 'client_credentials' && !(reg.grantTypes as readonly string[]).includes(g))
  if (unsupportedGrant !== undefined) {
    throw new InvalidClientMetadataError(`grant_types: ${unsupportedGrant} is not supported (supported: ${reg.grantTypes.join(', ')})`)
  }
  if (!grantTypes.includes('authorization_code')) {
    throw new InvalidClientMetadataError('grant_types must include authorization_code')
  }
  const responseTypes = stringList(m.response_types, 'response_types') ?? ['code']
  if (responseTypes.length === 0 || responseTypes.some((r) => r !== 'code')) {
    throw new InvalidClientMetadataError('response_types: only code is supported')
  }

  const method = authMethod(m, reg, grantTypes.includes('client_credentials'))
  const name = clientName(m)

  return {
    ...(name !== undefined && { client_name: name }),
    redirect_uris: [...new Set(uris as string[])],
    grant_types: grantTypes,
    response_types: ['code'],
    token_endpoint_auth_method: method as ClientAuthMethod,
    application_type: applicationType,
  }
}

/** A registration whose only grant is client_credentials: a confidential machine client, no redirection. */
function machineMetadata(m: Record<string, unknown>, reg: RegistrationConfig): RegisteredMetadata {
  machineGrantAllowed(reg)
  if (m.redirect_uris !== undefined && !(Array.isArray(m.redirect_uris) && m.redirect_uris.length === 0)) {
    throw new InvalidClientMetadataError('redirect_uris: a client whose only grant is client_credentials has none (RFC 7591 §2.1)')
  }
  const responseTypes = stringList(m.response_types, 'response_types') ?? []
  if (responseTypes.length > 0) {
    throw new InvalidClientMetadataError('response_types: a client whose only grant is client_credentials has none (RFC 7591 §2.1)')
  }
  if (m.application_type !== undefined && m.application_type !== 'web' && m.application_type !== 'native') {
    throw new InvalidClientMetadataError('application_type must be native or web')
  }
  const method = authMethod(m, reg, true)
  const name = clientName(m)
  return {
    ...(name !== undefined && { client_name: name }),
    redirect_uris: [],
    grant_types: ['client_credentials'],
    response_types: [],
    token_endpoint_auth_method: method,
    application_type: m.application_type === 'native' ? 'native' : 'web',
  }
}

/** CC-01: dynamic registration yields client_credentials only where the operator turned it on. */
function machineGrantAllowed(reg: RegistrationConfig): void {
  if (!reg.clientCredentials) {
    throw new InvalidClientMetadataError(
      'grant_types: client_credentials is not available to dynamically registered clients (the operator has not turned it on)',
    )
  }
}

function authMethod(m: Record<string, unknown>, reg: RegistrationConfig, machine: boolean): ClientAuthMethod {
  if (machine) machineGrantAllowed(reg)
  // Absent means none (DCR-04); null or any other non-string is not a method.
  const method = m.token_endpoint_auth_method === undefined ? 'none' : m.token_endpoint_auth_method
  if (typeof method !== 'string' || !(reg.tokenEndpointAuthMethods as readonly string[]).includes(method)) {
    throw new InvalidClientMetadataError(
      `token_endpoint_auth_method must be one of ${reg.tokenEndpointAuthMethods.join(', ')}`,
    )
  }
  if (machine && method === 'none') {
    throw new InvalidClientMetadataError(
      'token_endpoint_auth_method: client_credentials is for confidential clients; register with client_secret_basic or client_secret_post (OAuth 2.1 §4.2)',
    )
  }
  if (m.jwks !== undefined && m.jwks_uri !== undefined) {
    throw new InvalidClientMetadataError('jwks and jwks_uri cannot both be given (RFC 7591 §2)')
  }
  return method as ClientAuthMethod
}

function clientName(m: Record<string, unknown>): string | undefined {
  if (m.client_name === undefined) return undefined
  if (typeof m.client_name !== 'string' || m.client_name.trim() === '' || CONTROL.test(m.client_name)) {
    throw new InvalidClientMetadataError('client_name must be a non-empty string without control, zero-width or bidi characters')
  }
  if ([...m.client_name].length > MAX_NAME_LENGTH) {
    throw new InvalidClientMetadataError(`client_name is longer than ${MAX_NAME_LENGTH} characters`)
  }
  return m.client_name.trim()
}

function stringList(value: unknown, field: string): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new InvalidClientMetadataError(`${field} must be an array of strings`)
  }
  return [...new Set(value as string[])]
}
