/**
 * The steps the authorization routes share (OAuth 2.1 §4.1.1): the browser's session, the
 * resource's access rules, the login and consent pages, and the issuing of the code. Until
 * client and redirect URI are verified, errors are shown on a gateway page and never
 * redirected (O21-09, SEC-26); a form continues a pending request only from the browser and
 * page that started it (binding cookie + CSRF token, MCPS-02).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { contextOf, type AuditEvent, type AuditTrail } from '../../audit/events.js'
import type { GatewayConfig, Resource } from '../../config/load.js'
import { isLoopbackHost } from '../../config/loopback.js'
import { AccessDeniedError, PublicError } from '../../errors.js'
import { readCookie, type CookieJar } from '../../http/cookies.js'
import { sendPage } from '../../http/html.js'
import type { PasswordFailureLimit } from '../../http/password-failures.js'
import type { OidcLoginProvider, UpstreamLoginError } from '../../login/oidc.js'
import type { Identity, LoginProvider } from '../../login/provider.js'
import { hash, SESSION_COOKIE, sessionCounts, type LoginSession, type LoginSessions } from '../../login/sessions.js'
import { mayAccess } from '../../policy/access-rules.js'
import { storeKeys } from '../../store/keys.js'
import type { Store } from '../../store/store.js'
import type { ClientRegistry, OAuthClient } from '../clients/registry.js'
import { snapshotOf } from '../clients/snapshot.js'
import { Consents } from '../grants/consents.js'
import type { Grants } from '../grants/grants.js'
import type { Params } from '../params.js'
import { errorRedirect, type PendingRequest } from './request.js'
import { consentPage, loginPage, returnPage, upstreamConsentPage, type ClientSummary } from './views.js'

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

/** The cookie that binds a pending request to the browser that started it. */
export const BINDING_COOKIE = 'authz'
/**
 * How long the consent page waits for a provider's discovery (its CSP needs the authorization
 * endpoint's origin). Short, so an IdP that does not answer delays the page little; a refused
 * connection fails at once, and the click then shows the IdP's failure.
 */
const DISCOVERY_WAIT_MS = 3_000

export type AuthorizeSteps = ReturnType<typeof authorizeSteps>

export function authorizeSteps(deps: AuthorizeDeps) {
  const { config, store, clients, grants, sessions, cookies, oidc, audit } = deps
  const recordEvent = (reply: FastifyReply, event: AuditEvent) => audit.record(event, contextOf(reply.request))
  const consents = new Consents(store, config.authorizationServer.consentTtlSeconds)
  const maxAge = config.login.session.maxAgeSeconds

  /** The session of this browser, if it is still good for a new authorization. */
  async function currentSession(request: FastifyRequest): Promise<LoginSession | undefined> {
    const session = await sessions.get(readCookie(request.headers.cookie, cookies.name(SESSION_COOKIE)))
    const rules = { passwordLogin: deps.login !== undefined, oidcProviderIds: oidc.map((p) => p.id), maxAgeSeconds: maxAge }
    return session && sessionCounts(session, rules) ? session : undefined
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
      ...(pending.dpopJkt !== undefined && { dpopJkt: pending.dpopJkt }),
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

  return { recordEvent, consents, maxAge, currentSession, allowed, refuseAccess, upstreamFailure, continuing, consentStep, showLogin, issueCode }
}


export function expired(): PublicError {
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
