/**
 * The registration endpoint (RFC 7591) with read and delete (RFC 7592): DCR-01..05, MCPA-F02.
 * Registered only when `registration.enabled`; otherwise /oauth/register is a plain 404.
 *
 * Decisions (documented in config/REFERENCE.md through the schema descriptions):
 * - An absent token_endpoint_auth_method means `none`, a public client, as MCP clients expect
 *   (DCR-04; RFC 7591 §2 would say client_secret_basic). Only confidential clients get a secret.
 * - An absent application_type (MCPA-F02 says clients MUST send it; older ones do not) is
 *   inferred from the redirect URIs: all https → web; all loopback or private-use scheme →
 *   native; a mix → refused, asking for the field.
 * - native: http loopback or a private-use scheme only (RFC 8252 §7.1, §7.3; OpenID Connect
 *   Registration §2); an app with claimed https redirects registers as web. web: https only.
 * - grant_types default to authorization_code (RFC 7591 §2) and must include it: it is the only
 *   grant that starts anything here. response_types default to and may only be code.
 * - Metadata the gateway does not use (logo_uri, client_uri, scope, jwks, software_statement,
 *   …) is ignored and not stored; client_name is untrusted text, capped and control-free, and
 *   escaped wherever it is shown.
 * - No update (PUT answers 405): a client deletes its registration and registers again.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { contextOf, type AuditEvent, type AuditTrail } from '../../audit/events.js'
import type { GatewayConfig } from '../../config/load.js'
import { isAcceptableRedirectUri, isLoopbackHost } from '../../config/loopback.js'
import type { RegistrationConfig } from '../../config/schema.js'
import {
  InvalidClientMetadataError,
  InvalidRedirectUriError,
  InvalidTokenError,
  PublicError,
  TooManyRequestsError,
} from '../../errors.js'
import { addressKey, type RateLimiter } from '../../http/rate-limit.js'
import { storeKeys } from '../../store/keys.js'
import type { ClientAuthMethod } from '../clients/registry.js'
import type { RegisteredClientRecord, RegisteredClients, RegisteredMetadata } from '../clients/registered.js'
import { oauthPaths } from '../endpoints.js'

export interface RegisterDeps {
  config: GatewayConfig
  registered: RegisteredClients
  limiter: RateLimiter
  audit: AuditTrail
}

const REGISTRATION_PATH = oauthPaths.register
const MAX_REDIRECT_URIS = 10
const MAX_URI_LENGTH = 2000
const MAX_NAME_LENGTH = 100
// Control, zero-width, bidi-override and line-separator characters: a name shown on the consent
// page must read as it is (SEC-25; the same set CIMD strips from names).
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/

const sha256 = (s: string) => createHash('sha256').update(s).digest()

type RegistrationRefusal = Extract<AuditEvent, { type: 'client.registration_refused' }>['reason']

export async function registrationRoutes(app: FastifyInstance, { config, registered, limiter, audit }: RegisterDeps): Promise<void> {
  const reg = config.registration
  // This context reads JSON (RFC 7591 §3.1) and nothing else; other media types get 415.
  app.removeAllContentTypeParsers()
  // A body that is not JSON, or carries __proto__/constructor keys, is invalid client metadata
  // (RFC 7591 §3.2.2, DCR-03), not a generic invalid_request.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 16 * 1024 }, (request, body, done) =>
    parseJson(request, body as string, (err, value) =>
      done(err ? new InvalidClientMetadataError('the request body must be a JSON object of client metadata') : null, value),
    ),
  )
  const initialDigest = reg.initialAccessToken === undefined ? undefined : sha256(reg.initialAccessToken)
  const clientUri = (clientId: string) => `${config.issuer}${REGISTRATION_PATH}/${encodeURIComponent(clientId)}`

  app.post(REGISTRATION_PATH, async (request, reply) => {
    try {
      return await register(request, reply)
    } catch (err) {
      const reason = refusalReason(err)
      if (reason) audit.record({ type: 'client.registration_refused', reason }, contextOf(request))
      throw err
    }
  })

  async function register(request: FastifyRequest, reply: FastifyReply) {
    // DCR-05: the shared limiter, with registration's own setting (IPv6 counted per /64). Before
    // the initial access token check, so guessing that token is rate-limited too.
    await limiter.enforce(request, [
      {
        limit: 'registration',
        scope: 'address',
        key: addressKey(request.ip),
        rule: { requests: reg.rateLimit.perAddress, windowSeconds: reg.rateLimit.windowSeconds },
        storeKey: storeKeys.registrationRate,
      },
    ])
    if (initialDigest) {
      const presented = bearer(request)
      if (presented === undefined || !timingSafeEqual(sha256(presented), initialDigest)) {
        throw new InvalidTokenError('registering a client needs a valid initial access token', {
          headers: { 'www-authenticate': presented === undefined ? 'Bearer' : 'Bearer error="invalid_token"' },
          detail: presented === undefined ? 'no initial access token' : 'wrong initial access token',
        })
      }
    }
    const metadata = validateClientMetadata(request.body, reg)
    const registration = await registered.register(metadata, request.ip)
    const { record } = registration
    request.log.info(
      {
        clientId: record.clientId,
        reused: registration.reused,
        applicationType: metadata.application_type,
        authMethod: metadata.token_endpoint_auth_method,
      },
      registration.reused ? 'identical registration: existing client returned' : 'client registered',
    )
    audit.record({ type: 'client.registered', clientId: record.clientId, authMethod: metadata.token_endpoint_auth_method }, contextOf(request))
    return reply
      .code(201)
      .header('cache-control', 'no-store')
      .header('pragma', 'no-cache')
      .send({
        ...information(record, registration.registrationToken),
        ...(registration.secret !== undefined && { client_secret: registration.secret }),
      })
  }

  app.get(`${REGISTRATION_PATH}/:clientId`, async (request, reply) => {
    const token = bearer(request)
    const record = await registered.authorized(clientIdParam(request), token)
    return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(information(record, token!))
  })

  app.delete(`${REGISTRATION_PATH}/:clientId`, async (request, reply) => {
    const record = await registered.authorized(clientIdParam(request), bearer(request))
    await registered.delete(record)
    request.log.info({ clientId: record.clientId }, 'client registration deleted')
    audit.record({ type: 'client.deleted', clientId: record.clientId, by: 'client' }, contextOf(request))
    return reply.code(204).header('cache-control', 'no-store').send()
  })

  app.put(`${REGISTRATION_PATH}/:clientId`, async () => {
    throw new PublicError('method_not_allowed', 405, 'registrations cannot be updated; delete this one and register again', {
      headers: { allow: 'GET, DELETE' },
    })
  })
  // RFC 9110 §15.5.6: the endpoints exist, other methods on them are 405 with Allow, not 404.
  app.route({
    method: ['PATCH', 'POST'],
    url: `${REGISTRATION_PATH}/:clientId`,
    handler: async () => {
      throw new PublicError('method_not_allowed', 405, 'a registration is read with GET and deleted with DELETE', {
        headers: { allow: 'GET, DELETE' },
      })
    },
  })
  app.route({
    method: ['GET', 'PUT', 'PATCH', 'DELETE'],
    url: REGISTRATION_PATH,
    handler: async () => {
      throw new PublicError('method_not_allowed', 405, 'clients register with POST', { headers: { allow: 'POST' } })
    },
  })

  /** RFC 7591 §3.2.1 and RFC 7592 §3: the registration as the gateway applies it. */
  function information(record: RegisteredClientRecord, registrationToken: string): Record<string, unknown> {
    return {
      client_id: record.clientId,
      client_id_issued_at: record.issuedAt,
      ...record.metadata,
      ...(record.secretHash !== undefined && { client_secret_expires_at: 0 }),
      registration_access_token: registrationToken,
      registration_client_uri: clientUri(record.clientId),
    }
  }
}

