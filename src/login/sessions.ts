/**
 * The browser session at the gateway: an opaque random id in a cookie, the record in the
 * store (so any replica continues a login another started). Only the id's hash is a key.
 */
import { createHash, randomBytes } from 'node:crypto'
import { storeKeys } from '../store/keys.js'
import type { Store } from '../store/store.js'
import type { Identity } from './provider.js'

/** The name (before the jar's `__Host-` prefix) of the browser session cookie. */
export const SESSION_COOKIE = 'session'

export interface LoginSession {
  identity: Identity
  /** When the person authenticated (at the IdP: its `auth_time`), seconds since the epoch. */
  authTime: number
}

export class LoginSessions {
  constructor(
    private readonly store: Store,
    private readonly ttlSeconds: number,
  ) {}

  /** Starts a session; returns the id for the cookie. */
  async create(identity: Identity, authTime = Math.floor(Date.now() / 1000)): Promise<string> {
    const id = randomBytes(32).toString('base64url')
    const session: LoginSession = { identity, authTime }
    await this.store.set(storeKeys.loginSession(hash(id)), JSON.stringify(session), this.ttlSeconds * 1000)
    return id
  }

  async get(id: string | undefined): Promise<LoginSession | undefined> {
    if (!id || id.length > 100) return undefined
    const stored = await this.store.get(storeKeys.loginSession(hash(id)))
    return stored === undefined ? undefined : (JSON.parse(stored) as LoginSession)
  }

  async end(id: string): Promise<void> {
    if (id.length > 100) return
    await this.store.delete(storeKeys.loginSession(hash(id)))
  }
}

/** What makes a stored session count for a page: its provider still configured, its login recent enough. */
export interface SessionRules {
  passwordLogin: boolean
  oidcProviderIds: readonly string[]
  /** login.session.maxAgeSeconds; undefined: any age. */
  maxAgeSeconds: number | undefined
}

/** A session of a provider no longer configured does not count; nor one older than max age. */
export function sessionCounts(session: LoginSession, rules: SessionRules): boolean {
  const known = session.identity.provider === 'static' ? rules.passwordLogin : rules.oidcProviderIds.includes(session.identity.provider)
  return known && isFresh(session, rules.maxAgeSeconds)
}

/** Whether a login is recent enough to reuse (login.session.maxAgeSeconds; undefined: any age). */
export function isFresh(session: LoginSession, maxAgeSeconds: number | undefined, nowSeconds = Date.now() / 1000): boolean {
  return maxAgeSeconds === undefined || nowSeconds - session.authTime <= maxAgeSeconds
}

export function hash(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url')
}
