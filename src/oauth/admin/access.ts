/**
 * Who is at the operator console. Two ways in, both named in the configuration and never
 * implied: a person signed in at /account whom `admin.access` names (their login session), or
 * whoever typed the admin token, whose SHA-256 only is configured (a console session of its own,
 * in the store like login sessions, so any replica continues it). Anyone else is refused.
 *
 * Every form of the console carries a CSRF token derived from the session id only this browser
 * holds (as on the account page); the sign-in form's from a random cookie (login CSRF).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { AdminConfig } from '../../config/admin-schema.js'
import { readCookie, type CookieJar } from '../../http/cookies.js'
import { hash, SESSION_COOKIE, sessionCounts, type LoginSessions, type SessionRules } from '../../login/sessions.js'
import { usersMatch } from '../../policy/access-rules.js'
import { storeKeys } from '../../store/keys.js'
import type { Store } from '../../store/store.js'

/** The actor of the audit events of a token session: the token names nobody. */
export const TOKEN_ACTOR = 'admin-token'
export const ADMIN_SESSION_COOKIE = 'admin-session'
/** Binds the token sign-in form to the browser that was shown it. */
export const ADMIN_SIGN_IN_COOKIE = 'admin-login'

export interface Admin {
  /** For the audit trail: the person's `sub`, or `admin-token`. */
  actor: string
  /** For the page header. */
  display: string
  /** Which cookie let them in: the token session is ended at /admin/logout, a login session at /oauth/logout. */
  kind: 'person' | 'token'
  /** The form token of this session. */
  csrf: string
}

/** What the store keeps of a token session: when it started, and which token (a digest of its digest) opened it. */
interface TokenSession {
  startedAt: number
  token: string
}

export type Visitor = { admin: Admin } | { refused: 'anonymous' } | { refused: 'not_admin'; sub: string; display: string }

export interface AdminGateDeps {
  admin: AdminConfig
  store: Store
  sessions: LoginSessions
  cookies: CookieJar
  sessionRules: SessionRules
}

export class AdminGate {
  constructor(private readonly deps: AdminGateDeps) {}

  get tokenSignIn(): boolean {
    return this.deps.admin.tokenSha256 !== undefined
  }

  get personSignIn(): boolean {
    return this.deps.admin.access !== undefined
  }

  async visitor(request: FastifyRequest): Promise<Visitor> {
    const { cookies, sessions, admin } = this.deps
    const tokenSession = readCookie(request.headers.cookie, cookies.name(ADMIN_SESSION_COOKIE))
    if (tokenSession !== undefined && tokenSession.length <= 100 && (await this.#tokenSessionCounts(tokenSession))) {
      return { admin: { actor: TOKEN_ACTOR, display: 'the admin token', kind: 'token', csrf: csrfFor('session', tokenSession) } }
    }
    const loginId = readCookie(request.headers.cookie, cookies.name(SESSION_COOKIE))
    const session = loginId === undefined ? undefined : await sessions.get(loginId)
    if (loginId === undefined || session === undefined || !sessionCounts(session, this.deps.sessionRules)) return { refused: 'anonymous' }
    const { identity } = session
    const display = identity.email ?? identity.name ?? identity.sub
    // An empty rule would match everyone; the configuration refuses it, and so does this check.
    const named = admin.access !== undefined && Object.values(admin.access).some((v) => v !== undefined)
    if (named && usersMatch(admin.access!, identity)) {
      return { admin: { actor: identity.sub, display, kind: 'person', csrf: csrfFor('session', loginId) } }
    }
    return { refused: 'not_admin', sub: identity.sub, display }
  }

  /** Whether the typed token is the configured one (compared as digests, in constant time). */
  tokenMatches(token: string | undefined): boolean {
    const expected = this.deps.admin.tokenSha256
    if (expected === undefined || !token) return false
    const given = createHash('sha256').update(token).digest()
    return timingSafeEqual(given, Buffer.from(expected, 'hex'))
  }

  /** Starts a token session; returns the cookie value. */
  async startTokenSession(): Promise<string> {
    const id = randomBytes(32).toString('base64url')
    const ttl = this.deps.admin.sessionTtlSeconds
    const session: TokenSession = { startedAt: Math.floor(Date.now() / 1000), token: hash(this.deps.admin.tokenSha256 ?? '') }
    await this.deps.store.set(storeKeys.adminSession(hash(id)), JSON.stringify(session), ttl * 1000)
    return id
  }

  /** A token session counts while the token it was started with is still the configured one: changing the token ends them all. */
  async #tokenSessionCounts(id: string): Promise<boolean> {
    const configured = this.deps.admin.tokenSha256
    const stored = await this.deps.store.get(storeKeys.adminSession(hash(id)))
    if (configured === undefined || stored === undefined) return false
    return (JSON.parse(stored) as TokenSession).token === hash(configured)
  }

  async endTokenSession(request: FastifyRequest): Promise<void> {
    const id = readCookie(request.headers.cookie, this.deps.cookies.name(ADMIN_SESSION_COOKIE))
    if (id !== undefined && id.length <= 100) await this.deps.store.delete(storeKeys.adminSession(hash(id)))
  }

  /** The sign-in form's binding cookie value of this browser, if it has one. */
  signInBinding(request: FastifyRequest): string | undefined {
    return readCookie(request.headers.cookie, this.deps.cookies.name(ADMIN_SIGN_IN_COOKIE))
  }
}

/** A form's token: derived from a secret only this browser's cookie holds, never the secret itself. */
export function csrfFor(purpose: 'sign-in' | 'session', secret: string): string {
  return hash(`admin-${purpose}:${secret}`)
}

export function sameToken(given: string | undefined, expected: string): boolean {
  if (given === undefined || given.length !== expected.length) return false
  return timingSafeEqual(Buffer.from(given), Buffer.from(expected))
}
