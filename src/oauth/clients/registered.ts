/**
 * Dynamically registered clients (RFC 7591, RFC 7592; DCR-*), kept in the store so every
 * replica sees them.
 *
 * Identity: ids are `dcr.` + 22 base64url characters (128 random bits). The config schema
 * forbids that prefix for pre-registered ids, and a registered id has no `:` so it is never
 * URL-shaped (CIMD-33): the three sources are distinct by construction, and ClientSources asks
 * the static source first anyway. Any other id is answered without touching the store.
 *
 * Secrets: a client secret (confidential clients only) and the registration access token are
 * 256 random bits each, stored as SHA-256 digests (enough for random values of that size) and
 * compared digest to digest in constant time.
 *
 * Lifetime and bounds (decided here, documented in config/REFERENCE.md and src/store/README.md):
 * - A record lives unusedTtlSeconds; every lookup (the authorization endpoint, the token,
 *   revocation and introspection endpoints) renews it, but writes at most once per tenth of that
 *   time, so token refreshes do not each cost a write.
 * - Identical re-registration of a public client from the same source address returns the same
 *   client id (with a new registration access token) instead of a new record. "Identical" is
 *   the normalized metadata with loopback redirect ports removed: the port is ignored when
 *   matching loopback redirects (RFC 8252 §7.3), and CLI clients pick a new one on every run.
 *   Confidential registrations are never merged: that would hand the same secret to whoever
 *   sends the same metadata, or rotate it under the first registrant.
 * - A global cap: at most maxClients new registrations across the current and the previous
 *   window of unusedTtlSeconds. An unused registration is deleted within one window, so live
 *   unused registrations never exceed the cap; registrations kept alive by use need a person
 *   who signed in, so they are not counted.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { REGISTERED_CLIENT_ID_PREFIX, type RegistrationConfig } from '../../config/schema.js'
import { isLoopbackHost } from '../../config/loopback.js'
import { InvalidTokenError, PublicError } from '../../errors.js'
import { storeKeys } from '../../store/keys.js'
import type { Store } from '../../store/store.js'
import type { ClientAuthMethod, ClientRegistry, OAuthClient } from './registry.js'

/** The client metadata kept and echoed back: nothing else a client sends is stored. */
export interface RegisteredMetadata {
  client_name?: string
  redirect_uris: string[]
  grant_types: string[]
  response_types: string[]
  token_endpoint_auth_method: ClientAuthMethod
  application_type: 'native' | 'web'
}

export interface RegisteredClientRecord {
  clientId: string
  /** Seconds since the epoch (RFC 7591 client_id_issued_at). */
  issuedAt: number
  /** Milliseconds since the epoch of the last TTL renewal. */
  touchedAt: number
  metadata: RegisteredMetadata
  /** Hex SHA-256 of the client secret; confidential clients only. */
  secretHash?: string
  /** Hex SHA-256 of the registration access token (RFC 7592). */
  registrationTokenHash: string
  /** The dedupe key pointing at this record, renewed with it. */
  dedupeKey?: string
}

export interface Registration {
  record: RegisteredClientRecord
  /** The client secret in clear, returned once; confidential clients only. */
  secret?: string
  registrationToken: string
  /** True when an identical earlier registration was returned instead of a new one. */
  reused: boolean
}

const ID_SHAPE = /^dcr\.[A-Za-z0-9_-]{22}$/
const sha256 = (s: string) => createHash('sha256').update(s).digest()
const sha256Hex = (s: string) => sha256(s).toString('hex')
const random = (bytes: number) => randomBytes(bytes).toString('base64url')

export function isRegisteredClientId(clientId: string): boolean {
  return clientId.startsWith(REGISTERED_CLIENT_ID_PREFIX) && ID_SHAPE.test(clientId)
}

/** Constant-time comparison of a presented value with a stored hex digest. */
function matchesDigest(presented: string, hexDigest: string | undefined): boolean {
  if (hexDigest === undefined) return false
  const expected = Buffer.from(hexDigest, 'hex')
  const actual = sha256(presented)
  return expected.length === actual.length && timingSafeEqual(actual, expected)
}

export class RegisteredClients implements ClientRegistry {
  readonly #ttlMs: number

  constructor(
    private readonly store: Store,
    private readonly config: RegistrationConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.#ttlMs = config.unusedTtlSeconds * 1000
  }

  async find(clientId: string): Promise<OAuthClient | undefined> {
    const record = await this.#load(clientId)
    if (!record) return undefined
    await this.#touch(record)
    return toClient(record, this.config)
  }

