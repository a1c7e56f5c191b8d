/**
 * The authorization endpoint (OAuth 2.1 §4.1.1) and the login and consent steps a person
 * goes through before a code is issued.
 *
 * Until client and redirect URI are verified, errors are shown on a gateway page and never
 * redirected (O21-09, SEC-26). The pending request lives in the store, bound to the browser by
 * a cookie and to its forms by a CSRF token (MCPS-02); a code is issued at most once per
 * request because the request is taken atomically.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig, Resource } from '../config/load.js'
import {
  AccessDeniedError,
  InvalidRequestError,
  InvalidScopeError,
  OAuthError,
  PublicError,
  UnauthorizedClientError,
} from '../errors.js'
import { readCookie, type CookieJar } from '../http/cookies.js'
import type { Identity, LoginProvider } from '../login/provider.js'
import { hash, type LoginSessions } from '../login/sessions.js'
import { storeKeys } from '../store/keys.js'
import type { Store } from '../store/store.js'
import type { ClientRegistry, OAuthClient } from './clients.js'
import { snapshotOf } from './client-snapshot.js'
import type { Grants } from './grants.js'
import { singleValued, type Params } from './params.js'
import { isValidChallenge } from './pkce.js'
import { matchRedirectUri } from './redirect-uri.js'
import { resolveResource } from './resource-indicator.js'
import { type Page } from '../http/html.js'
import { consentPage, loginPage, type ClientSummary } from './views.js'
import { isAcceptableRedirectUri, isLoopbackHost } from '../config/loopback.js'

export interface AuthorizeDeps {
  config: GatewayConfig
  store: Store
  clients: ClientRegistry
  grants: Grants
  sessions: LoginSessions
  login: LoginProvider | undefined
  cookies: CookieJar
}

interface PendingRequest {
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
}

const SESSION_COOKIE = 'session'
const BINDING_COOKIE = 'authz'
const OFFLINE_ACCESS = 'offline_access'

class UnsupportedResponseTypeError extends OAuthError {
  constructor(description: string) {
    super('unsupported_response_type', 400, description, { redirectable: true })
  }
}

export function registerAuthorize(app: FastifyInstance, deps: AuthorizeDeps): void {
  const { config, store, clients, grants, sessions, cookies } = deps
  const ttl = config.authorizationServer.requestTtlSeconds
  const pageRoute = { config: { errorFormat: 'html' as const } }

  app.get('/oauth/authorize', pageRoute, async (request, reply) => {
    const params = singleValued(request.query)
    const { client, redirectUri, redirectUriGiven } = await verifiedClient(params)
    try {
      const pending = { ...validateRequest(params, client, redirectUri), redirectUriGiven }
      const id = randomBytes(24).toString('base64url')
      const binding = randomBytes(24).toString('base64url')
      await store.set(
        storeKeys.authorizationRequest(id),
        JSON.stringify({ ...pending, binding: hash(binding) } satisfies PendingRequest),
        ttl * 1000,
      )
      reply.header('set-cookie', cookies.serialize(BINDING_COOKIE, binding, ttl))
      const session = await sessions.get(readCookie(request.headers.cookie, cookies.name(SESSION_COOKIE)))
      if (!session) return showLogin(reply, id, { ...pending, binding: '' }, client)
      return await consentStep(reply, id, { ...pending, binding: '' }, client, session.identity, 302)
    } catch (err) {
      if (err instanceof OAuthError && err.redirectable) {
        return reply.redirect(errorRedirect(redirectUri, err, params.state, config.issuer), 302)
      }
      throw err
    }
  })

  app.post('/oauth/authorize/login', pageRoute, async (request, reply) => {
    const form = singleValued(request.body)
    const { id, pending, client } = await continuing(request, form)
    const provider = deps.login
    if (!provider) throw new PublicError('login_unavailable', 503, 'no login provider is configured')
    const identity = await provider.authenticate(form.username ?? '', form.password ?? '')
    if (!identity) {
      request.log.info({ clientId: client.clientId }, 'login failed')
      reply.code(401)
      return showLogin(reply, id, pending, client, 'The username or password is not right.', form.username)
    }
    const sessionId = await sessions.create(identity)
    reply.header('set-cookie', cookies.serialize(SESSION_COOKIE, sessionId, config.authorizationServer.sessionTtlSeconds))
    request.log.info({ sub: identity.sub, provider: identity.provider }, 'login succeeded')
    return consentStep(reply, id, pending, client, identity, 303)
  })

  app.post('/oauth/authorize/consent', pageRoute, async (request, reply) => {
    const form = singleValued(request.body)
    const { id, pending, client } = await continuing(request, form)
    const session = await sessions.get(readCookie(request.headers.cookie, cookies.name(SESSION_COOKIE)))
    if (!session) return showLogin(reply, id, pending, client, 'Your session ended; sign in again.')
    // Taken, so a double submission cannot issue two codes.
    if ((await store.take(storeKeys.authorizationRequest(id))) === undefined) throw expired()
    reply.header('set-cookie', cookies.clear(BINDING_COOKIE))
    if (form.decision !== 'allow') {
      request.log.info({ sub: session.identity.sub, clientId: client.clientId }, 'consent denied')
      const denied = new AccessDeniedError('the user denied the request', { redirectable: true })
      return reply.redirect(errorRedirect(pending.redirectUri, denied, pending.state, config.issuer), 303)
    }
    await rememberConsent(session.identity.sub, pending)
    return issueCode(reply, pending, client, session.identity, 303)
  })

  async function verifiedClient(params: Params): Promise<{ client: OAuthClient; redirectUri: string; redirectUriGiven: boolean }> {
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

  function validateRequest(params: Params, client: OAuthClient, redirectUri: string): Omit<PendingRequest, 'binding' | 'redirectUriGiven'> {
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
    const resource = resolveResource(config, params.resource, true)
    return {
      clientId: client.clientId,
      redirectUri,
      state: params.state,
      codeChallenge: params.code_challenge,
      resourceId: resource.id,
      scopes: grantedScopes(resource, params.scope),
      csrf: randomBytes(24).toString('base64url'),
    }
  }

  /** A form post continues a pending request only from the browser that started it. */
  async function continuing(request: FastifyRequest, form: Params) {
    const id = form.request_id
    const stored = id ? await store.get(storeKeys.authorizationRequest(id)) : undefined
    if (!id || stored === undefined) throw expired()
    const pending = JSON.parse(stored) as PendingRequest
    const binding = readCookie(request.headers.cookie, cookies.name(BINDING_COOKIE))
    if (!binding || hash(binding) !== pending.binding || form.csrf !== pending.csrf) {
      throw new PublicError('invalid_request', 403, 'this form was not sent from the page the gateway showed you')
    }
    const client = await clients.find(pending.clientId)
    if (!client) throw expired()
    return { id, pending, client }
  }

  async function consentStep(
    reply: FastifyReply,
    id: string,
    pending: PendingRequest,
    client: OAuthClient,
    identity: Identity,
    status: 302 | 303,
  ) {
    const remembered = await rememberedScopes(identity.sub, pending)
    if (pending.scopes.every((s) => remembered.includes(s))) {
      if ((await store.take(storeKeys.authorizationRequest(id))) === undefined) throw expired()
      reply.header('set-cookie', cookies.clear(BINDING_COOKIE))
      return issueCode(reply, pending, client, identity, status)
    }
    const resource = resourceOf(pending)
    const descriptions = new Map(resource.scopes.map((s) => [s.name, s.description]))
    return send(
      reply,
      consentPage({
        client: summary(client, pending.redirectUri),
        user: identity.email ?? identity.name ?? identity.sub,
        resourceName: resource.name,
        resourceUri: resource.uri,
        scopes: pending.scopes.map((name) => ({
          name,
          description: descriptions.get(name) ?? '',
          isNew: remembered.length > 0 && !remembered.includes(name),
        })),
        loopbackOnly: client.redirectUris.every((u) => isLoopbackUri(u)),
        fields: { request_id: id, csrf: pending.csrf },
        formTargets: [originOf(pending.redirectUri)],
      }),
    )
  }

  function showLogin(reply: FastifyReply, id: string, pending: PendingRequest, client: OAuthClient, error?: string, username?: string) {
    return send(
      reply,
      loginPage({
        client: summary(client, pending.redirectUri),
        resourceName: resourceOf(pending).name,
        fields: { request_id: id, csrf: pending.csrf },
        ...(error !== undefined && { error }),
        ...(username !== undefined && { username }),
        formTargets: [originOf(pending.redirectUri)],
      }),
    )
  }

  async function issueCode(reply: FastifyReply, pending: PendingRequest, client: OAuthClient, identity: Identity, status: 302 | 303) {
    const grant = grants.newGrant({
      sub: identity.sub,
      clientId: client.clientId,
      resourceId: pending.resourceId,
      scopes: pending.scopes,
    })
    const code = await grants.issueCode({
      grant,
      redirectUri: pending.redirectUri,
      redirectUriGiven: pending.redirectUriGiven,
      codeChallenge: pending.codeChallenge,
      refreshAllowed: client.grantTypes.includes('refresh_token'),
      ...withSnapshot(client),
    })
    reply.log.info({ sub: identity.sub, clientId: client.clientId, resource: pending.resourceId, grantId: grant.grantId }, 'code issued')
    const target = new URL(pending.redirectUri)
    target.searchParams.append('code', code)
    if (pending.state !== undefined) target.searchParams.append('state', pending.state)
    target.searchParams.append('iss', config.issuer)
    return reply.header('cache-control', 'no-store').redirect(target.href, status)
  }

  function consentKey(sub: string, pending: PendingRequest): string {
    return storeKeys.consent(hash(sub), hash(pending.clientId), pending.resourceId)
  }

  async function rememberedScopes(sub: string, pending: PendingRequest): Promise<string[]> {
    const stored = await store.get(consentKey(sub, pending))
    return stored === undefined ? [] : (JSON.parse(stored) as string[])
  }

  async function rememberConsent(sub: string, pending: PendingRequest): Promise<void> {
    const scopes = [...new Set([...(await rememberedScopes(sub, pending)), ...pending.scopes])]
    await store.set(consentKey(sub, pending), JSON.stringify(scopes), config.authorizationServer.consentTtlSeconds * 1000)
  }

  function resourceOf(pending: PendingRequest): Resource {
    return config.resources.find((r) => r.id === pending.resourceId)!
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
function errorRedirect(redirectUri: string, err: PublicError, state: string | undefined, issuer: string): string {
  const target = new URL(redirectUri)
  target.searchParams.append('error', err.code)
  target.searchParams.append('error_description', err.description)
  if (state !== undefined) target.searchParams.append('state', state)
  target.searchParams.append('iss', issuer)
  return target.href
}

function expired(): PublicError {
  return new PublicError('invalid_request', 400, 'this sign-in has expired or was already completed; start again from the application')
}

function summary(client: OAuthClient, redirectUri: string): ClientSummary {
  return { name: client.name, clientId: client.clientId, verifiedAs: client.verifiedAs, redirectUri }
}

function isLoopbackUri(uri: string): boolean {
  try {
    const u = new URL(uri)
    return u.protocol === 'http:' && isLoopbackHost(u.hostname)
  } catch {
    return false
  }
}

function originOf(uri: string): string {
  const u = new URL(uri)
  return u.origin === 'null' ? `${u.protocol}` : u.origin
}

function send(reply: FastifyReply, page: Page) {
  return reply
    .header('content-security-policy', page.csp)
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(page.html)
}

function withSnapshot(client: OAuthClient): { client?: ReturnType<typeof snapshotOf> } {
  const snapshot = snapshotOf(client)
  return snapshot ? { client: snapshot } : {}
}
