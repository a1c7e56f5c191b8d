/**
 * Codes, grants and refresh tokens, all in the store and all stored by hash only (MCPA-62).
 *
 * - A code is single use through an atomic take; a replayed code revokes the grant it
 *   created (OAuth 2.1 §4.1.3).
 * - A grant is what one user allowed one client on one resource with some scopes; refresh
 *   tokens are valid only while their grant exists, so revoking a grant stops them at once.
 * - Refresh tokens rotate on every use (MCPA-64, OQ-11). A rotated token presented again within
 *   the grace window gets the grant's current refresh token and a fresh access token (a retry
 *   after a lost answer, two processes racing: REF-01..03; how, and why that is safe, in
 *   refresh-chain.ts); after it, the reuse means a copy leaked, and the whole grant is revoked.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { AuditContext, AuditEvent, AuditTrail } from '../../audit/events.js'
import { InvalidGrantError } from '../../errors.js'
import { hash } from '../../login/sessions.js'
import { storeKeys } from '../../store/keys.js'
import type { Store } from '../../store/store.js'
import type { ClientSnapshot } from '../clients/snapshot.js'
import { RefreshChain, type RefreshRecord } from './refresh-chain.js'

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
  /** When a token was last issued for it (sign-in or refresh), seconds since the epoch; absent until the first refresh. */
  lastUsedAt?: number
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

/** What a token rotated before compareAndSet existed left behind (`refresh-rotated:`; read until those expire). */
interface LegacyRotatedRecord {
  grantId: string
  rotatedAt: number
}

export interface GrantTimings {
  codeTtlSeconds: number
  refreshTokenTtlSeconds: number
  refreshReuseGraceSeconds: number
  /** Inside the grace window: `grace` answers a rotated token (REF-01), `strict` refuses it. Default grace. */
  refreshReuse?: 'grace' | 'strict'
}

export type RefreshOutcome =
  /** `grace`: the token presented had been rotated already; the answer is the grant's current refresh token. */
  | { kind: 'rotated'; grant: Grant; scopes: string[]; refreshToken: string; grace: boolean }
  | { kind: 'invalid' }
  /** A rotated token came back after the grace window: the grant is now revoked. */
  | { kind: 'reused'; grantId: string }

const token = () => randomBytes(32).toString('base64url')

export type GrantRevoker = Extract<AuditEvent, { type: 'grant.revoked' }>['by']

export class Grants {
  readonly #chain: RefreshChain

  constructor(
    private readonly store: Store,
    private readonly timings: GrantTimings,
    /** Records revocations that say who revoked (grant.revoked). */
    private readonly audit?: AuditTrail,
    /** Tells every replica to refuse a revoked grant's access tokens (keys/revocations.ts, §11.4 REV-01). */
    private readonly revocations?: { revoke(grantId: string): Promise<void> },
  ) {
    this.#chain = new RefreshChain(store, timings.refreshTokenTtlSeconds * 1000)
  }

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
    // The marker is written before the take, not after it: a concurrent redemption that finds the
    // code gone always finds the marker too, so it is seen as the replay it is (RFC 9700 §4.14.2).
    // Marked after the take, one landing between the two writes was refused as an unknown code and
    // the grant lived on (found by test/topology/soak.test.ts racing exchanges at two replicas).
    const live = await this.store.get(storeKeys.authorizationCode(codeHash))
    if (live !== undefined) await this.store.set(storeKeys.redeemedCode(codeHash), live, this.#replayWindowMs())
    const stored = await this.store.take(storeKeys.authorizationCode(codeHash))
    if (stored === undefined) {
      const redeemed = await this.store.get(storeKeys.redeemedCode(codeHash))
      return redeemed === undefined ? undefined : { record: JSON.parse(redeemed) as CodeRecord, replayed: true }
    }
    return { record: JSON.parse(stored) as CodeRecord, replayed: false }
  }

