/**
 * Binds an upstream `Mcp-Session-Id` to the principal that created it (MCPS-11, MCPS-12), in
 * the store so any replica can check it. A session id is never authentication (MCPS-10): the
 * bearer token is checked first, the binding only stops one user's token from riding another
 * user's session.
 */
import { createHash } from 'node:crypto'
import { storeKeys } from '../store/keys.js'
import type { Store } from '../store/store.js'
import type { Principal } from './principal.js'

interface Binding {
  sub: string
  clientId: string | null
  /** Last refresh of the idle TTL, ms since the epoch. */
  touchedAt: number
}

export class SessionBindings {
  constructor(
    private readonly store: Store,
    private readonly resourceId: string,
    private readonly idleMs: number,
  ) {}

  async bind(sessionId: string, principal: Principal): Promise<void> {
    const binding: Binding = { sub: principal.sub, clientId: principal.clientId ?? null, touchedAt: Date.now() }
    await this.store.set(this.#key(sessionId), JSON.stringify(binding), this.idleMs)
  }

  /** True when the session exists and belongs to this principal; refreshes its idle TTL now and then. */
  async check(sessionId: string, principal: Principal): Promise<boolean> {
    const key = this.#key(sessionId)
    const stored = await this.store.get(key)
    if (stored === undefined) return false
    const binding = JSON.parse(stored) as Binding
    if (binding.sub !== principal.sub || binding.clientId !== (principal.clientId ?? null)) return false
    // Refreshing on every request would cost a write per call; a quarter of the idle time is slack enough.
    if (Date.now() - binding.touchedAt > this.idleMs / 4) {
      await this.store.set(key, JSON.stringify({ ...binding, touchedAt: Date.now() }), this.idleMs)
    }
    return true
  }

  async unbind(sessionId: string): Promise<void> {
    await this.store.delete(this.#key(sessionId))
  }

  // Session ids grant access to a conversation; only their hashes are stored.
  #key(sessionId: string): string {
    return storeKeys.mcpSession(this.resourceId, createHash('sha256').update(sessionId).digest('base64url'))
  }
}
