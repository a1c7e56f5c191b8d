/**
 * Codes, grants and refresh tokens, all in the store and all stored by hash only (MCPA-62).
 *
 * - A code is single use through an atomic take; a replayed code revokes the grant it
 *   created (OAuth 2.1 §4.1.3).
 * - A grant is what one user allowed one client on one resource with some scopes; refresh
 *   tokens are valid only while their grant exists, so revoking a grant stops them at once.
 * - Refresh tokens rotate on every use (MCPA-64, OQ-11). A rotated token presented again within
 *   the grace window is refused harmlessly (two refreshes racing); after it, the reuse means
 *   a copy leaked, and the whole grant is revoked.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { AuditContext, AuditEvent, AuditTrail } from '../../audit/events.js'
import { InvalidGrantError } from '../../errors.js'
import { hash } from '../../login/sessions.js'
import { storeKeys } from '../../store/keys.js'
import type { Store } from '../../store/store.js'
import type { ClientSnapshot } from '../clients/snapshot.js'

export interface Grant {
  grantId: string
  sub: string
  clientId: string
  resourceId: string
  scopes: string[]
  /** The person's verified email and groups at login, so refreshed tokens carry them and access is re-checked. */
  email?: string
  groups?: string[]
  /** Seconds since the epoch. */
  createdAt: number
  /** A public client's refresh tokens are bound to the DPoP key of its first token (RFC 9449 §5, DPOP-04). */
  dpopJkt?: string
}

export interface CodeRecord {
  grant: Grant
  redirectUri: string
  /** Whether the authorization request carried redirect_uri (RFC 6749 §4.1.3: then the token request must too). */
  redirectUriGiven: boolean
  codeChallenge: string
  /** Whether the client may receive a refresh token (its grant types, at authorization time). */
  refreshAllowed: boolean
  /** RFC 9449 §10 dpop_jkt of the authorization request: the token request's proof must use this key (DPOP-08). */
  dpopJkt?: string
  /** A metadata-document client as it was at authorization time (SEC-22); the token endpoint uses it. */
  client?: ClientSnapshot
}

interface RefreshRecord {
  grantId: string
  clientId: string
  /** The scopes of this token: the grant's, or fewer after a narrowing refresh. */
  scopes: string[]
}

interface RotatedRecord {
  grantId: string
  rotatedAt: number
}

export interface GrantTimings {
  codeTtlSeconds: number
  refreshTokenTtlSeconds: number
  refreshReuseGraceSeconds: number
}

export type RefreshOutcome =
  | { kind: 'rotated'; grant: Grant; scopes: string[]; refreshToken: string }
  | { kind: 'invalid' }
  /** A rotated token came back after the grace window: the grant is now revoked. */
  | { kind: 'reused'; grantId: string }

const token = () => randomBytes(32).toString('base64url')

export type GrantRevoker = Extract<AuditEvent, { type: 'grant.revoked' }>['by']

export class Grants {
  constructor(
    private readonly store: Store,
    private readonly timings: GrantTimings,
    /** Records revocations that say who revoked (grant.revoked). */
    private readonly audit?: AuditTrail,
    /** Tells every replica to refuse a revoked grant's access tokens (keys/revocations.ts, §11.4 REV-01). */
    private readonly revocations?: { revoke(grantId: string): Promise<void> },
  ) {}

  newGrant(fields: Omit<Grant, 'grantId' | 'createdAt'>): Grant {
    return { ...fields, grantId: randomUUID(), createdAt: Math.floor(Date.now() / 1000) }
  }

  async issueCode(record: CodeRecord): Promise<string> {
    const code = token()
    await this.store.set(storeKeys.authorizationCode(hash(code)), JSON.stringify(record), this.timings.codeTtlSeconds * 1000)
    return code
  }

  /** The record of a live code, without redeeming it (the token endpoint reads the client snapshot first). */
  async peekCode(code: string): Promise<CodeRecord | undefined> {
    const stored = await this.store.get(storeKeys.authorizationCode(hash(code)))
    return stored === undefined ? undefined : (JSON.parse(stored) as CodeRecord)
  }

