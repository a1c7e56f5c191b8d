/**
 * The authorization request as OAuth defines it (OAuth 2.1 §4.1.1, RFC 8707, RFC 9207): which
 * client and redirect URI it names, whether the rest of it is acceptable, the scopes a code
 * will carry, and how an error is handed back to the client. The person-facing steps (login,
 * consent, upstream sign-in) are in authorize.ts.
 */
import { randomBytes } from 'node:crypto'
import type { GatewayConfig, Resource } from '../../config/load.js'
import { isAcceptableRedirectUri } from '../../config/loopback.js'
import { InvalidRequestError, InvalidScopeError, OAuthError, PublicError, UnauthorizedClientError } from '../../errors.js'
import type { ClientRegistry, OAuthClient } from '../clients/registry.js'
import type { Params } from '../params.js'
import { isValidChallenge } from '../pkce.js'
import { matchRedirectUri } from '../clients/redirect-uri.js'
import { resolveResource } from '../resource-indicator.js'

/** A request between /authorize and its code, kept in the store while the person signs in and consents. */
export interface PendingRequest {
  clientId: string
  redirectUri: string
  redirectUriGiven: boolean
  state: string | undefined
  codeChallenge: string
  resourceId: string
  scopes: string[]
  csrf: string
  /** Hash of the browser-binding cookie value. */
  binding: string
  /** RFC 9449 §10: the thumbprint of the DPoP key the code will be bound to. */
  dpopJkt?: string
}

const OFFLINE_ACCESS = 'offline_access'

class UnsupportedResponseTypeError extends OAuthError {
  constructor(description: string) {
    super('unsupported_response_type', 400, description, { redirectable: true })
  }
}

/**
 * The client and redirect URI, verified before anything may be redirected to it (O21-09,
 * SEC-26): an unknown client or an unregistered redirect URI is an error on the gateway's page.
 */
export async function verifiedClient(
  clients: ClientRegistry,
  params: Params,
): Promise<{ client: OAuthClient; redirectUri: string; redirectUriGiven: boolean }> {
  if (!params.client_id) throw new InvalidRequestError('the client_id parameter is missing')
  const client = await clients.find(params.client_id)
  if (!client) throw new PublicError('invalid_client', 400, 'this application is not known to the gateway')
  const requested = params.redirect_uri ?? (client.redirectUris.length === 1 ? client.redirectUris[0] : undefined)
  if (requested === undefined) throw new InvalidRequestError('the redirect_uri parameter is missing')
  if (!isAcceptableRedirectUri(requested) || !matchRedirectUri(client.redirectUris, requested)) {
    throw new InvalidRequestError('the redirect_uri is not registered for this application', {
      detail: `client ${client.clientId}`,
    })
  }
  return { client, redirectUri: requested, redirectUriGiven: params.redirect_uri !== undefined }
}

/** The rest of the request (OAuth 2.1 §4.1.1); its errors may be redirected to the verified URI. */
export function validateRequest(
  config: GatewayConfig,
  params: Params,
  client: OAuthClient,
  redirectUri: string,
): Omit<PendingRequest, 'binding' | 'redirectUriGiven'> {
  const redirectable = { redirectable: true }
  if (params.response_type !== 'code') {
    throw new UnsupportedResponseTypeError('only response_type=code is supported')
  }
  if (!client.grantTypes.includes('authorization_code')) {
    throw new UnauthorizedClientError('this client may not use the authorization code grant', redirectable)
  }
  if (!params.code_challenge || !isValidChallenge(params.code_challenge)) {
    throw new InvalidRequestError('a PKCE code_challenge is required', redirectable)
  }
  if (params.code_challenge_method !== 'S256') {
    throw new InvalidRequestError('code_challenge_method must be S256', redirectable)
  }
  // RFC 9449 §10: a JWK SHA-256 thumbprint, base64url without padding (43 characters).
  if (params.dpop_jkt !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(params.dpop_jkt)) {
    throw new InvalidRequestError('dpop_jkt must be a base64url SHA-256 JWK thumbprint', redirectable)
  }
  const resource = resolveResource(config, params.resource, true)
  return {
    ...(params.dpop_jkt !== undefined && { dpopJkt: params.dpop_jkt }),
    clientId: client.clientId,
    redirectUri,
    state: params.state,
    codeChallenge: params.code_challenge,
    resourceId: resource.id,
    scopes: grantedScopes(resource, params.scope),
    csrf: randomBytes(24).toString('base64url'),
  }
}

/**
 * The scopes a code will carry: what was asked for plus what every call to the resource
 * needs (a token without them would be useless). No scope asked → the required ones (MCPA-40).
 * offline_access only asks for a refresh token, which the client's grant types decide (OQ-12).
 */
function grantedScopes(resource: Resource, scope: string | undefined): string[] {
  const known = new Set(resource.scopes.map((s) => s.name))
  const requested = (scope ?? '').split(' ').filter((s) => s && s !== OFFLINE_ACCESS)
  const unknown = requested.filter((s) => !known.has(s))
  if (unknown.length > 0) {
    throw new InvalidScopeError(`unknown scope: ${unknown.join(' ')}`, { redirectable: true })
  }
  return [...new Set([...resource.requiredScopes, ...requested])]
}

/** RFC 9207 §2: `iss` accompanies error responses too (MCPA-F01). */
export function errorRedirect(redirectUri: string, err: PublicError, state: string | undefined, issuer: string): string {
  const target = new URL(redirectUri)
  target.searchParams.append('error', err.code)
  target.searchParams.append('error_description', err.description)
  if (state !== undefined) target.searchParams.append('state', state)
  target.searchParams.append('iss', issuer)
  return target.href
}
