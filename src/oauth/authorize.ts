/**
 * The authorization endpoint (OAuth 2.1 §4.1.1) and the login and consent steps a person
 * goes through before a code is issued.
 *
 * Until client and redirect URI are verified, errors are shown on a gateway page and never
 * redirected (O21-09, SEC-26). The pending request lives in the store, bound to the browser by
 * a cookie and to its forms by a CSRF token (MCPS-02); a code is issued at most once per
 * request because the request is taken atomically.
 *
 * With an upstream OIDC provider (MCPA-80, MCPS-01..06) the page a person without a session sees
 * is the consent itself; only its POST creates the upstream state record (random, single use,
 * 10 minutes) and sets the state cookie that binds it to this browser, just before the redirect
 * to the IdP. The callback checks both exactly, lets openid-client validate the answer, applies
 * the resource's access rules, starts the session, remembers the consent and issues the code.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { contextOf, type AuditEvent, type AuditTrail } from '../audit/events.js'
import type { GatewayConfig, Resource } from '../config/load.js'
import { AccessDeniedError, OAuthError, PublicError } from '../errors.js'
import { readCookie, type CookieJar } from '../http/cookies.js'
import type { PasswordFailureLimit } from '../http/rate-limit.js'
import { UpstreamLoginError, type OidcLoginProvider, type UpstreamChecks } from '../login/oidc.js'
import type { Identity, LoginProvider } from '../login/provider.js'
import { hash, isFresh, SESSION_COOKIE, type LoginSession, type LoginSessions } from '../login/sessions.js'
import { mayAccess } from '../policy/access-rules.js'
import { storeKeys } from '../store/keys.js'
import type { Store } from '../store/store.js'
import { errorRedirect, validateRequest, verifiedClient, type PendingRequest } from './authorization-request.js'
import type { ClientRegistry, OAuthClient } from './clients.js'
import { Consents } from './consents.js'
import { snapshotOf } from './client-snapshot.js'
import type { Grants } from './grants.js'
import { singleValued, type Params } from './params.js'
import { sendPage } from '../http/html.js'
import { consentPage, loginPage, returnPage, upstreamConsentPage, type ClientSummary } from './views.js'
import { isLoopbackHost } from '../config/loopback.js'

export interface AuthorizeDeps {
  config: GatewayConfig
  store: Store
  clients: ClientRegistry
  grants: Grants
  sessions: LoginSessions
  login: LoginProvider | undefined
  /** The configured upstream OpenID Providers, in configuration order. */
  oidc: readonly OidcLoginProvider[]
  cookies: CookieJar
  audit: AuditTrail
  /** Failed password sign-ins per username; absent when rate limits are off. */
  passwordFailures: PasswordFailureLimit | undefined
}

/** One upstream login the person approved, between the redirect to the IdP and its callback. */
interface UpstreamState extends UpstreamChecks {
  providerId: string
  /** The pending authorization request it continues. */
  requestId: string
  /** Hash of the state cookie's value: the browser that approved (MCPS-05). */
  binding: string
}

const BINDING_COOKIE = 'authz'
const STATE_COOKIE = 'oidc-state'
/** MCPS-05: upstream state is short-lived. Also how long a pending request waits for the IdP. */
const UPSTREAM_STATE_TTL_SECONDS = 600
/**
 * How long the consent page waits for a provider's discovery (its CSP needs the authorization
 * endpoint's origin). Short, so an IdP that does not answer delays the page little; a refused
 * connection fails at once, and the click then shows the IdP's failure.
 */
const DISCOVERY_WAIT_MS = 3_000