  /**
   * The code's record. A second redemption finds the code gone and its redemption marker
   * present: it gets the record again, marked replayed, and the caller revokes the grant once
   * the replay is otherwise valid, so a stray code alone cannot revoke anyone's grant (O21-08).
   */
  async redeemCode(code: string): Promise<{ record: CodeRecord; replayed: boolean } | undefined> {
    const codeHash = hash(code)
    const stored = await this.store.take(storeKeys.authorizationCode(codeHash))
    if (stored === undefined) {
      const redeemed = await this.store.get(storeKeys.redeemedCode(codeHash))
      return redeemed === undefined ? undefined : { record: JSON.parse(redeemed) as CodeRecord, replayed: true }
    }
    const record = JSON.parse(stored) as CodeRecord
    await this.store.set(storeKeys.redeemedCode(codeHash), stored, this.#replayWindowMs())
    return { record, replayed: false }
  }

  /**
   * Stores the grant (at the first token) and returns its first refresh token. A concurrent,
   * otherwise valid replay of the code may have revoked the grant before it was stored: its
   * marker is checked after the write, so the grant cannot outlive that revocation (O21-08).
   */
  async start(grant: Grant, withRefreshToken: boolean): Promise<string | undefined> {
    await this.store.set(storeKeys.grant(grant.grantId), JSON.stringify(grant), this.timings.refreshTokenTtlSeconds * 1000)
    if ((await this.store.get(storeKeys.revokedGrant(grant.grantId))) !== undefined) {
      await this.store.delete(storeKeys.grant(grant.grantId))
      throw new InvalidGrantError('the code was already used', { detail: 'grant revoked by a concurrent replay of its code' })
    }
    return withRefreshToken ? this.#issueRefresh({ grantId: grant.grantId, clientId: grant.clientId, scopes: grant.scopes }) : undefined
  }

  async get(grantId: string): Promise<Grant | undefined> {
    const stored = await this.store.get(storeKeys.grant(grantId))
    return stored === undefined ? undefined : (JSON.parse(stored) as Grant)
  }

  /** Every live grant, optionally of one subject or client (operator tools only: walks the store). */
  async *list(filter: { sub?: string; clientId?: string } = {}): AsyncIterable<Grant> {
    for await (const key of this.store.keys(storeKeys.grant(''))) {
      const grant = await this.get(key.slice(storeKeys.grant('').length))
      if (!grant) continue
      if (filter.sub !== undefined && grant.sub !== filter.sub) continue
      if (filter.clientId !== undefined && grant.clientId !== filter.clientId) continue
      yield grant
    }
  }

  /** Deletes the grant; with `by`, records a grant.revoked event naming who or what revoked it. */
  async revoke(grantId: string, by?: GrantRevoker, context: AuditContext = {}): Promise<void> {
    // The marker first: a grant being started right now sees it (see start).
    await this.store.set(storeKeys.revokedGrant(grantId), '1', this.#replayWindowMs())
    // Refresh tokens die with the grant record; access tokens are refused through the list.
    await this.revocations?.revoke(grantId)
    await this.store.delete(storeKeys.grant(grantId))
    if (by !== undefined) this.audit?.record({ type: 'grant.revoked', grantId, by }, context)
  }

  /**
   * Rotates a refresh token presented by `clientId`. `scopes`, when given, may only narrow
   * (RFC 6749 §6); the new token carries the narrowed set.
   */
  async refresh(
    presented: string,
    clientId: string,
    scopes?: readonly string[],
    context: AuditContext = {},
  ): Promise<RefreshOutcome | { kind: 'invalid_scope' }> {
    const tokenHash = hash(presented)
    const key = storeKeys.refreshToken(tokenHash)
    const peeked = await this.store.get(key)
    if (peeked === undefined) return this.#afterMissing(tokenHash, context)
    const record = JSON.parse(peeked) as RefreshRecord
    if (record.clientId !== clientId) {
      // Another client holding this client's token: the token leaked.
      await this.store.delete(key)
      await this.revoke(record.grantId, 'refresh_reuse', context)
      return { kind: 'reused', grantId: record.grantId }
    }
    // Checked before the take, so a refused narrowing leaves the client its working token.
    if (scopes && scopes.some((s) => !record.scopes.includes(s))) return { kind: 'invalid_scope' }
    // Of two concurrent refreshes with one token, the take lets exactly one rotate it.
    if ((await this.store.take(key)) === undefined) return this.#afterMissing(tokenHash, context)
    await this.store.set(
      storeKeys.rotatedRefreshToken(tokenHash),
      JSON.stringify({ grantId: record.grantId, rotatedAt: Date.now() } satisfies RotatedRecord),
      this.timings.refreshTokenTtlSeconds * 1000,
    )
    const grant = await this.get(record.grantId)
    if (!grant) return { kind: 'invalid' }
    const next = scopes ? [...scopes] : record.scopes
    // O21-10: the new refresh token keeps exactly the old scope; only the access token is narrowed.
    const refreshToken = await this.#issueRefresh(record)
    // The grant lives as long as its newest refresh token.
    await this.store.set(storeKeys.grant(grant.grantId), JSON.stringify(grant), this.timings.refreshTokenTtlSeconds * 1000)
    return { kind: 'rotated', grant, scopes: next, refreshToken }
  }

  async #afterMissing(tokenHash: string, context: AuditContext): Promise<RefreshOutcome> {
    const rotated = await this.store.get(storeKeys.rotatedRefreshToken(tokenHash))
    if (rotated === undefined) return { kind: 'invalid' }
    const { grantId, rotatedAt } = JSON.parse(rotated) as RotatedRecord
    if (Date.now() - rotatedAt <= this.timings.refreshReuseGraceSeconds * 1000) return { kind: 'invalid' }
    await this.revoke(grantId, 'refresh_reuse', context)
    return { kind: 'reused', grantId }
  }

  async #issueRefresh(record: RefreshRecord): Promise<string> {
    const refreshToken = token()
    await this.store.set(
      storeKeys.refreshToken(hash(refreshToken)),
      JSON.stringify(record),
      this.timings.refreshTokenTtlSeconds * 1000,
    )
    return refreshToken
  }

  /** The grant behind a live refresh token, for introspection and revocation. */
  async refreshTokenInfo(presented: string): Promise<{ grant: Grant; scopes: string[] } | undefined> {
    const stored = await this.store.get(storeKeys.refreshToken(hash(presented)))
    if (stored === undefined) return undefined
    const record = JSON.parse(stored) as RefreshRecord
    const grant = await this.get(record.grantId)
    return grant && { grant, scopes: record.scopes }
  }

  /** Long enough to catch a replay of any code that could still have been valid. */
  #replayWindowMs(): number {
    return Math.max(this.timings.codeTtlSeconds * 10, 600) * 1000
  }
}
