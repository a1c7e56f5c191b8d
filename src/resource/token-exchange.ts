/**
 * upstreamAuth.exchange: RFC 8693 token exchange at the operator's security token service (STS),
 * for a token the upstream accepts (UPS-01, UPS-03).
 *
 * - The subject token is a short-lived JWT the gateway signs about the caller (RFC 8693 §2.1
 *   subject_token_type urn:ietf:params:oauth:token-type:jwt), never the MCP client's own token:
 *   that one never leaves the gateway (UPS-01, MCPA-60). The STS verifies it with /oauth/jwks.
 * - The gateway authenticates as a confidential client with client_secret_basic (RFC 6749
 *   §2.3.1; RFC 8693 §2.1 leaves client authentication to the STS's rules).
 * - Answers are cached per caller (subject, client, scopes, email, groups) and target (audience,
 *   resource) until shortly before `expires_in` runs out (RFC 8693 §2.2.1), in a bounded LRU;
 *   never shared between callers, never logged (UPS-03). Concurrent calls of one caller share one
 *   exchange in flight, so a burst costs the STS one request, not one per call.
 * - A failing STS never turns into a 500 nor echoes its body: unreachable, slow, 5xx or 429 →
 *   503 (try again later); a refusal (4xx) or an answer that is not a token answer → 502 (a
 *   configuration matter). Both reach an MCP client as the JSON-RPC error of any upstream
 *   failure; the audit event and the log carry the status and the RFC 6749 §5.2 error code only.
 */
import { Agent, request } from 'undici'
import type { AuditContext, AuditEvent, AuditTrail } from '../audit/events.js'
import type { UpstreamExchangeConfig } from '../config/upstream-auth-schema.js'
import { JsonRpcCode, JsonRpcError } from './jsonrpc.js'
import type { Principal } from './principal.js'

const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'
/** A token answer is a few KiB at most; anything larger is not one. */
const MAX_ANSWER_BYTES = 64 * 1024
/** A cached token is replaced this long before it expires (at most half its lifetime), so none arrives stale. */
const RENEW_BEFORE_MS = 30_000
const MAX_CACHED = 10_000
/** RFC 6750 §2.1 b64token: what can follow "Bearer " in a header (no space, CR, LF or other control). */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/
/** RFC 6749 §5.2 error codes are NQSCHAR; a longer or stranger value is not logged. */
const ERROR_CODE = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/

/** Signs the subject token: a JWT about the caller for the given audience. */
export type SignSubjectToken = (principal: Principal, audience: string, ttlSeconds: number) => Promise<string>

type FailureReason = Extract<AuditEvent, { type: 'upstream.exchange_failed' }>['reason']

class ExchangeFailed extends Error {
  constructor(
    readonly reason: FailureReason,
    readonly detail: string,
    readonly status?: number,
    readonly error?: string,
  ) {
    super(detail)
  }
}

interface Exchanged {
  /** The Authorization header value. */
  value: string
  /** Milliseconds since the epoch after which a new token is fetched; 0: use once. */
  renewAt: number
  expiresIn: number | undefined
}

export class TokenExchanger {
  readonly #cache = new Map<string, Exchanged>()
  readonly #inflight = new Map<string, Promise<Exchanged>>()
  readonly #dispatcher: Agent
  readonly #basic: string
  readonly #subjectAudience: string