  /**
   * Stores the grant (at the first token) and returns its first refresh token. A concurrent,
   * otherwise valid replay of the code may have revoked the grant before it was stored: its
   * marker is checked after the write, so the grant cannot outlive that revocation (O21-08).
   */
  async start(grant: Grant, withRefreshToken: boolean): Promise<string | undefined> {
    await this.store.set(storeKeys.grant(grant.grantId), JSON.stringify(grant), this.timings.refreshTokenTtlSeconds * 1000)
    await this.#index(grant)
    if ((await this.store.get(storeKeys.revokedGrant(grant.grantId))) !== undefined) {
      await this.store.delete(storeKeys.grant(grant.grantId))
      throw new InvalidGrantError('the code was already used', { detail: 'grant revoked by a concurrent replay of its code' })
    }
    return withRefreshToken ? this.#chain.issue({ grantId: grant.grantId, clientId: grant.clientId, scopes: grant.scopes }) : undefined
  }

  async get(grantId: string): Promise<Grant | undefined> {
    const stored = await this.store.get(storeKeys.grant(grantId))
    return stored === undefined ? undefined : (JSON.parse(stored) as Grant)
  }

  /**
   * The live grants of one person, newest first, by the index of their grant ids (one key, no walk
   * of the store): the account page. Ids whose grant expired or was revoked are dropped from it.
   */
  async ofSubject(sub: string): Promise<Grant[]> {
    const key = storeKeys.grantsOfSubject(hash(sub))
    const ids = await this.store.members(key)
    const found = await Promise.all(ids.map(async (id) => ({ id, grant: await this.get(id) })))
    const stale = found.filter(({ grant }) => grant === undefined || grant.sub !== sub)
    await Promise.all(stale.map(({ id }) => this.store.removeMember(key, id)))
    return found
      .flatMap(({ grant }) => (grant !== undefined && grant.sub === sub ? [grant] : []))
      .sort((a, b) => b.createdAt - a.createdAt)
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
   * Rotates a refresh token presented by `clientId`, or answers a retry of one rotated inside the
   * grace window with the grant's current token (REF-01). `scopes`, when given, may only narrow
   * (RFC 6749 §6); the access token gets the narrowed set, the refresh token keeps its own (O21-10).
   */
  async refresh(
    presented: string,
    clientId: string,
    scopes?: readonly string[],
    context: AuditContext = {},
  ): Promise<RefreshOutcome | { kind: 'invalid_scope' }> {
    // Two rounds at most: losing the compareAndSet means another request rotated it just now.
    for (let round = 0; round < 2; round++) {
      const read = await this.#chain.read(presented)
      if (read.state === 'absent') return this.#legacyRotated(presented, context)
      const { record } = read
      if (record.clientId !== clientId) {
        // Another client holding this client's token: the token leaked (O21-10, BCP-06).
        await this.#chain.delete(presented)
        await this.revoke(record.grantId, 'refresh_reuse', context)
        return { kind: 'reused', grantId: record.grantId }
      }
      // Checked before any change, so a refused narrowing leaves the client its working token.
      if (scopes && scopes.some((s) => !record.scopes.includes(s))) return { kind: 'invalid_scope' }
      const next = scopes ? [...scopes] : record.scopes
      if (record.rotatedAt !== undefined) return this.#rotatedAgain(presented, record, next, context)
      const rotated = await this.#chain.rotate(presented, read)
      if (rotated === undefined) continue
      const grant = await this.#liveGrant(record.grantId)
      if (!grant) return { kind: 'invalid' }
      // The tip, not merely the successor: a racer may already have rotated that one too.
      const refreshToken = await this.#chain.tip(presented, rotated)
      if (refreshToken === undefined) return { kind: 'invalid' }
      return { kind: 'rotated', grant, scopes: next, refreshToken, grace: false }
    }
    return { kind: 'invalid' }
  }

  /**
   * A rotated token came back. Inside the window (REF-01, grace mode): the grant's current token,
   * if the grant still lives (REF-02: revoked meanwhile → refused). After it: a copy leaked, the
   * grant is revoked (RFC 9700 §4.14.2).
   */
  async #rotatedAgain(presented: string, record: RefreshRecord, scopes: string[], context: AuditContext): Promise<RefreshOutcome> {
    if (Date.now() - record.rotatedAt! > this.timings.refreshReuseGraceSeconds * 1000) {
      await this.revoke(record.grantId, 'refresh_reuse', context)
      return { kind: 'reused', grantId: record.grantId }
    }
    if (this.timings.refreshReuse === 'strict') return { kind: 'invalid' }
    const grant = await this.get(record.grantId)
    if (!grant || (await this.#revokedMeanwhile(grant.grantId))) return { kind: 'invalid' }
    const refreshToken = await this.#chain.tip(presented, record)
    return refreshToken === undefined ? { kind: 'invalid' } : { kind: 'rotated', grant, scopes, refreshToken, grace: true }
  }

  /**
   * The grant, its lifetime extended: it lives as long as its newest refresh token. A revocation
   * between the read and the write would be undone by the write; the marker, read after it,
   * catches that (as in start), so a grant never outlives its revocation.
   */
  async #liveGrant(grantId: string): Promise<Grant | undefined> {
    const stored = await this.get(grantId)
    if (!stored) return undefined
    const grant: Grant = { ...stored, lastUsedAt: Math.floor(Date.now() / 1000) }
    await this.store.set(storeKeys.grant(grantId), JSON.stringify(grant), this.timings.refreshTokenTtlSeconds * 1000)
    await this.#index(grant)
    if (await this.#revokedMeanwhile(grantId)) {
      await this.store.delete(storeKeys.grant(grantId))
      return undefined
    }
    return grant
  }

  /** The person's index outlives each of their grants: its TTL follows the newest write. */
  async #index(grant: Grant): Promise<void> {
    await this.store.addMember(storeKeys.grantsOfSubject(hash(grant.sub)), grant.grantId, this.timings.refreshTokenTtlSeconds * 1000)
  }