export function registerAuthorize(app: FastifyInstance, deps: AuthorizeDeps): void {
  const { config, store, clients, grants, sessions, cookies, oidc, audit } = deps
  const recordEvent = (reply: FastifyReply, event: AuditEvent) => audit.record(event, contextOf(reply.request))
  const consents = new Consents(store, config.authorizationServer.consentTtlSeconds)
  const maxAge = config.login.session.maxAgeSeconds
  const ttl = config.authorizationServer.requestTtlSeconds
  const pageRoute = { config: { errorFormat: 'html' as const } }

  app.get('/oauth/authorize', pageRoute, async (request, reply) => {
    const params = singleValued(request.query)
    const { client, redirectUri, redirectUriGiven } = await verifiedClient(clients, params)
    try {
      const pending = { ...validateRequest(config, params, client, redirectUri), redirectUriGiven }
      const id = randomBytes(24).toString('base64url')
      const binding = randomBytes(24).toString('base64url')
      await store.set(
        storeKeys.authorizationRequest(id),
        JSON.stringify({ ...pending, binding: hash(binding) } satisfies PendingRequest),
        ttl * 1000,
      )
      reply.header('set-cookie', cookies.serialize(BINDING_COOKIE, binding, ttl))
      const session = await currentSession(request)
      if (!session) return await showLogin(reply, id, { ...pending, binding: '' }, client)
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
    const username = form.username ?? ''
    const wait = await deps.passwordFailures?.blocked(request, username)
    if (wait !== undefined) {
      reply.code(429).header('retry-after', String(wait))
      return showLogin(reply, id, pending, client, `Too many failed sign-ins for this name. Try again in ${Math.ceil(wait / 60)} minutes.`, username)
    }
    const identity = await provider.authenticate(username, form.password ?? '')
    if (!identity) {
      await deps.passwordFailures?.failed(request, username)
      recordEvent(reply, { type: 'login.failed', provider: provider.id, reason: 'bad_credentials' })
      reply.code(401)
      return showLogin(reply, id, pending, client, 'The username or password is not right.', form.username)
    }
    const sessionId = await sessions.create(identity)
    reply.header('set-cookie', cookies.serialize(SESSION_COOKIE, sessionId, config.authorizationServer.sessionTtlSeconds))
    recordEvent(reply, { type: 'login.succeeded', sub: identity.sub, provider: identity.provider })
    return consentStep(reply, id, pending, client, identity, 303)
  })

  /**
   * The approval of the consent shown before an upstream login (MCPS-01, MCPS-06): only here is
   * upstream state created and the state cookie set, and only from the browser and page that
   * the request started in (binding cookie + CSRF token).
   */
  app.post('/oauth/authorize/upstream', pageRoute, async (request, reply) => {
    const form = singleValued(request.body)
    const { id, pending, client } = await continuing(request, form)
    if (form.decision === 'deny' || form.provider === undefined) {
      if ((await store.take(storeKeys.authorizationRequest(id))) === undefined) throw expired()
      reply.header('set-cookie', cookies.clear(BINDING_COOKIE))
      recordEvent(reply, { type: 'consent.denied', clientId: client.clientId, resource: pending.resourceId })
      const denied = new AccessDeniedError('the user denied the request', { redirectable: true })
      return reply.redirect(errorRedirect(pending.redirectUri, denied, pending.state, config.issuer), 303)
    }
    const provider = oidc.find((p) => p.id === form.provider)
    if (!provider) throw new PublicError('invalid_request', 400, 'this sign-in option is not offered')
    let start: Awaited<ReturnType<OidcLoginProvider['start']>>
    try {
      start = await provider.start(maxAge)
    } catch (err) {
      if (!(err instanceof UpstreamLoginError)) throw err
      if ((await store.take(storeKeys.authorizationRequest(id))) === undefined) throw expired()
      reply.header('set-cookie', cookies.clear(BINDING_COOKIE))
      return upstreamFailure(reply, pending, provider, err)
    }
    // MCPS-05: random per request, stored only now (after approval), bound to this browser by a
    // fresh value in the state cookie, single use (taken at the callback), ten minutes.
    const browserValue = randomBytes(32).toString('base64url')
    const record: UpstreamState = { ...start.checks, providerId: provider.id, requestId: id, binding: hash(browserValue) }
    await store.set(storeKeys.upstreamLoginState(hash(record.state)), JSON.stringify(record), UPSTREAM_STATE_TTL_SECONDS * 1000)
    // The person may take a while at the IdP: the pending request waits as long as the state does.
    await store.set(storeKeys.authorizationRequest(id), JSON.stringify(pending), UPSTREAM_STATE_TTL_SECONDS * 1000)
    request.log.info({ clientId: client.clientId, resource: pending.resourceId, provider: provider.id }, 'consent granted, upstream login started')
    reply.header('set-cookie', cookies.serialize(STATE_COOKIE, browserValue, UPSTREAM_STATE_TTL_SECONDS))
    return reply.header('cache-control', 'no-store').redirect(start.url.href, 303)
  })

  /**
   * The IdP sends the person back here. Tampered, replayed or foreign state (wrong browser,
   * wrong provider) ends on a 400 page with nothing issued (MCPS-05). Once the pending request
   * is found, the client is verified, so failures also hand the client an OAuth error.
   */
  app.get<{ Params: { provider: string } }>('/oauth/callback/:provider', pageRoute, async (request, reply) => {
    const query = singleValued(request.query)
    const state = query.state
    if (!state || state.length > 512) throw badCallback('no state parameter')
    const key = storeKeys.upstreamLoginState(hash(state))
    const stored = await store.get(key)
    if (stored === undefined) throw badCallback('unknown, expired or used state')
    const record = JSON.parse(stored) as UpstreamState
    const cookie = readCookie(request.headers.cookie, cookies.name(STATE_COOKIE))
    // Checked before the take, so a stranger's request cannot burn a login in progress.
    if (record.providerId !== request.params.provider || !cookie || hash(cookie) !== record.binding) {
      throw badCallback(record.providerId !== request.params.provider ? 'state of another provider' : 'state cookie missing or of another browser')
    }
    if ((await store.take(key)) === undefined) throw badCallback('state used concurrently')
    // The state cookie is single use like its record: gone whatever happens next.
    reply.header('set-cookie', cookies.clear(STATE_COOKIE))
    const pendingText = await store.take(storeKeys.authorizationRequest(record.requestId))
    if (pendingText === undefined) throw expired()
    reply.header('set-cookie', cookies.clear(BINDING_COOKIE))
    const pending = JSON.parse(pendingText) as PendingRequest
    const client = await clients.find(pending.clientId)
    const provider = oidc.find((p) => p.id === record.providerId)
    if (!client || !provider) throw expired()
    // The URL the IdP redirected to, rebuilt from publicUrl (never from Host): openid-client
    // derives the token request's redirect_uri from it.
    const queryString = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : ''
    let login: Awaited<ReturnType<OidcLoginProvider['complete']>>
    try {
      login = await provider.complete(new URL(provider.redirectUri + queryString), record)
    } catch (err) {
      if (!(err instanceof UpstreamLoginError)) throw err
      request.log.info({ clientId: client.clientId, provider: provider.id, failure: err.failure, detail: err.detail }, 'login failed')
      const reason = err.failure === 'denied' ? 'cancelled' : err.failure === 'unavailable' ? 'idp_unreachable' : 'idp_error'
      recordEvent(reply, { type: 'login.failed', provider: provider.id, reason })
      return upstreamFailure(reply, pending, provider, err)
    }
    const { identity } = login
    recordEvent(reply, { type: 'login.succeeded', sub: identity.sub, provider: identity.provider })
    if (!allowed(reply, pending, client, identity)) return refuseAccess(reply, pending)
    const sessionId = await sessions.create(identity, login.authTime)
    reply.header('set-cookie', cookies.serialize(SESSION_COOKIE, sessionId, config.authorizationServer.sessionTtlSeconds))
    // The person approved before leaving for the IdP (the POST above); now we know who they are.
    await consents.remember(identity.sub, client, pending.resourceId, pending.scopes)
    recordEvent(reply, { type: 'consent.granted', sub: identity.sub, clientId: client.clientId, resource: pending.resourceId, scopes: pending.scopes, remembered: false })
    return issueCode(reply, pending, client, identity, 303)
  })

  /** The session of this browser, if it is still good for a new authorization. */
  async function currentSession(request: FastifyRequest): Promise<LoginSession | undefined> {
    const session = await sessions.get(readCookie(request.headers.cookie, cookies.name(SESSION_COOKIE)))
    if (!session) return undefined
    // A session of a provider no longer configured does not count; nor one older than max age.
    const known = session.identity.provider === 'static' ? deps.login !== undefined : oidc.some((p) => p.id === session.identity.provider)
    return known && isFresh(session, maxAge) ? session : undefined
  }

  /** The resource's access rules (checked after login, before consent is remembered or a code issued). */
  function allowed(reply: FastifyReply, pending: PendingRequest, client: OAuthClient, identity: Identity): boolean {
    if (mayAccess(resourceOf(pending).access, identity)) return true
    recordEvent(reply, { type: 'access.refused', sub: identity.sub, provider: identity.provider, clientId: client.clientId, resource: pending.resourceId })
    return false
  }

  /** 403 page naming no rule; its link hands access_denied to the verified redirect URI. */
  function refuseAccess(reply: FastifyReply, pending: PendingRequest) {
    const resource = resourceOf(pending)
    const denied = new AccessDeniedError(`the user is not allowed to use ${resource.name}`, { redirectable: true })
    reply.code(403)
    return sendPage(
      reply,
      returnPage({
        title: 'Access not allowed',
        message: `Your account is not allowed to use ${resource.name}. Ask the people who run it if you need access.`,
        returnUrl: errorRedirect(pending.redirectUri, denied, pending.state, config.issuer),
      }),
    )
  }

  /** RFC 6749 §4.1.2.1: cancelled → access_denied; unreachable → temporarily_unavailable; bad answer → server_error. */
  function upstreamFailure(reply: FastifyReply, pending: PendingRequest, provider: OidcLoginProvider, err: UpstreamLoginError) {
    const { code, status, title, message } =
      err.failure === 'denied'
        ? { code: 'access_denied', status: 403, title: 'Sign-in cancelled', message: `The sign-in at ${provider.name} was cancelled or refused.` }
        : err.failure === 'unavailable'
          ? { code: 'temporarily_unavailable', status: 502, title: 'Sign-in unavailable', message: `${provider.name} cannot be reached right now. Try again in a moment.` }
          : { code: 'server_error', status: 502, title: 'Sign-in failed', message: `${provider.name} sent an answer the gateway cannot accept.` }
    if (err.failure !== 'denied') reply.log.warn({ provider: provider.id, failure: err.failure, detail: err.detail }, 'upstream login failed')
    reply.code(status)
    const oauthError = new PublicError(code, status, code === 'access_denied' ? 'the user did not sign in' : 'the sign-in provider failed', { redirectable: true })
    return sendPage(reply, returnPage({ title, message, returnUrl: errorRedirect(pending.redirectUri, oauthError, pending.state, config.issuer) }))
  }

  app.post('/oauth/authorize/consent', pageRoute, async (request, reply) => {
    const form = singleValued(request.body)
    const { id, pending, client } = await continuing(request, form)
    // The session as it is now (fresh, of a configured provider), not the one the page was shown
    // to: the person may have signed in again since, as someone the access rules refuse.
    const session = await currentSession(request)
    if (!session) return showLogin(reply, id, pending, client, 'Your session ended; sign in again.')
    // Taken, so a double submission cannot issue two codes.
    if ((await store.take(storeKeys.authorizationRequest(id))) === undefined) throw expired()
    reply.header('set-cookie', cookies.clear(BINDING_COOKIE))
    if (form.decision === 'allow' && !allowed(reply, pending, client, session.identity)) return refuseAccess(reply, pending)
    if (form.decision !== 'allow') {
      recordEvent(reply, { type: 'consent.denied', sub: session.identity.sub, clientId: client.clientId, resource: pending.resourceId })
      const denied = new AccessDeniedError('the user denied the request', { redirectable: true })
      return reply.redirect(errorRedirect(pending.redirectUri, denied, pending.state, config.issuer), 303)
    }
    await consents.remember(session.identity.sub, client, pending.resourceId, pending.scopes)
    recordEvent(reply, { type: 'consent.granted', sub: session.identity.sub, clientId: client.clientId, resource: pending.resourceId, scopes: pending.scopes, remembered: false })
    return issueCode(reply, pending, client, session.identity, 303)
  })

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
    if (!allowed(reply, pending, client, identity)) {
      // Taken, so nothing can be issued for this request any more.
      if ((await store.take(storeKeys.authorizationRequest(id))) === undefined) throw expired()
      reply.header('set-cookie', cookies.clear(BINDING_COOKIE))
      return refuseAccess(reply, pending)
    }
    const remembered = await consents.scopes(identity.sub, client, pending.resourceId)
    if (pending.scopes.every((s) => remembered.includes(s)) && maySkipConsent(client)) {
      if ((await store.take(storeKeys.authorizationRequest(id))) === undefined) throw expired()
      reply.header('set-cookie', cookies.clear(BINDING_COOKIE))
      recordEvent(reply, { type: 'consent.granted', sub: identity.sub, clientId: client.clientId, resource: pending.resourceId, scopes: pending.scopes, remembered: true })
      return issueCode(reply, pending, client, identity, status)
    }
    const resource = resourceOf(pending)
    const descriptions = new Map(resource.scopes.map((s) => [s.name, s.description]))
    return sendPage(
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

  async function showLogin(reply: FastifyReply, id: string, pending: PendingRequest, client: OAuthClient, error?: string, username?: string) {
    if (oidc.length > 0) {
      // The consent comes first; the IdP is only reached through its POST (MCPS-01). Its CSP
      // must name where that POST redirects, which only discovery tells: wait for it, briefly.
      await Promise.all(oidc.map((provider) => provider.prefetch(DISCOVERY_WAIT_MS)))
      const resource = resourceOf(pending)
      const descriptions = new Map(resource.scopes.map((s) => [s.name, s.description]))
      return sendPage(
        reply,
        upstreamConsentPage({
          client: summary(client, pending.redirectUri),
          resourceName: resource.name,
          resourceUri: resource.uri,
          scopes: pending.scopes.map((name) => ({ name, description: descriptions.get(name) ?? '', isNew: false })),
          loopbackOnly: client.redirectUris.every((u) => isLoopbackUri(u)),
          providers: oidc.map((p) => ({ id: p.id, name: p.name })),
          passwordLogin: deps.login !== undefined,
          fields: { request_id: id, csrf: pending.csrf },
          ...(error !== undefined && { error }),
          ...(username !== undefined && { username }),
          // The deny redirect and the redirect to each IdP after the POST (CSP form-action).
          formTargets: [...new Set([originOf(pending.redirectUri), ...oidc.map((p) => p.authorizationOrigin)])],
        }),
      )
    }
    return sendPage(
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
      // Copied into the grant so refreshed tokens carry them and refresh re-checks access.
      ...(identity.email !== undefined && { email: identity.email }),
      ...(identity.groups.length > 0 && { groups: [...identity.groups] }),
    })
    const code = await grants.issueCode({
      grant,
      redirectUri: pending.redirectUri,
      redirectUriGiven: pending.redirectUriGiven,
      codeChallenge: pending.codeChallenge,
      refreshAllowed: client.grantTypes.includes('refresh_token'),
      ...withSnapshot(client),
    })
    recordEvent(reply, { type: 'code.issued', sub: identity.sub, clientId: client.clientId, resource: pending.resourceId, grantId: grant.grantId, scopes: pending.scopes })
    const target = new URL(pending.redirectUri)
    target.searchParams.append('code', code)
    if (pending.state !== undefined) target.searchParams.append('state', pending.state)
    target.searchParams.append('iss', config.issuer)
    return reply.header('cache-control', 'no-store').redirect(target.href, status)
  }

  /**
   * SEC-29: a self-asserted client whose redirect URIs are all loopback could be any program on
   * the person's computer (localhost impersonation), so it is shown the page every time unless
   * the operator chose otherwise; the scopes already allowed are not marked new.
   */
  function maySkipConsent(client: OAuthClient): boolean {
    return (
      client.source === 'static' ||
      !client.redirectUris.every((u) => isLoopbackUri(u)) ||
      config.authorizationServer.rememberConsentForLoopbackClients
    )
  }

  function resourceOf(pending: PendingRequest): Resource {
    return config.resources.find((r) => r.id === pending.resourceId)!
  }
}

/** MCPS-05: a callback that does not continue a login this browser approved. Nothing is issued. */
function badCallback(detail: string): PublicError {
  return new PublicError('invalid_request', 400, 'this sign-in cannot be continued; start again from the application', { detail })
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


function withSnapshot(client: OAuthClient): { client?: ReturnType<typeof snapshotOf> } {
  const snapshot = snapshotOf(client)
  return snapshot ? { client: snapshot } : {}
}
