/**
 * Rate limits counted in the store, so every replica shares one count (SEC-35, DCR-05, OQ-09).
 *
 * Fixed windows: the first request of a window creates a counter that lives windowSeconds
 * (Store.increment keeps its TTL), every request adds one, and above the limit the caller gets
 * 429 with Retry-After = the counter's remaining time, which is exact. One store round trip per
 * limit. The price is the boundary burst: up to twice the limit within a short span around a
 * window's end. These limits bound abuse, they are not billing quotas, so the cheaper and
 * exactly-explainable fixed window wins over a two-window sliding estimate (two round trips, an
 * estimated Retry-After). Refused requests count too, so a client that hammers stays refused.
 *
 * Keys are SHA-256 hashes of the address, client id or subject: bounded in size whatever a
 * caller sends, and no identifiers in the store's key space. IPv6 addresses count per /64, the
 * block one subscriber (or one attacker) gets.
 *
 * When the store fails, the limiter fails open and stops asking it for a few seconds. A limit
 * protects against abuse; it is not an authorization decision. Failing closed would turn a
 * store blip into an outage of MCP calls that need no store at all (tokens are checked offline),
 * and the authorization endpoints answer 503 by themselves when their own state is unreachable.
 * The pause keeps a hung store from adding its command timeout to every request.
 */
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify'
import ipaddr from 'ipaddr.js'
import { contextOf, type AuditTrail } from '../audit/events.js'
import type { RateLimitConfig, RateLimitsConfig } from '../config/operations-schema.js'
import { TooManyRequestsError } from '../errors.js'
import { storeKeys } from '../store/keys.js'
import type { Store } from '../store/store.js'

export type RateLimitScope = 'address' | 'client' | 'subject'

export interface LimitCheck {
  /** The endpoint class: authorize, token, registration, mcp. Named in audit events. */
  limit: string
  scope: RateLimitScope
  /** What is counted: an address, a client id, a subject (hashed before it reaches the store). */
  key: string
  rule: RateLimitConfig
  /** The store key for the hashed key; default storeKeys.rateLimit. */
  storeKey?: (keyHash: string) => string
}

const REFUSAL: Readonly<Record<RateLimitScope, string>> = {
  address: 'too many requests from this address; try again later',
  client: 'too many requests for this client; try again later',
  subject: 'too many requests for this user; try again later',
}

const PAUSE_AFTER_FAILURE_MS = 5000

/** The address a limit counts: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64 prefix. */
export function addressKey(ip: string): string {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6
  try {
    parsed = ipaddr.process(ip)
  } catch {
    return ip
  }
  if (parsed.kind() === 'ipv4') return parsed.toString()
  const prefix = (parsed as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16))
  return `${prefix.join(':')}::/64`
}

export const sha256Hex = (value: string) => createHash('sha256').update(value).digest('hex')

export class RateLimiter {
  #pausedUntil = 0

