/**
 * The authorization endpoint (OAuth 2.1 §4.1.1) and the password login and consent forms a
 * person goes through before a code is issued. The pending request lives in the store, bound
 * to the browser by a cookie and to its forms by a CSRF token (MCPS-02); a code is issued at
 * most once per request because the request is taken atomically. Login at an upstream OIDC
 * provider is in upstream-login.ts.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AccessDeniedError, OAuthError, PublicError } from '../../errors.js'
import { refuseForeignOrigin } from '../../http/origin-check.js'
import { hash, SESSION_COOKIE } from '../../login/sessions.js'
import { storeKeys } from '../../store/keys.js'
import { oauthPaths } from '../endpoints.js'
import { singleValued } from '../params.js'
import { errorRedirect, validateRequest, verifiedClient, type PendingRequest } from './request.js'
import { BINDING_COOKIE, expired, type AuthorizeDeps, type AuthorizeSteps } from './steps.js'

export function registerAuthorize(app: FastifyInstance, deps: AuthorizeDeps, steps: AuthorizeSteps): void {
  const { config, store, clients, sessions, cookies } = deps
  const { recordEvent, consents, currentSession, allowed, refuseAccess, continuing, consentStep, showLogin, issueCode } = steps
  const ttl = config.authorizationServer.requestTtlSeconds
  const pageRoute = { config: { errorFormat: 'html' as const } }
  const ownOrigin = new URL(config.publicUrl).origin
  const formRoute = { ...pageRoute, onRequest: async (request: FastifyRequest) => refuseForeignOrigin(request, ownOrigin) }

  app.get(oauthPaths.authorize, pageRoute, async (request, reply) => {
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

  app.post(`${oauthPaths.authorize}/login`, formRoute, async (request, reply) => {
    const form = singleValued(request.body)
    const { id, pending, client } = await continuing(request, form)
    const provider = deps.login
    if (!provider) throw new PublicError('login_unavailable', 503, 'no login provider is configured')
    const username = form.username ?? ''
    const wait = await deps.passwordFailures?.blocked(request, username)
    if (wait !== undefined) {
      reply.code(429).header('retry-after', String(wait))
      const later = wait < 120 ? `${wait} seconds` : `${Math.ceil(wait / 60)} minutes`
      return showLogin(reply, id, pending, client, `Too many failed sign-ins for this name. Try again in ${later}.`, username)
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

  app.post(`${oauthPaths.authorize}/consent`, formRoute, async (request, reply) => {
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
}
