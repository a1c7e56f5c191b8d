/**
 * The audit trail's vocabulary: one event per security decision, with a stable schema
 * (documented in docs/audit-events.md). Events carry identifiers and outcomes, never secrets,
 * tokens, passwords or attacker-supplied text beyond the identifiers themselves.
 *
 * Adding a member to an event is compatible; renaming or removing one is a breaking change of
 * the published schema.
 */

/** Why a metadata-document client was refused; bounded, so it can label a metric. */
export type ClientRefusalReason =
  | 'url_rule'
  | 'trust_policy'
  | 'fetch_error'
  | 'invalid_document'
  | 'metadata_policy'
  | 'rate_limited'
  | 'negative_cache'

export type AuditEvent =
  | { type: 'login.succeeded'; sub: string; provider: string }
  | { type: 'login.failed'; provider: string; reason: 'bad_credentials' | 'idp_error' | 'idp_unreachable' | 'cancelled' | 'invalid_state' }
  | { type: 'access.refused'; sub: string; provider: string; clientId: string; resource: string }
  | { type: 'consent.granted'; sub: string; clientId: string; resource: string; scopes: readonly string[]; remembered: boolean }
  | { type: 'consent.denied'; sub?: string; clientId: string; resource: string }
  | { type: 'client.resolved'; clientId: string; source: 'cimd'; cache: 'hit' | 'fetched' }
  | { type: 'client.refused'; clientId: string; reason: ClientRefusalReason; rule?: string; field?: string }
  | { type: 'client.changed'; clientId: string; members: readonly string[] }
  | { type: 'client.registered'; clientId: string; authMethod: string }
  | { type: 'client.registration_refused'; reason: 'invalid_metadata' | 'invalid_redirect_uri' | 'unauthorized' | 'rate_limited' | 'capacity' }
  /** `actor`: the operator (--actor or the OS user) when `by` is operator. */
  | { type: 'client.deleted'; clientId: string; by: 'client' | 'operator'; actor?: string }
  | { type: 'code.issued'; sub: string; clientId: string; resource: string; grantId: string; scopes: readonly string[] }
  | { type: 'code.replayed'; clientId: string; grantId: string }
  | {
      type: 'token.issued'
      grantType: 'authorization_code' | 'refresh_token' | 'client_credentials' | 'urn:ietf:params:oauth:grant-type:jwt-bearer'
      sub: string
      clientId: string
      resource: string
      grantId: string
      scopes: readonly string[]
      /** Present (true) when a refresh token rotated moments ago was answered inside the reuse grace window (REF-03). */
      grace?: true
    }
  | { type: 'token.refused'; grantType: string; clientId?: string; error: string }
  /** WIF-02..04: a workload token refused, by the check that refused it; `issuer` is a configured id or `untrusted`. */
  | { type: 'workload.refused'; issuer: string; check: string }
  | { type: 'refresh.reused'; clientId: string; grantId: string }
  /** With `by` operator: `actor` (--actor or the OS user; in the console the admin's `sub` or `admin-token`); with operator or user (the account page): the grant's `sub` and `clientId`. */
  | {
      type: 'grant.revoked'
      grantId: string
      by: 'client' | 'operator' | 'user' | 'code_replay' | 'refresh_reuse' | 'access_rules'
      actor?: string
      sub?: string
      clientId?: string
    }
  /** The operator console: `actor` is the person's `sub` (admin.access) or `admin-token`. A person signs in at /account (login.succeeded). */
  | { type: 'admin.signed_in'; actor: string; method: 'token' }
  | { type: 'admin.signed_out'; actor: string }
  /** A console page shown to an operator (`path`: the route, never its query). */
  | { type: 'admin.viewed'; actor: string; path: string }
  /** Who was turned away from the console: a signed-in person the rules do not name (`sub`), a wrong token, a form not from its page. */
  | { type: 'admin.refused'; reason: 'not_admin' | 'bad_token' | 'csrf'; sub?: string; path: string }
  /** The console's `cimd inspect`: one client id URL's decision, read-only as the CLI's. */
  | { type: 'admin.cimd_inspected'; actor: string; clientId: string; accepted: boolean }
  /** `gatehouse keys rotate` wrote a new signing key (not yet in use: the operator rolls it in). */
  | { type: 'key.rotation_started'; kid: string; alg: string; actor: string }
  /** `gatehouse token` minted an access token (a development tool); never the token itself. */
  | {
      type: 'token.minted'
      actor: string
      sub: string
      clientId: string
      resource: string
      scopes: readonly string[]
      ttl: number
      /** Absent with the memory store: no gateway would see the grant. */
      grantId?: string
    }
  | { type: 'bearer.refused'; resource: string; reason: 'missing' | 'invalid' | 'expired' | 'audience' | 'malformed' }
  | {
      type: 'mcp.decision'
      resource: string
      sub: string
      clientId: string | undefined
      method: string
      name?: string
      decision: 'allow' | 'deny'
      reason?: string
      rule: string
      arguments?: unknown
    }
  | { type: 'rate_limited'; limit: string; scope: 'address' | 'client' | 'subject' | 'host' }
  /**
   * A configuration reload (SIGHUP or a change of the file): applied, or refused with the number
   * of problems (the log lists them). `restartRequired`: settings that changed but keep their
   * running values until a restart.
   */
  | {
      type: 'config.reload'
      result: 'applied' | 'refused'
      trigger: 'signal' | 'file'
      problems?: number
      restartRequired?: readonly string[]
    }
  | { type: 'upstream.exchanged'; resource: string; sub: string; clientId: string | undefined; expiresIn?: number }
  | {
      type: 'upstream.exchange_failed'
      resource: string
      sub: string
      clientId: string | undefined
      reason: 'unreachable' | 'timeout' | 'refused' | 'unavailable' | 'malformed'
      status?: number
      error?: string
    }

export type AuditEventType = AuditEvent['type']

/** Where the event happened, added by the trail from the request when there is one. */
export interface AuditContext {
  requestId?: string
  /** The client address as the gateway sees it (after trustProxy). */
  address?: string
}

export type AuditListener = (event: AuditEvent, context: AuditContext) => void

/**
 * Records security events. The sink writes them (see audit/sink.ts); listeners (metrics)
 * observe them. Recording never throws into the caller: an audit failure must not turn a
 * decision into a 500.
 */
export class AuditTrail {
  readonly #listeners: AuditListener[] = []

  constructor(private readonly write: AuditListener = () => {}) {}

  onEvent(listener: AuditListener): void {
    this.#listeners.push(listener)
  }

  record(event: AuditEvent, context: AuditContext = {}): void {
    // Each observer on its own: a failing sink must not stop the metrics, nor the reverse.
    for (const observe of [this.write, ...this.#listeners]) {
      try {
        observe(event, context)
      } catch {
        // Deliberately swallowed; see the class comment.
      }
    }
  }
}

/** The context of a Fastify request, without importing Fastify here. */
export function contextOf(request: { id: string; ip: string }): AuditContext {
  return { requestId: request.id, address: request.ip }
}