/** Why a registration was refused, for the audit trail; undefined for failures that are not refusals (503). */
function refusalReason(err: unknown): RegistrationRefusal | undefined {
  if (err instanceof InvalidRedirectUriError) return 'invalid_redirect_uri'
  if (err instanceof InvalidClientMetadataError) return 'invalid_metadata'
  if (err instanceof InvalidTokenError) return 'unauthorized'
  if (err instanceof TooManyRequestsError) return 'rate_limited'
  if (err instanceof PublicError && err.code === 'registration_limit_reached') return 'capacity'
  if (err instanceof PublicError && err.status === 400) return 'invalid_metadata'
  return undefined
}

function clientIdParam(request: FastifyRequest): string {
  return (request.params as { clientId?: string }).clientId ?? ''
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  const match = header === undefined ? null : /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header)
  return match?.[1]
}

/** RFC 7591 §2 and §3.2.2: the metadata as it will be registered, or the reason it cannot be. */
export function validateClientMetadata(body: unknown, reg: RegistrationConfig): RegisteredMetadata {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidClientMetadataError('the request body must be a JSON object of client metadata')
  }
  const m = body as Record<string, unknown>

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
  const unsupportedGrant = grantTypes.find((g) => !(reg.grantTypes as readonly string[]).includes(g))
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

  // Absent means none (DCR-04); null or any other non-string is not a method.
  const method = m.token_endpoint_auth_method === undefined ? 'none' : m.token_endpoint_auth_method
  if (typeof method !== 'string' || !(reg.tokenEndpointAuthMethods as readonly string[]).includes(method)) {
    throw new InvalidClientMetadataError(
      `token_endpoint_auth_method must be one of ${reg.tokenEndpointAuthMethods.join(', ')}`,
    )
  }

  let name: string | undefined
  if (m.client_name !== undefined) {
    if (typeof m.client_name !== 'string' || m.client_name.trim() === '' || CONTROL.test(m.client_name)) {
      throw new InvalidClientMetadataError('client_name must be a non-empty string without control, zero-width or bidi characters')
    }
    if ([...m.client_name].length > MAX_NAME_LENGTH) {
      throw new InvalidClientMetadataError(`client_name is longer than ${MAX_NAME_LENGTH} characters`)
    }
    name = m.client_name.trim()
  }
  if (m.jwks !== undefined && m.jwks_uri !== undefined) {
    throw new InvalidClientMetadataError('jwks and jwks_uri cannot both be given (RFC 7591 §2)')
  }

  return {
    ...(name !== undefined && { client_name: name }),
    redirect_uris: [...new Set(uris as string[])],
    grant_types: grantTypes,
    response_types: ['code'],
    token_endpoint_auth_method: method as ClientAuthMethod,
    application_type: applicationType,
  }
}

function stringList(value: unknown, field: string): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new InvalidClientMetadataError(`${field} must be an array of strings`)
  }
  return [...new Set(value as string[])]
}