  async #revokedMeanwhile(grantId: string): Promise<boolean> {
    return (await this.store.get(storeKeys.revokedGrant(grantId))) !== undefined
  }

  /** A token rotated by an older version (take, then `refresh-rotated:`): no successor to give; refused or, late, revoked. */
  async #legacyRotated(presented: string, context: AuditContext): Promise<RefreshOutcome> {
    const rotated = await this.store.get(storeKeys.rotatedRefreshToken(hash(presented)))
    if (rotated === undefined) return { kind: 'invalid' }
    const { grantId, rotatedAt } = JSON.parse(rotated) as LegacyRotatedRecord
    if (Date.now() - rotatedAt <= this.timings.refreshReuseGraceSeconds * 1000) return { kind: 'invalid' }
    await this.revoke(grantId, 'refresh_reuse', context)
    return { kind: 'reused', grantId }
  }

  /**
   * The grant behind a refresh token, for revocation, introspection and the token endpoint's
   * checks. A live token only, unless `rotated`: then also one rotated inside the grace window,
   * which still refreshes (REF-01), so its bindings are checked and it can revoke its grant.
   * `rotated: 'any'` also finds one rotated before the window: the token endpoint checks its
   * DPoP binding before its reuse may revoke the grant.
   */
  async refreshTokenInfo(presented: string, { rotated = false }: { rotated?: boolean | 'any' } = {}): Promise<{ grant: Grant; scopes: string[] } | undefined> {
    const read = await this.#chain.read(presented)
    if (read.state === 'absent') return undefined
    const { record } = read
    if (record.rotatedAt !== undefined && rotated !== 'any') {
      if (!rotated || Date.now() - record.rotatedAt > this.timings.refreshReuseGraceSeconds * 1000) return undefined
    }
    const grant = await this.get(record.grantId)
    return grant && { grant, scopes: record.scopes }
  }

  /** Long enough to catch a replay of any code that could still have been valid. */
  #replayWindowMs(): number {
    return Math.max(this.timings.codeTtlSeconds * 10, 600) * 1000
  }
}
