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
 * - client_credentials only with `registration.clientCredentials` and one of its initial access
 *   tokens (RFC 7591 §3): an operator hands those to the parties that may create machine clients
 *   (CC-01); without the setting, the grant is invalid_client_metadata (client-metadata.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { contextOf, type AuditEvent, type AuditTrail } from '../../audit/events.js'
import type { GatewayConfig } from '../../config/load.js'
import {
  InvalidClientMetadataError,
  InvalidRedirectUriError,
  InvalidTokenError,
  PublicError,
  TooManyRequestsError,
} from '../../errors.js'
import { addressKey, type RateLimiter } from '../../http/rate-limit.js'
import { storeKeys } from '../../store/keys.js'
import type { RegisteredClientRecord, RegisteredClients } from '../clients/registered.js'
import { oauthPaths } from '../endpoints.js'
import { validateClientMetadata } from './client-metadata.js'

export interface RegisterDeps {
  config: GatewayConfig
  registered: RegisteredClients
  limiter: RateLimiter
  audit: AuditTrail
}

const REGISTRATION_PATH = oauthPaths.register

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
  const machineDigests = (reg.clientCredentials?.initialAccessTokens ?? []).map(sha256)
  const matches = (presented: string | undefined, digest: Buffer) => presented !== undefined && timingSafeEqual(sha256(presented), digest)
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
    const presented = bearer(request)
    // Every digest is compared, so the time taken says nothing about which one matched.
    const machineToken = machineDigests.map((d) => matches(presented, d)).includes(true)
    const refuseToken = (what: string) =>
      new InvalidTokenError(`registering ${what} needs a valid initial access token`, {
        headers: { 'www-authenticate': presented === undefined ? 'Bearer' : 'Bearer error="invalid_token"' },
        detail: presented === undefined ? 'no initial access token' : 'wrong initial access token',
      })
    if (initialDigest && !machineToken && !matches(presented, initialDigest)) throw refuseToken('a client')
    const metadata = validateClientMetadata(request.body, reg)
    // CC-01: a machine client only for a party the operator gave a machine registration token.
    if (metadata.grant_types.includes('client_credentials') && !machineToken) throw refuseToken('a client_credentials client')
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
