/**
 * The account page (`/account`): a signed-in person sees every grant they gave and revokes one
 * or all; revocation works as `gatehouse grants revoke` does (refresh tokens stop at once, every
 * replica refuses the access tokens within a second, §11.4 REV-01).
 *
 * Sessions follow the consent page's rules (provider still configured, login.session.maxAge).
 * Forms are guarded three ways: SameSite=Lax cookies, the gateway's own Origin, and a CSRF
 * token — before sign-in the hash of a random cookie value (login CSRF), after it the hash of
 * the session id, which only this browser holds. A person reaches only their own grants: a grant
 * id of anyone else is answered exactly like one that does not exist. Either sign-in may return
 * to the operator console (`next`, ../return-path.ts: console paths only, never a URL).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { contextOf, type AuditTrail } from '../../audit/events.js'
import type { GatewayConfig } from '../../config/load.js'
import { PublicError } from '../../errors.js'
import { readCookie, type CookieJar } from '../../http/cookies.js'
import { sendPage } from '../../http/html.js'
import { refuseForeignOrigin } from '../../http/origin-check.js'
import type { PasswordFailureLimit } from '../../http/password-failures.js'
import { UpstreamLoginError, type OidcLoginProvider } from '../../login/oidc.js'
import type { LoginProvider } from '../../login/provider.js'
import { hash, SESSION_COOKIE, sessionCounts, type LoginSession, type LoginSessions } from '../../login/sessions.js'
import { saveUpstreamState, STATE_COOKIE, UPSTREAM_STATE_TTL_SECONDS } from '../../login/upstream-state.js'
import type { Store } from '../../store/store.js'
import type { ClientRegistry } from '../clients/registry.js'
import { oauthPaths } from '../endpoints.js'
import type { Grant, Grants } from '../grants/grants.js'
import { singleValued } from '../params.js'
import { consoleReturnPath } from '../return-path.js'
import { describeGrant } from './grant-lines.js'
import { accountPage, accountSignInPage } from './views.js'

export interface AccountDeps {
  config: GatewayConfig
  store: Store
  grants: Grants
  /** Names of pre-registered and self-registered clients (never a metadata fetch: grant-lines.ts). */
  clients: ClientRegistry
  sessions: LoginSessions
  login: LoginProvider | undefined
  oidc: readonly OidcLoginProvider[]
  cookies: CookieJar
  audit: AuditTrail
  passwordFailures: PasswordFailureLimit | undefined
}

/** Binds the sign-in forms to the browser that was shown them (login CSRF). */
const SIGN_IN_COOKIE = 'account-login'
const SIGN_IN_TTL_SECONDS = 600
/** As on the consent page: an IdP that does not answer delays the page little. */
const DISCOVERY_WAIT_MS = 3_000

