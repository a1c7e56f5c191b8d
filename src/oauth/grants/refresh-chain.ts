/**
 * Refresh tokens that rotate on every use (MCPA-64, O21-10, REF-04) and survive retries and
 * races (REF-01..03), stored by hash only (MCPA-62).
 *
 * One record per token, `refresh:<hash>`, in one of two states: live `{grantId, clientId, scopes}`
 * or rotated (the same plus `rotatedAt` and a random `salt`). Rotation changes the state with one
 * compareAndSet on that one key, so a replica racing it reads live or rotated, never nothing
 * (a take followed by a write left a gap that read as an unknown token: invalid_grant, REF-03).
 *
 * The successor of a rotated token T is derived, not drawn: HMAC-SHA256(key T, data salt). So:
 * - A retry of T inside the grace window (the answer was lost, or two processes raced) gets the
 *   same successor again, re-derived at any replica from T and the stored salt. Grace answers
 *   mint no new refresh token: they walk T → successor → … to the chain's one live token (the
 *   tip) and return it. However often a rotated token comes back, the grant keeps exactly one
 *   live refresh token, so the window cannot grow a tree of valid tokens; and every racer ends
 *   up holding the same, working token (REF-03). The window is anchored at the rotation of the
 *   token presented and never extended by its use.
 * - The store never holds a usable token: the successor needs T itself, of which the store
 *   keeps only the hash. A thief of T still has to ask, and the window decides.
 * - Whoever answers first writes the successor's live record (setIfAbsent, identical content),
 *   so a grace answer given while the rotating replica is still between its two writes (or
 *   after it died there) is a working token, and no write can bring a rotated token back to life.
 *
 * After the window, a rotated token's reuse means a copy leaked: the whole grant is revoked
 * (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1). `refreshReuse: strict` refuses inside the window too
 * (the older behaviour), without revoking.
 */
import { createHmac, randomBytes } from 'node:crypto'
import { hash } from '../../login/sessions.js'
import { storeKeys } from '../../store/keys.js'
import type { Store } from '../../store/store.js'

export interface RefreshRecord {
  grantId: string
  clientId: string
  /** The scopes of this token: the grant's (a narrowing refresh narrows the access token only, O21-10). */
  scopes: string[]
  /** Set once rotated: when (ms since the epoch), and the salt its successor is derived with. */
  rotatedAt?: number
  salt?: string
}

/**
 * A rotated token's successor is one chain step; a chain longer than this within one grace
 * window (300 s at most) is a client refreshing in a loop: refused (invalid_grant), never revoked.
 */
const MAX_CHAIN = 32

export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url')
}

/** The successor of a rotated token: needs the token itself, which the store does not hold. */
export function successorOf(token: string, salt: string): string {
  return createHmac('sha256', token).update(salt).digest('base64url')
}

export type ReadOutcome = { state: 'absent' } | { state: 'found'; stored: string; record: RefreshRecord }

export class RefreshChain {
  constructor(
    private readonly store: Store,
    private readonly ttlMs: number,
  ) {}

  async read(token: string): Promise<ReadOutcome> {
    const stored = await this.store.get(storeKeys.refreshToken(hash(token)))
    return stored === undefined ? { state: 'absent' } : { state: 'found', stored, record: JSON.parse(stored) as RefreshRecord }
  }

  /** A new grant's first token. */
  async issue(record: Omit<RefreshRecord, 'rotatedAt' | 'salt'>): Promise<string> {
    const token = newRefreshToken()
    await this.store.set(storeKeys.refreshToken(hash(token)), JSON.stringify(live(record)), this.ttlMs)
    return token
  }

  /**
   * Live → rotated, atomically: true when this call rotated it, false when another request
   * changed the record first (it is rotated now: read it again). The rotated record lives a
   * full refresh-token lifetime, so its reuse is recognised as long as it could have been valid.
   */
  async rotate(token: string, read: { stored: string; record: RefreshRecord }): Promise<RefreshRecord | undefined> {
    const rotated: RefreshRecord = { ...live(read.record), rotatedAt: Date.now(), salt: randomBytes(16).toString('base64url') }
    const done = await this.store.compareAndSet(storeKeys.refreshToken(hash(token)), read.stored, JSON.stringify(rotated), this.ttlMs)
    return done ? rotated : undefined
  }

  /**
   * The chain's live token, starting after `token` (rotated as `record`), or undefined when the
   * chain is broken (expired, or too long). Every step writes its successor's live record if no
   * one has yet, so the answer always works.
   */
  async tip(token: string, record: RefreshRecord): Promise<string | undefined> {
    let current = token
    let at = record
    for (let step = 0; step < MAX_CHAIN; step++) {
      if (at.salt === undefined) return undefined
      const next = successorOf(current, at.salt)
      const key = storeKeys.refreshToken(hash(next))
      if (await this.store.setIfAbsent(key, JSON.stringify(live(at)), this.ttlMs)) return next
      const stored = await this.store.get(key)
      if (stored === undefined) return undefined
      const nextRecord = JSON.parse(stored) as RefreshRecord
      if (nextRecord.rotatedAt === undefined) return next
      current = next
      at = nextRecord
    }
    return undefined
  }

  async delete(token: string): Promise<void> {
    await this.store.delete(storeKeys.refreshToken(hash(token)))
  }
}

/** The live form of a record: its grant, client and scopes. */
function live(record: Omit<RefreshRecord, 'rotatedAt' | 'salt'>): RefreshRecord {
  return { grantId: record.grantId, clientId: record.clientId, scopes: record.scopes }
}
