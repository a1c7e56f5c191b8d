/**
 * The security-event metric families, fed by the audit trail: every audit event that counts is
 * counted here, so metrics and audit lines can never disagree, and the call sites record one
 * event instead of an event and a metric.
 *
 * Events carry identifiers (client ids, subjects, grant ids); none of them becomes a label.
 * Fields typed as free strings are mapped to fixed sets (`bounded`), so a hostile client id or
 * grant type cannot create series.
 */
import type { AuditEvent, AuditTrail } from '../audit/events.js'
import type { FetchErrorKind } from '../oauth/clients/cimd/fetch.js'
import { bounded, type GatewayMetrics } from './gateway-metrics.js'

const GRANT_TYPES = new Set(['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:jwt-bearer'])

/** The OAuth error codes the token endpoint answers with (RFC 6749 §5.2, RFC 8707 §2). */
const TOKEN_ERRORS = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
  'server_error',
  'temporarily_unavailable',
  'rate_limited',
])

const RATE_LIMIT_SCOPES = new Set(['address', 'client', 'subject', 'host'])

const FETCH_ERROR_KINDS: ReadonlySet<string> = new Set([
  'not_allowed_address',
  'redirect',
  'status',
  'content_type',
  'too_large',
  'timeout',
  'network',
  'invalid_json',
] satisfies FetchErrorKind[])

/** Limit names are the gateway's own (e.g. `token.per_client`); still capped, as labels must be. */
const LIMIT_NAME = /^[a-z][a-z0-9_.]{0,47}$/
const MAX_LIMIT_NAMES = 32

/** Subscribes the metric families to the trail. */
export function countAuditEvents(trail: AuditTrail, metrics: GatewayMetrics): void {
  // Events may name a resource by id or canonical URI; the label is always the id.
  const resource = (value: string) => metrics.resourceLabel(value)
  const limits = new Set<string>()
  const limitLabel = (name: string) => {
    if (limits.has(name)) return name
    if (!LIMIT_NAME.test(name) || limits.size >= MAX_LIMIT_NAMES) return 'other'
    limits.add(name)
    return name
  }

  trail.onEvent((event) => count(event))

  function count(event: AuditEvent): void {
    switch (event.type) {
      case 'token.issued':
        metrics.tokens.inc({ grant_type: event.grantType, outcome: 'issued' })
        return
      case 'token.refused': {
        const grantType = bounded(event.grantType, GRANT_TYPES)
        metrics.tokens.inc({ grant_type: grantType, outcome: 'refused' })
        metrics.tokenRefusals.inc({ grant_type: grantType, reason: bounded(event.error, TOKEN_ERRORS) })
        return
      }
      case 'bearer.refused':
        metrics.bearerRefusals.inc({ resource: resource(event.resource), reason: event.reason })
        return
      case 'client.resolved':
        metrics.cimdResolutions.inc({ outcome: event.cache === 'hit' ? 'cache_hit' : 'fetched' })
        return
      case 'client.refused': {
        // A fetch failure's rule is `fetch.<kind>`: the kind (a fixed set) refines the outcome.
        const kind = event.reason === 'fetch_error' ? event.rule?.replace(/^fetch\./, '') : undefined
        const outcome = kind !== undefined && FETCH_ERROR_KINDS.has(kind) ? `refused_fetch_${kind}` : `refused_${event.reason}`
        metrics.cimdResolutions.inc({ outcome })
        return
      }
      case 'client.registered':
        metrics.dcrRegistrations.inc({ outcome: 'registered' })
        return
      case 'client.registration_refused':
        metrics.dcrRegistrations.inc({ outcome: event.reason })
        return
      case 'client.deleted':
        metrics.dcrDeletions.inc({ by: event.by })
        return
      case 'grant.revoked':
        metrics.grantsRevoked.inc({ by: event.by })
        return
      case 'code.issued':
        metrics.codesIssued.inc()
        return
      case 'code.replayed':
        metrics.codeReplays.inc()
        return
      case 'refresh.reused':
        metrics.refreshReuses.inc()
        return
      case 'login.succeeded':
        metrics.logins.inc({ outcome: 'succeeded' })
        return
      case 'login.failed':
        metrics.logins.inc({ outcome: event.reason })
        return
      case 'access.refused':
        metrics.accessRefusals.inc({ resource: resource(event.resource) })
        return
      case 'consent.granted':
        metrics.consents.inc({ outcome: event.remembered ? 'remembered' : 'granted' })
        return
      case 'consent.denied':
        metrics.consents.inc({ outcome: 'denied' })
        return
      case 'mcp.decision':
        metrics.mcpDecisions.inc({ resource: resource(event.resource), decision: event.decision })
        return
      case 'rate_limited':
        metrics.rateLimited.inc({ limit: limitLabel(event.limit), scope: bounded(event.scope, RATE_LIMIT_SCOPES) })
        return
      case 'admin.refused':
        metrics.adminRefusals.inc({ reason: event.reason })
        return
      case 'config.reload':
        metrics.configReloads.inc({ result: event.result })
        return
      case 'client.changed':
        return // a change of a cached document is an audit matter, not a rate worth a series
      default:
        // A member added to AuditEvent later is simply not counted until it is mapped here.
        return
    }
  }
}
