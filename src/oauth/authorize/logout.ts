/**
 * Signing out of the gateway: a confirmation page, and the POST that ends the browser session
 * in the store. The IdP's own session is not ended (RP-initiated logout is not implemented).
 */
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../../config/load.js'
import { PublicError } from '../../errors.js'
import { readCookie, type CookieJar } from '../../http/cookies.js'
import { sendPage } from '../../http/html.js'
import { SESSION_COOKIE, type LoginSessions } from '../../login/sessions.js'
import { logoutPage } from './views.js'

export interface LogoutDeps {
  config: GatewayConfig
  sessions: LoginSessions
  cookies: CookieJar
}

export function registerLogout(app: FastifyInstance, { config, sessions, cookies }: LogoutDeps): void {
  const pageRoute = { config: { errorFormat: 'html' as const } }
  const ownOrigin = new URL(config.publicUrl).origin

  app.get('/oauth/logout', pageRoute, async (request, reply) => {
    const session = await sessions.get(readCookie(request.headers.cookie, cookies.name(SESSION_COOKIE)))
    return sendPage(reply, logoutPage({ signedIn: session !== undefined, done: false }))
  })

  /**
   * CSRF-safe: the session cookie is SameSite=Lax (not sent on a cross-site POST) and the
   * request must come from the gateway's own origin.
   */
  app.post('/oauth/logout', pageRoute, async (request, reply) => {
    if (request.headers.origin !== ownOrigin) {
      throw new PublicError('invalid_request', 403, 'sign out from the gateway\'s own page')
    }
    const sessionId = readCookie(request.headers.cookie, cookies.name(SESSION_COOKIE))
    if (sessionId) {
      const session = await sessions.get(sessionId)
      await sessions.end(sessionId)
      if (session) request.log.info({ sub: session.identity.sub, provider: session.identity.provider }, 'logout')
    }
    reply.header('set-cookie', cookies.clear(SESSION_COOKIE))
    return sendPage(reply, logoutPage({ signedIn: false, done: true }))
  })
}