  /** Registers a client, or returns the identical registration this address already made. */
  async register(metadata: RegisteredMetadata, sourceAddress: string): Promise<Registration> {
    const confidential = metadata.token_endpoint_auth_method !== 'none'
    const clientId = REGISTERED_CLIENT_ID_PREFIX + random(16)
    const registrationToken = random(32)
    const dedupeKey = confidential ? undefined : storeKeys.registrationDedupe(dedupeHash(metadata, sourceAddress))

    if (dedupeKey) {
      const reserved = await this.store.setIfAbsent(dedupeKey, clientId, this.#ttlMs)
      if (!reserved) {
        const existing = await this.#load((await this.store.get(dedupeKey)) ?? '')
        if (existing) {
          // Same metadata from the same address: the same client, a fresh registration token.
          const record = { ...existing, registrationTokenHash: sha256Hex(registrationToken), touchedAt: this.now() }
          await this.#save(record)
          return { record, registrationToken, reused: true }
        }
        await this.store.set(dedupeKey, clientId, this.#ttlMs)
      }
    }

    try {
      await this.#countAgainstCap()
    } catch (err) {
      if (dedupeKey) await this.store.delete(dedupeKey)
      throw err
    }
    const secret = confidential ? random(32) : undefined
    const now = this.now()
    const record: RegisteredClientRecord = {
      clientId,
      issuedAt: Math.floor(now / 1000),
      touchedAt: now,
      metadata,
      registrationTokenHash: sha256Hex(registrationToken),
      ...(secret !== undefined && { secretHash: sha256Hex(secret) }),
      ...(dedupeKey !== undefined && { dedupeKey }),
    }
    await this.#save(record)
    return { record, registrationToken, reused: false, ...(secret !== undefined && { secret }) }
  }

  /**
   * The registration, for the holder of its registration access token (RFC 7592 §2). An
   * unknown client and a wrong token get the same 401, so the endpoint tells nothing about ids.
   */
  async authorized(clientId: string, registrationToken: string | undefined): Promise<RegisteredClientRecord> {
    const record = await this.#load(clientId)
    if (!record || registrationToken === undefined || !matchesDigest(registrationToken, record.registrationTokenHash)) {
      throw new InvalidTokenError('the registration access token is not valid for this client', {
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
        detail: record ? 'wrong registration access token' : 'unknown client',
      })
    }
    return record
  }

  /** A registration by id, without its token: operator tools only. */
  async get(clientId: string): Promise<RegisteredClientRecord | undefined> {
    return this.#load(clientId)
  }

  /** Every live registration (operator tools only: walks the store). */
  async *list(): AsyncIterable<RegisteredClientRecord> {
    const prefix = storeKeys.registeredClient('')
    for await (const key of this.store.keys(prefix)) {
      const record = await this.#load(key.slice(prefix.length))
      if (record) yield record
    }
  }

  async delete(record: RegisteredClientRecord): Promise<void> {
    await this.store.delete(storeKeys.registeredClient(record.clientId))
    if (record.dedupeKey) await this.store.delete(record.dedupeKey)
  }

  async #load(clientId: string): Promise<RegisteredClientRecord | undefined> {
    if (!isRegisteredClientId(clientId)) return undefined
    const raw = await this.store.get(storeKeys.registeredClient(clientId))
    return raw === undefined ? undefined : (JSON.parse(raw) as RegisteredClientRecord)
  }

  async #save(record: RegisteredClientRecord): Promise<void> {
    await this.store.set(storeKeys.registeredClient(record.clientId), JSON.stringify(record), this.#ttlMs)
    if (record.dedupeKey) await this.store.set(record.dedupeKey, record.clientId, this.#ttlMs)
  }

  /** Renews the TTL when a tenth of it has passed since the last renewal: use keeps a client alive. */
  async #touch(record: RegisteredClientRecord): Promise<void> {
    const now = this.now()
    if (now - record.touchedAt < this.#ttlMs / 10) return
    await this.#save({ ...record, touchedAt: now })
  }

  async #countAgainstCap(): Promise<void> {
    const windowMs = this.#ttlMs
    const window = Math.floor(this.now() / windowMs)
    const { count } = await this.store.increment(storeKeys.registrationCount(window), 2 * windowMs)
    const previous = Number((await this.store.get(storeKeys.registrationCount(window - 1))) ?? 0)
    if (count + previous > this.config.maxClients) {
      const retryAfter = Math.ceil(((window + 1) * windowMs - this.now()) / 1000)
      throw new PublicError(
        'registration_limit_reached',
        429,
        `the gateway has reached its limit of ${this.config.maxClients} dynamic client registrations; try again later or ask its operator`,
        { headers: { 'retry-after': String(retryAfter) }, detail: 'registration.maxClients reached' },
      )
    }
  }
}

/**
 * client_credentials works only while registration.clientCredentials is configured, with its
 * limits of the moment (CC-01, CC-03, CC-04): removing the setting stops the grant at once.
 */
function toClient(record: RegisteredClientRecord, config: RegistrationConfig): OAuthClient {
  const m = record.metadata
  const date = new Date(record.issuedAt * 1000).toISOString().slice(0, 10)
  const machine = config.clientCredentials
  const grantTypes = machine ? m.grant_types : m.grant_types.filter((g) => g !== 'client_credentials')
  return {
    clientId: record.clientId,
    name: m.client_name ?? 'Unnamed application',
    redirectUris: m.redirect_uris,
    authMethod: m.token_endpoint_auth_method,
    grantTypes,
    ...(machine &&
      grantTypes.includes('client_credentials') && {
        machine: { ...(machine.resources && { resources: machine.resources }), ...(machine.scopes && { scopes: machine.scopes }) },
      }),
    source: 'registered',
    verifiedAs: `registered itself on ${date}; nothing about it was verified`,
    verifySecret: (secret) => matchesDigest(secret, record.secretHash),
  }
}

/** The metadata as the gateway will apply it, so registrations that behave alike compare equal. */
function dedupeHash(metadata: RegisteredMetadata, sourceAddress: string): string {
  const redirects = metadata.redirect_uris.map(withoutLoopbackPort).sort()
  const normalized = {
    ...metadata,
    redirect_uris: [...new Set(redirects)],
    grant_types: [...metadata.grant_types].sort(),
    response_types: [...metadata.response_types].sort(),
  }
  const canonical = JSON.stringify(Object.keys(normalized).sort().map((k) => [k, normalized[k as keyof RegisteredMetadata]]))
  return sha256Hex(`${sourceAddress}\n${canonical}`)
}

function withoutLoopbackPort(uri: string): string {
  const u = new URL(uri)
  if (u.protocol !== 'http:' || !isLoopbackHost(u.hostname)) return uri
  u.port = ''
  return u.href
}