  constructor(
    private readonly resourceId: string,
    private readonly config: UpstreamExchangeConfig,
    private readonly signSubject: SignSubjectToken,
    private readonly audit?: AuditTrail,
    private readonly now: () => number = Date.now,
  ) {
    // TLS certificates are verified (undici's default, stated); no redirects are followed (request() never does).
    this.#dispatcher = new Agent({
      connect: { timeout: config.timeoutMs, rejectUnauthorized: true },
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
    })
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined.
    const encode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+')
    this.#basic = `Basic ${Buffer.from(`${encode(config.clientId)}:${encode(config.clientSecret)}`).toString('base64')}`
    this.#subjectAudience = config.subjectTokenAudience ?? config.tokenEndpoint
  }

  /** The Authorization header value for this caller: cached, joined, or exchanged now. */
  async authorization(principal: Principal, context?: AuditContext): Promise<string> {
    const key = JSON.stringify([
      this.config.audience,
      this.config.resource,
      principal.sub,
      principal.clientId,
      [...principal.scopes].sort(),
      principal.token.email,
      principal.token.groups,
    ])
    const cached = this.#cache.get(key)
    if (cached) {
      this.#cache.delete(key)
      if (cached.renewAt > this.now()) {
        this.#cache.set(key, cached) // most recently used last
        return cached.value
      }
    }
    let pending = this.#inflight.get(key)
    if (!pending) {
      pending = this.#exchange(principal, context).finally(() => this.#inflight.delete(key))
      this.#inflight.set(key, pending)
    }
    const exchanged = await pending
    if (exchanged.renewAt > this.now() && !this.#cache.has(key)) {
      if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!)
      this.#cache.set(key, exchanged)
    }
    return exchanged.value
  }

  close(): Promise<void> {
    return this.#dispatcher.close()
  }

  async #exchange(principal: Principal, context: AuditContext | undefined): Promise<Exchanged> {
    const who = { resource: this.resourceId, sub: principal.sub, clientId: principal.clientId }
    try {
      const subjectToken = await this.signSubject(principal, this.#subjectAudience, this.config.subjectTokenTtlSeconds)
      const exchanged = await this.#post(subjectToken)
      this.audit?.record(
        { type: 'upstream.exchanged', ...who, ...(exchanged.expiresIn !== undefined && { expiresIn: exchanged.expiresIn }) },
        context,
      )
      return exchanged
    } catch (err) {
      if (!(err instanceof ExchangeFailed)) throw err
      this.audit?.record(
        {
          type: 'upstream.exchange_failed',
          ...who,
          reason: err.reason,
          ...(err.status !== undefined && { status: err.status }),
          ...(err.error !== undefined && { error: err.error }),
        },
        context,
      )
      throw publicError(err, this.resourceId)
    }
  }

  /** RFC 8693 §2.1 request, §2.2.1 answer, §2.2.2 error. */
  async #post(subjectToken: string): Promise<Exchanged> {
    const c = this.config
    const form = new URLSearchParams({
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: subjectToken,
      subject_token_type: JWT_TOKEN_TYPE,
      requested_token_type: c.requestedTokenType,
      ...(c.audience !== undefined && { audience: c.audience }),
      ...(c.resource !== undefined && { resource: c.resource }),
      ...(c.scope !== undefined && { scope: c.scope }),
    })
    const started = this.now()
    let status: number
    let text: string
    try {
      const res = await request(c.tokenEndpoint, {
        method: 'POST',
        dispatcher: this.#dispatcher,
        headers: { authorization: this.#basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal: AbortSignal.timeout(c.timeoutMs),
      })
      status = res.statusCode
      text = await readBounded(res.body)
    } catch (err) {
      if (err instanceof ExchangeFailed) throw err
      const e = err as Error & { code?: string }
      const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError' || /TIMEOUT/i.test(e.code ?? '')
      throw new ExchangeFailed(timedOut ? 'timeout' : 'unreachable', `token exchange: ${e.code ?? e.name}`)
    }
    if (status !== 200) {
      const error = errorCodeOf(text)
      const reason = status === 429 || status >= 500 ? 'unavailable' : status >= 400 ? 'refused' : 'malformed'
      throw new ExchangeFailed(reason, `token exchange: HTTP ${status}${error ? ` ${error}` : ''}`, status, error)
    }
    return answerOf(text, started, status)
  }
}

async function readBounded(body: AsyncIterable<Buffer> & { destroy(): unknown }): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > MAX_ANSWER_BYTES) {
      body.destroy()
      throw new ExchangeFailed('malformed', `token exchange: answer larger than ${MAX_ANSWER_BYTES} bytes`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** RFC 8693 §2.2.1: access_token and token_type are required, expires_in recommended. */
function answerOf(text: string, started: number, status: number): Exchanged {
  const malformed = (what: string) => new ExchangeFailed('malformed', `token exchange: ${what}`, status)
  let answer: unknown
  try {
    answer = JSON.parse(text)
  } catch {
    throw malformed('the answer is not JSON')
  }
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) throw malformed('the answer is not a JSON object')
  const { access_token: token, token_type: type, expires_in: expires } = answer as Record<string, unknown>
  if (typeof token !== 'string' || !B64TOKEN.test(token)) throw malformed('access_token is missing or cannot be sent as a bearer token')
  // Bearer, or N_A for a token that is no OAuth access token (§2.2.1); a DPoP-bound token would
  // need a proof the gateway cannot make for the upstream.
  if (typeof type !== 'string' || !['bearer', 'n_a'].includes(type.toLowerCase())) throw malformed('token_type is not Bearer')
  const seconds = typeof expires === 'string' && /^\d{1,9}$/.test(expires) ? Number(expires) : expires
  if (seconds !== undefined && (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds <= 0)) {
    throw malformed('expires_in is not a positive integer')
  }
  // Without expires_in the lifetime is unknown: the token serves this call only.
  const renewAt = seconds === undefined ? 0 : started + seconds * 1000 - Math.min(RENEW_BEFORE_MS, seconds * 500)
  return { value: `Bearer ${token}`, renewAt, expiresIn: seconds }
}

function errorCodeOf(text: string): string | undefined {
  try {
    const error = (JSON.parse(text) as { error?: unknown }).error
    return typeof error === 'string' && ERROR_CODE.test(error) ? error : undefined
  } catch {
    return undefined
  }
}

/**
 * The upstream-failure form of the MCP endpoint: a JSON-RPC error with the upstream code, 502 for
 * what the operator must fix, 503 (with Retry-After) for what passes.
 */
function publicError(err: ExchangeFailed, resourceId: string): JsonRpcError {
  const options = { detail: `upstream ${resourceId}: ${err.detail}` }
  return err.reason === 'refused' || err.reason === 'malformed'
    ? new JsonRpcError('bad_gateway', 502, 'the gateway could not obtain credentials for the MCP server', JsonRpcCode.upstreamUnavailable, null, options)
    : new JsonRpcError('temporarily_unavailable', 503, 'the token service of the MCP server is unavailable; try again', JsonRpcCode.upstreamUnavailable, null, options)
}
