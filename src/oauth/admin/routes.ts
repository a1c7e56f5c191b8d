/**
 * The operator console (`/admin`, only when `admin.enabled`): sign-in with the admin token or as
 * a person `admin.access` names, and the guard every console page and form passes. Anonymous
 * visitors get the sign-in page (401), a signed-in person who is not an operator a page that
 * shows nothing of the console (403). Forms are guarded as the account page's: the gateway's own
 * Origin (origin-check.ts), a CSRF token derived from the session id, SameSite=Lax cookies.
 * Every action and every refused attempt is audited with the admin's identity.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { contextOf, type AuditTrail } from '../../audit/events.js'
import type { GatewayConfig } from '../../config/load.js'
import { PublicError } from '../../errors.js'
import type { CookieJar } from '../../http/cookies.js'
import { sendPage, type Page } from '../../http/html.js'
import { refuseForeignOrigin } from '../../http/origin-check.js'
import type { PasswordFailureLimit } from '../../http/password-failures.js'
import type { SessionRules, LoginSessions } from '../../login/sessions.js'
import type { Store } from '../../store/store.js'
import { singleValued, type Params } from '../params.js'
import { ADMIN_SESSION_COOKIE, ADMIN_SIGN_IN_COOKIE, AdminGate, csrfFor, sameToken, TOKEN_ACTOR, type Admin } from './access.js'
import { adminSignInPage, notAdminPage, overviewPage } from './views/frame.js'

export interface AdminRouteDeps {
  config: GatewayConfig
  store: Store
  sessions: LoginSessions
  sessionRules: SessionRules
  cookies: CookieJar
  audit: AuditTrail
  /** Wrong admin tokens, counted per source address like wrong passwords (absent: rate limits off). */
  tokenFailures: PasswordFailureLimit | undefined
}

type Form = Params

/** How a console section registers its pages and forms: the guard comes with them. */
export interface AdminRoutes {
  page(path: string, render: (admin: Admin, request: FastifyRequest) => Promise<Page>): void
  form(path: string, act: (admin: Admin, form: Form, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | Page>): void
}

const SIGN_IN_TTL_SECONDS = 600
/** The name wrong tokens are counted under; NUL keeps it apart from every username. */
const TOKEN_FAILURE_NAME = '\u0000admin-token'

export function registerAdmin(app: FastifyInstance, deps: AdminRouteDeps): AdminRoutes {
  const { config, cookies, audit } = deps
  const gate = new AdminGate({ admin: config.admin, store: deps.store, sessions: deps.sessions, cookies, sessionRules: deps.sessionRules })
  const pageRoute = { config: { errorFormat: 'html' as const } }
  const ownOrigin = new URL(config.publicUrl).origin
  const formRoute = { ...pageRoute, onRequest: async (request: FastifyRequest) => refuseForeignOrigin(request, ownOrigin) }

  /** A page without console data for whoever is not an operator; a fresh sign-in binding for its form. */
  function refusalPage(request: FastifyRequest, reply: FastifyReply, visitor: Exclude<Awaited<ReturnType<AdminGate['visitor']>>, { admin: Admin }>, error?: string, status = 401) {
    const binding = randomBytes(24).toString('base64url')
    reply.header('set-cookie', cookies.serialize(ADMIN_SIGN_IN_COOKIE, binding, SIGN_IN_TTL_SECONDS))
    const csrf = csrfFor('sign-in', binding)
    if (visitor.refused === 'not_admin') {
      audit.record({ type: 'admin.refused', reason: 'not_admin', sub: visitor.sub, path: request.routeOptions.url ?? request.url }, contextOf(request))
      return sendPage(reply.code(403), notAdminPage({ display: visitor.display, tokenSignIn: gate.tokenSignIn, csrf }))
    }
    return sendPage(reply.code(status), adminSignInPage({ csrf, personSignIn: gate.personSignIn, tokenSignIn: gate.tokenSignIn, ...(error !== undefined && { error }) }))
  }

  const routes: AdminRoutes = {
    page(path, render) {
      app.get(path, pageRoute, async (request, reply) => {
        const visitor = await gate.visitor(request)
        if (!('admin' in visitor)) return refusalPage(request, reply, visitor)
        // What an operator saw is part of the trail, not only what they changed.
        audit.record({ type: 'admin.viewed', actor: visitor.admin.actor, path: request.routeOptions.url ?? path }, contextOf(request))
        return sendPage(reply, await render(visitor.admin, request))
      })
    },
    form(path, act) {
      app.post(path, formRoute, async (request, reply) => {
        const visitor = await gate.visitor(request)
        const at = request.routeOptions.url ?? path
        if (!('admin' in visitor)) {
          if (visitor.refused === 'not_admin') {
            audit.record({ type: 'admin.refused', reason: 'not_admin', sub: visitor.sub, path: at }, contextOf(request))
            throw new PublicError('access_denied', 403, 'you may not use the operator console')
          }
          throw new PublicError('login_required', 401, 'your console session ended; sign in again at /admin')
        }
        const form = singleValued(request.body)
        if (!sameToken(form.csrf, visitor.admin.csrf)) {
          audit.record({ type: 'admin.refused', reason: 'csrf', sub: visitor.admin.actor, path: at }, contextOf(request))
          throw notFromOurPage()
        }
        const answer = await act(visitor.admin, form, request, reply)
        return 'csp' in answer ? sendPage(reply, answer) : answer
      })
    },
  }

  routes.page('/admin', async (admin) => overviewPage(admin))

  app.post('/admin/login', formRoute, async (request, reply) => {
    const form = singleValued(request.body)
    const binding = gate.signInBinding(request)
    if (binding === undefined || !sameToken(form.csrf, csrfFor('sign-in', binding))) {
      audit.record({ type: 'admin.refused', reason: 'csrf', path: '/admin/login' }, contextOf(request))
      throw notFromOurPage()
    }
    const wait = await deps.tokenFailures?.blocked(request, TOKEN_FAILURE_NAME)
    if (wait !== undefined) {
      reply.code(429).header('retry-after', String(wait))
      return refusalPage(request, reply, { refused: 'anonymous' }, `Too many wrong tokens from here. Try again in ${wait} seconds.`, 429)
    }
    if (!gate.tokenMatches(form.token)) {
      await deps.tokenFailures?.failed(request, TOKEN_FAILURE_NAME)
      // The token itself is never recorded, right or wrong.
      audit.record({ type: 'admin.refused', reason: 'bad_token', path: '/admin/login' }, contextOf(request))
      return refusalPage(request, reply, { refused: 'anonymous' }, 'This is not the admin token.')
    }
    const id = await gate.startTokenSession()
    audit.record({ type: 'admin.signed_in', actor: TOKEN_ACTOR, method: 'token' }, contextOf(request))
    reply.header('set-cookie', cookies.clear(ADMIN_SIGN_IN_COOKIE))
    reply.header('set-cookie', cookies.serialize(ADMIN_SESSION_COOKIE, id, config.admin.sessionTtlSeconds))
    return reply.header('cache-control', 'no-store').redirect('/admin', 303)
  })

  routes.form('/admin/logout', async (admin, _form, request, reply) => {
    await gate.endTokenSession(request)
    audit.record({ type: 'admin.signed_out', actor: admin.actor }, contextOf(request))
    reply.header('set-cookie', cookies.clear(ADMIN_SESSION_COOKIE))
    return reply.header('cache-control', 'no-store').redirect('/admin', 303)
  })
  return routes
}

function notFromOurPage(): PublicError {
  return new PublicError('invalid_request', 403, 'this form was not sent from the page the gateway showed you; reload the console')
}
