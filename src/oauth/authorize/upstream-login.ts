/**
 * Login at an upstream OIDC provider (MCPA-80, MCPS-01..06). The page a person without a
 * session sees is the consent itself; only its POST creates the upstream state record (random,
 * single use, 10 minutes) and sets the state cookie that binds it to this browser, just before
 * the redirect to the IdP. The callback checks both exactly, lets openid-client validate the
 * answer, applies the resource's access rules, starts the session, remembers the consent and
 * issues the code. A sign-in started on the account page comes back here too, without a request.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AccessDeniedError, PublicError } from '../../errors.js'
import { readCookie } from '../../http/cookies.js'
import { sendPage } from '../../http/html.js'
import { UpstreamLoginError, type OidcLoginProvider } from '../../login/oidc.js'
import { saveUpstreamState, STATE_COOKIE, UPSTREAM_STATE_TTL_SECONDS, type UpstreamState } from '../../login/upstream-state.js'
import { refuseForeignOrigin } from '../../http/origin-check.js'
import { hash, SESSION_COOKIE } from '../../login/sessions.js'
import { storeKeys } from '../../store/keys.js'
import { oauthPaths } from '../endpoints.js'
import { singleValued } from '../params.js'
import { consoleReturnPath } from '../return-path.js'
import { errorRedirect, type PendingRequest } from './request.js'
import { BINDING_COOKIE, expired, type AuthorizeDeps, type AuthorizeSteps } from './steps.js'
import { returnPage } from './views.js'

export function registerUpstreamLogin(app: FastifyInstance, deps: AuthorizeDeps, steps: AuthorizeSteps): void {
  const { config, store, clients, sessions, cookies, oidc } = deps
  const { recordEvent, consents, maxAge, allowed, refuseAccess, upstreamFailure, continuing, issueCode } = steps
  const pageRoute = { config: { errorFormat: 'html' as const } }
  const ownOrigin = new URL(config.publicUrl).origin
  const formRoute = { ...pageRoute, onRequest: async (request: FastifyRequest) => refuseForeignOrigin(request, ownOrigin) }

  /**
   * The approval of the consent shown before an upstream login (MCPS-01, MCPS-06): only here is
   * upstream state created and the state cookie set, and only from the browser and page that
   * the request started in (binding cookie + CSRF token).
   */
  app.post(`${oauthPaths.authorize}/upstream`, formRoute, async (request, reply) => {
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
    // MCPS-05: stored only now (after approval), bound to this browser by the state cookie.
    const browserValue = await saveUpstreamState(store, provider.id, start.checks, { requestId: id })
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
    if (record.requestId === undefined) return accountSignIn(request, reply, record)
    const pendingText = await store.take(storeKeys.authorizationRequest(record.requestId))
    if (pendingText === undefined) throw expired()
    reply.header('set-cookie', cookies.clear(BINDING_COOKIE))
    const pending = JSON.parse(pendingText) as PendingRequest
    const client = await clients.find(pending.clientId)
    const provider = oidc.find((p) => p.id === record.providerId)
    if (!client || !provider) throw expired()
    let login: Awaited<ReturnType<OidcLoginProvider['complete']>>
    try {
      login = await provider.complete(returnedTo(request, provider), record)
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

  /** A sign-in started on the account page: no client, no consent; the session, then back there. */
  async function accountSignIn(request: FastifyRequest, reply: FastifyReply, record: UpstreamState) {
    const provider = oidc.find((p) => p.id === record.providerId)
    if (!provider) throw badCallback('provider no longer configured')
    let login: Awaited<ReturnType<OidcLoginProvider['complete']>>
    try {
      login = await provider.complete(returnedTo(request, provider), record)
    } catch (err) {
      if (!(err instanceof UpstreamLoginError)) throw err
      const reason = err.failure === 'denied' ? 'cancelled' : err.failure === 'unavailable' ? 'idp_unreachable' : 'idp_error'
      recordEvent(reply, { type: 'login.failed', provider: provider.id, reason })
      reply.code(err.failure === 'denied' ? 403 : 502)
      return sendPage(reply, returnPage({ title: 'Sign-in failed', message: `The sign-in at ${provider.name} did not complete. Try again from your account page.` }))
    }
    recordEvent(reply, { type: 'login.succeeded', sub: login.identity.sub, provider: login.identity.provider })
    const sessionId = await sessions.create(login.identity, login.authTime)
    reply.header('set-cookie', cookies.serialize(SESSION_COOKIE, sessionId, config.authorizationServer.sessionTtlSeconds))
    return reply.header('cache-control', 'no-store').redirect(consoleReturnPath(record.returnTo) ?? oauthPaths.account, 303)
  }
}

/**
 * The URL the IdP redirected to, rebuilt from publicUrl (never from Host): openid-client derives
 * the token request's redirect_uri from it.
 */
function returnedTo(request: FastifyRequest, provider: OidcLoginProvider): URL {
  const queryString = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : ''
  return new URL(provider.redirectUri + queryString)
}

/** MCPS-05: a callback that does not continue a login this browser approved. Nothing is issued. */
function badCallback(detail: string): PublicError {
  return new PublicError('invalid_request', 400, 'this sign-in cannot be continued; start again from the application', { detail })
}