  constructor(
    private readonly store: Store,
    private readonly audit: AuditTrail,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Counts the request against every given limit (in parallel: one round trip of latency) and
   * throws a 429 TooManyRequestsError for the first one exceeded, after recording the refusal.
   * The route's errorFormat decides the body: OAuth JSON, an HTML page, or a JSON-RPC error.
   */
  async enforce(request: FastifyRequest, checks: readonly LimitCheck[]): Promise<void> {
    const active = checks.filter((c) => c.rule.requests > 0)
    if (active.length === 0 || this.now() < this.#pausedUntil) return
    let counts: { count: number; ttlMs: number }[]
    try {
      counts = await Promise.all(
        active.map((c) => this.store.increment((c.storeKey ?? ((h) => storeKeys.rateLimit(c.limit, c.scope, h)))(sha256Hex(c.key)), c.rule.windowSeconds * 1000)),
      )
    } catch (err) {
      this.#pausedUntil = this.now() + PAUSE_AFTER_FAILURE_MS
      warn(request.log, err)
      return
    }
    const exceeded = active.findIndex((c, i) => counts[i]!.count > c.rule.requests)
    if (exceeded === -1) return
    const check = active[exceeded]!
    const retryAfter = Math.max(1, Math.ceil(counts[exceeded]!.ttlMs / 1000))
    this.audit.record({ type: 'rate_limited', limit: check.limit, scope: check.scope }, contextOf(request))
    throw new TooManyRequestsError(REFUSAL[check.scope], {
      headers: { 'retry-after': String(retryAfter) },
      detail: `rate limit ${check.limit} per ${check.scope}: ${counts[exceeded]!.count} > ${check.rule.requests} in ${check.rule.windowSeconds} s`,
    })
  }
}

export function warn(log: FastifyBaseLogger, err: unknown): void {
  log.warn(
    { err, pauseMs: PAUSE_AFTER_FAILURE_MS },
    'rate limits not checked: the store failed; requests pass unlimited for a moment',
  )
}

/** The client_id a token request presents, in the form or in Basic credentials (unauthenticated). */
export function presentedClientId(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header !== undefined && /^basic /i.test(header)) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon === -1) return undefined
    try {
      return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '))
    } catch {
      return undefined
    }
  }
  return stringParam(request.body, 'client_id')
}

/** A single string parameter of a parsed query or form, else undefined. */
export function stringParam(source: unknown, name: string): string | undefined {
  if (source === null || typeof source !== 'object') return undefined
  const value = (source as Record<string, unknown>)[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/**
 * Puts the authorization server's limits in front of its routes, as preHandler hooks added when
 * each route is registered (so the routes' own files stay as they are). Call it before the
 * routes are registered. preHandler runs after the bounded form body is parsed: the token
 * endpoint's client_id may be in it.
 * - /oauth/authorize and its forms (login, consent, and whatever a login provider adds below
 *   it): per address; GET also per the query's client_id. The refusal is the route's HTML page,
 *   never a redirect (the redirect URI is not verified yet: O21-09).
 * - /oauth/token: per address and per the client_id presented (form or Basic), before
 *   authentication.
 */
export function limitAuthorizationServer(app: FastifyInstance, limiter: RateLimiter, limits: RateLimitsConfig): void {
  if (!limits.enabled) return
  const authorize: preHandlerHookHandler = async (request) => {
    const clientId = request.method === 'GET' ? stringParam(request.query, 'client_id') : undefined
    await limiter.enforce(request, [
      { limit: 'authorize', scope: 'address', key: addressKey(request.ip), rule: limits.authorize.perAddress },
      ...(clientId !== undefined ? [{ limit: 'authorize', scope: 'client' as const, key: clientId, rule: limits.authorize.perClient }] : []),
    ])
  }
  const token: preHandlerHookHandler = async (request) => {
    const clientId = presentedClientId(request)
    await limiter.enforce(request, [
      { limit: 'token', scope: 'address', key: addressKey(request.ip), rule: limits.token.perAddress },
      ...(clientId !== undefined ? [{ limit: 'token', scope: 'client' as const, key: clientId, rule: limits.token.perClient }] : []),
    ])
  }
  app.addHook('onRoute', (route) => {
    const hook =
      // The account page and the operator console sign people in too: the same per-address limit as the login forms.
      route.url === '/oauth/authorize' || route.url.startsWith('/oauth/authorize/') || /^\/(account|admin)(\/|$)/.test(route.url)
        ? authorize
        : route.url === '/oauth/token'
          ? token
          : undefined
    if (!hook) return
    const existing = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler]
    route.preHandler = [hook, ...existing]
  })
}

/** The MCP endpoints' per-subject limit, once the bearer check has named the subject. */
export async function limitMcpCall(
  request: FastifyRequest,
  limiter: RateLimiter,
  limits: RateLimitsConfig,
  subject: string,
): Promise<void> {
  if (!limits.enabled) return
  await limiter.enforce(request, [{ limit: 'mcp', scope: 'subject', key: subject, rule: limits.mcp.perSubject }])
}