export function registerAccount(app: FastifyInstance, deps: AccountDeps): void {
  const { config, grants, sessions, cookies, oidc, audit } = deps
  const pageRoute = { config: { errorFormat: 'html' as const } }
  const ownOrigin = new URL(config.publicUrl).origin
  const formRoute = { ...pageRoute, onRequest: async (request: FastifyRequest) => refuseForeignOrigin(request, ownOrigin) }
  const rules = { passwordLogin: deps.login !== undefined, oidcProviderIds: oidc.map((p) => p.id), maxAgeSeconds: config.login.session.maxAgeSeconds }

  async function signedIn(request: FastifyRequest): Promise<{ id: string; session: LoginSession } | undefined> {
    const id = readCookie(request.headers.cookie, cookies.name(SESSION_COOKIE))
    const session = id === undefined ? undefined : await sessions.get(id)
    return id !== undefined && session !== undefined && sessionCounts(session, rules) ? { id, session } : undefined
  }

  async function showSignIn(reply: FastifyReply, error?: string, username?: string, next?: string) {
    const binding = randomBytes(24).toString('base64url')
    reply.header('set-cookie', cookies.serialize(SIGN_IN_COOKIE, binding, SIGN_IN_TTL_SECONDS))
    // The provider buttons' POST redirects to the IdP: the CSP form-action must name its origin.
    await Promise.all(oidc.map((provider) => provider.prefetch(DISCOVERY_WAIT_MS)))
    return sendPage(
      reply,
      accountSignInPage({
        csrf: csrfFor('sign-in', binding),
        passwordLogin: deps.login !== undefined,
        providers: oidc.map((p) => ({ id: p.id, name: p.name })),
        formTargets: oidc.map((p) => p.authorizationOrigin),
        ...(error !== undefined && { error }),
        ...(username !== undefined && { username }),
        ...(next !== undefined && { next }),
      }),
    )
  }

  /** The sign-in forms continue only in the browser that was shown them. */
  function checkSignInForm(request: FastifyRequest, csrf: string | undefined): void {
    const binding = readCookie(request.headers.cookie, cookies.name(SIGN_IN_COOKIE))
    if (binding === undefined || !sameToken(csrf, csrfFor('sign-in', binding))) throw notFromOurPage()
  }

  app.get(oauthPaths.account, pageRoute, async (request, reply) => {
    const current = await signedIn(request)
    const query = singleValued(request.query)
    const next = consoleReturnPath(query.next)
    if (!current) return showSignIn(reply, undefined, undefined, next)
    if (next !== undefined) return reply.header('cache-control', 'no-store').redirect(next, 303)
    const { identity } = current.session
    const mine = await grants.ofSubject(identity.sub)
    const notice = query.revoked
    return sendPage(
      reply,
      accountPage({
        user: identity.email ?? identity.name ?? identity.sub,
        lines: await Promise.all(mine.map((grant) => describeGrant(grant, config, deps.clients))),
        csrf: csrfFor('session', current.id),
        ...(notice !== undefined && { notice: /^\d{1,4}$/.test(notice) ? `Access revoked (${notice}).` : 'Access revoked.' }),
      }),
    )
  })

  app.post(`${oauthPaths.account}/login`, formRoute, async (request, reply) => {
    const form = singleValued(request.body)
    checkSignInForm(request, form.csrf)
    const provider = deps.login
    if (!provider) throw new PublicError('login_unavailable', 404, 'password sign-in is not configured')
    const username = form.username ?? ''
    const next = consoleReturnPath(form.next)
    const wait = await deps.passwordFailures?.blocked(request, username)
    if (wait !== undefined) {
      reply.code(429).header('retry-after', String(wait))
      return showSignIn(reply, `Too many failed sign-ins for this name. Try again in ${wait < 120 ? `${wait} seconds` : `${Math.ceil(wait / 60)} minutes`}.`, username, next)
    }
    const identity = await provider.authenticate(username, form.password ?? '')
    if (!identity) {
      await deps.passwordFailures?.failed(request, username)
      audit.record({ type: 'login.failed', provider: provider.id, reason: 'bad_credentials' }, contextOf(request))
      reply.code(401)
      return showSignIn(reply, 'The username or password is not right.', username, next)
    }
    const sessionId = await sessions.create(identity)
    audit.record({ type: 'login.succeeded', sub: identity.sub, provider: identity.provider }, contextOf(request))
    reply.header('set-cookie', cookies.clear(SIGN_IN_COOKIE))
    reply.header('set-cookie', cookies.serialize(SESSION_COOKIE, sessionId, config.authorizationServer.sessionTtlSeconds))
    return reply.header('cache-control', 'no-store').redirect(next ?? oauthPaths.account, 303)
  })

  /** Sign-in at an upstream IdP; its callback (upstream-login.ts) sees no request id and returns here. */
  app.post(`${oauthPaths.account}/upstream`, formRoute, async (request, reply) => {
    const form = singleValued(request.body)
    checkSignInForm(request, form.csrf)
    const provider = oidc.find((p) => p.id === form.provider)
    if (!provider) throw new PublicError('invalid_request', 400, 'this sign-in option is not offered')
    let start: Awaited<ReturnType<OidcLoginProvider['start']>>
    try {
      start = await provider.start(config.login.session.maxAgeSeconds)
    } catch (err) {
      if (!(err instanceof UpstreamLoginError)) throw err
      throw new PublicError('temporarily_unavailable', 502, `${provider.name} cannot be reached right now; try again in a moment`)
    }
    const next = consoleReturnPath(form.next)
    const browserValue = await saveUpstreamState(deps.store, provider.id, start.checks, { ...(next !== undefined && { returnTo: next }) })
    reply.header('set-cookie', cookies.clear(SIGN_IN_COOKIE))
    reply.header('set-cookie', cookies.serialize(STATE_COOKIE, browserValue, UPSTREAM_STATE_TTL_SECONDS))
    return reply.header('cache-control', 'no-store').redirect(start.url.href, 303)
  })

  app.post(`${oauthPaths.account}/revoke`, formRoute, async (request, reply) => {
    const form = singleValued(request.body)
    const current = await signedIn(request)
    if (!current) throw new PublicError('login_required', 401, 'your session ended; sign in again on the account page')
    if (!sameToken(form.csrf, csrfFor('session', current.id))) throw notFromOurPage()
    const { sub } = current.session.identity
    let targets: Grant[]
    if (form.all === 'yes') {
      targets = await grants.ofSubject(sub)
    } else {
      const grant = form.grant_id ? await grants.get(form.grant_id) : undefined
      // Someone else's grant reads exactly as a missing one: nothing to learn from the answer.
      if (!grant || grant.sub !== sub) throw new PublicError('not_found', 404, 'this access does not exist or was already revoked')
      targets = [grant]
    }
    for (const grant of targets) {
      await grants.revoke(grant.grantId)
      audit.record({ type: 'grant.revoked', grantId: grant.grantId, by: 'user', sub, clientId: grant.clientId }, contextOf(request))
    }
    return reply.header('cache-control', 'no-store').redirect(`${oauthPaths.account}?revoked=${targets.length}`, 303)
  })
}

/** A form's token: derived from a secret only this browser's cookie holds, never the secret itself. */
function csrfFor(purpose: 'sign-in' | 'session', secret: string): string {
  return hash(`account-${purpose}:${secret}`)
}

function sameToken(given: string | undefined, expected: string): boolean {
  if (given === undefined || given.length !== expected.length) return false
  return timingSafeEqual(Buffer.from(given), Buffer.from(expected))
}

function notFromOurPage(): PublicError {
  return new PublicError('invalid_request', 403, 'this form was not sent from the page the gateway showed you; reload the account page')
}
