/**
 * The gateway's Prometheus metrics: one registry per gateway (never prom-client's global one, so
 * two gateways in one process keep their own counts), the metric families, and the text
 * exposition. Names follow the Prometheus conventions: `gatehouse_` prefix, `_total` counters,
 * `_seconds` histograms, base units.
 *
 * Cardinality is bounded by construction: every label value comes from the configuration
 * (resource ids), from a fixed enum in this folder (route classes, outcomes, reasons), or is an
 * HTTP status code. Client ids, subjects, URLs, tokens and paths never become label values;
 * values that arrive as free strings are mapped through `bounded()` to a fixed set or `other`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/**
 * Request latencies of a proxy: the gateway's own endpoints answer in well under a millisecond
 * to a few milliseconds (metadata, token checks), login pages with scrypt in tens of
 * milliseconds, upstream MCP calls from milliseconds to the 60 s response-headers timeout.
 * Fine steps below 10 ms show the gateway's own cost; coarse ones above cover tool calls.
 */
export const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/**
 * Store operations: the memory store answers in microseconds, Redis on the same network in
 * 0.1–2 ms; anything near the 2 s command timeout (store.redis.commandTimeoutMs) is an incident.
 */
export const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/** How an upstream hop ended; `ok` means response headers arrived (any status). */
export type UpstreamOutcome = 'ok' | 'timeout' | 'connection_refused' | 'error'

export type StoreOperation = 'get' | 'set' | 'set_if_absent' | 'take' | 'compare_and_set' | 'increment' | 'delete' | 'keys' | 'append' | 'read_log' | 'add_member' | 'members' | 'remove_member' | 'ping'

/** Label value of a metric that does not belong to one resource (Prometheus treats "" as absent). */
export const NO_RESOURCE = ''

/** `value` when it is one of `allowed`, else `other`: the guard on every free-string label. */
export function bounded(value: unknown, allowed: ReadonlySet<string>): string {
  return typeof value === 'string' && allowed.has(value) ? value : 'other'
}

export interface GatewayMetricsOptions {
  /** The configured resources: their ids are the only values the `resource` label takes (besides "" and other). */
  resources: readonly { id: string; uri: string }[]
  /** Process and Node.js metrics (prom-client's defaults) in the same registry; default true. */
  processMetrics?: boolean
}

export class GatewayMetrics {
  readonly registry = new Registry()
  readonly #resourceIds = new Set<string>()
  /** Events may name a resource by its canonical URI; the label is always the id. */
  readonly #idByUri = new Map<string, string>()

  readonly httpRequests: Counter<'route' | 'resource' | 'status'>
  readonly httpDuration: Histogram<'route' | 'resource' | 'status'>
  readonly upstreamRequests: Counter<'resource' | 'outcome'>
  readonly upstreamDuration: Histogram<'resource'>
  readonly sseStreamsOpen: Gauge<'resource'>
  readonly sseStreams: Counter<'resource'>
  readonly tokens: Counter<'grant_type' | 'outcome'>
  readonly tokenRefusals: Counter<'grant_type' | 'reason'>
  readonly bearerRefusals: Counter<'resource' | 'reason'>
  readonly cimdResolutions: Counter<'outcome'>
  readonly dcrRegistrations: Counter<'outcome'>
  readonly dcrDeletions: Counter<'by'>
  readonly grantsRevoked: Counter<'by'>
  readonly codesIssued: Counter
  readonly codeReplays: Counter
  readonly refreshReuses: Counter
  readonly logins: Counter<'outcome'>
  readonly accessRefusals: Counter<'resource'>
  readonly consents: Counter<'outcome'>
  readonly mcpDecisions: Counter<'resource' | 'decision'>
  readonly rateLimited: Counter<'limit' | 'scope'>
  readonly adminRefusals: Counter<'reason'>
  readonly configReloads: Counter<'result'>
  readonly storeOperations: Counter<'operation' | 'outcome'>
  readonly storeDuration: Histogram<'operation'>
  readonly storeUp: Gauge

  constructor({ resources, processMetrics = true }: GatewayMetricsOptions) {
    const registers = [this.registry]
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Counter<L>({ name, help, labelNames, registers })

    this.httpRequests = counter('gatehouse_http_requests_total', 'HTTP requests answered on the main listener.', [
      'route',
      'resource',
      'status',
    ])
    this.httpDuration = new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'Time from request to the end of the response; event streams are not observed (their lifetime is not latency).',
      labelNames: ['route', 'resource', 'status'],
      buckets: REQUEST_BUCKETS,
      registers,
    })
    this.upstreamRequests = counter('gatehouse_upstream_requests_total', 'Requests proxied to an upstream MCP server, by outcome.', [
      'resource',
      'outcome',
    ])
    this.upstreamDuration = new Histogram({
      name: 'gatehouse_upstream_response_duration_seconds',
      help: 'Time from sending a request upstream to its response headers (answered requests only).',
      labelNames: ['resource'],
      buckets: REQUEST_BUCKETS,
      registers,
    })
    this.sseStreamsOpen = new Gauge({
      name: 'gatehouse_sse_streams_open',
      help: 'Upstream event streams (text/event-stream responses) currently passed through to clients.',
      labelNames: ['resource'],
      registers,
    })
    this.sseStreams = counter('gatehouse_sse_streams_total', 'Upstream event streams opened.', ['resource'])
    this.tokens = counter('gatehouse_tokens_total', 'Token endpoint results by grant type: issued or refused.', ['grant_type', 'outcome'])
    this.tokenRefusals = counter('gatehouse_token_refusals_total', 'Token requests refused, by OAuth error code.', [
      'grant_type',
      'reason',
    ])
    this.bearerRefusals = counter('gatehouse_bearer_refusals_total', 'MCP requests refused at the bearer check, by reason.', [
      'resource',
      'reason',
    ])
    this.cimdResolutions = counter(
      'gatehouse_cimd_resolutions_total',
      'Metadata-document client ids resolved (cache_hit, fetched) or refused (refused_<reason>).',
      ['outcome'],
    )
    this.dcrRegistrations = counter(
      'gatehouse_dcr_registrations_total',
      'Dynamic client registrations: registered, or the reason of the refusal.',
      ['outcome'],
    )
    this.dcrDeletions = counter('gatehouse_dcr_deletions_total', 'Dynamically registered clients deleted, by whom.', ['by'])
    this.grantsRevoked = counter('gatehouse_grants_revoked_total', 'Grants revoked, by cause.', ['by'])
    this.codesIssued = counter('gatehouse_authorization_codes_issued_total', 'Authorization codes issued.')
    this.codeReplays = counter('gatehouse_authorization_code_replays_total', 'Authorization codes presented a second time.')
    this.refreshReuses = counter('gatehouse_refresh_token_reuses_total', 'Rotated refresh tokens presented again after the grace period.')
    this.logins = counter('gatehouse_logins_total', 'Sign-ins at the gateway: succeeded, or the reason of the failure.', ['outcome'])
    this.accessRefusals = counter('gatehouse_access_refusals_total', 'Signed-in people refused by a resource\'s access rules.', [
      'resource',
    ])
    this.consents = counter('gatehouse_consents_total', 'Consent decisions: granted, remembered or denied.', ['outcome'])
    this.mcpDecisions = counter('gatehouse_mcp_decisions_total', 'MCP policy decisions.', ['resource', 'decision'])
    this.adminRefusals = counter('gatehouse_admin_refusals_total', 'Operator console refusals: not an operator, a wrong admin token, a form without its CSRF token.', ['reason'])
    this.configReloads = counter('gatehouse_config_reloads_total', 'Configuration reloads: applied, or refused (an invalid file).', ['result'])
    this.rateLimited = counter('gatehouse_rate_limited_total', 'Requests refused by a rate limit.', ['limit', 'scope'])
    this.storeOperations = counter('gatehouse_store_operations_total', 'Store operations, by outcome (error: failed or unavailable).', [
      'operation',
      'outcome',
    ])
    this.storeUp = new Gauge({
      name: 'gatehouse_store_up',
      help: 'Whether the store answered its last health check (1) or not (0); requests that need it answer 503 meanwhile.',
      registers,
    })
    this.storeDuration = new Histogram({
      name: 'gatehouse_store_operation_duration_seconds',
      help: 'Store operation latency (failed operations included).',
      labelNames: ['operation'],
      buckets: STORE_BUCKETS,
      registers,
    })

    this.addResources(resources)
    if (processMetrics) collectDefaultMetrics({ register: this.registry })
  }

  /**
   * The resources of a configuration, at start and at each live reload: a resource a reload adds
   * gets its own label value. One a reload removes keeps it, as its series must not vanish. Ids
   * come from the operator's configuration only, never from a request.
   */
  addResources(resources: readonly { id: string; uri: string }[]): void {
    for (const { id, uri } of resources) {
      this.#idByUri.set(uri, id)
      if (this.#resourceIds.has(id)) continue
      this.#resourceIds.add(id)
      // Series that must exist before their first event, so rate() and "== 0" alerts work.
      this.sseStreamsOpen.set({ resource: id }, 0)
      this.upstreamRequests.inc({ resource: id, outcome: 'ok' }, 0)
    }
  }

  /** The label value for a resource id or canonical URI from elsewhere: configured resources only. */
  resourceLabel(idOrUri: unknown): string {
    const id = typeof idOrUri === 'string' ? (this.#idByUri.get(idOrUri) ?? idOrUri) : idOrUri
    return bounded(id, this.#resourceIds)
  }

  /** The Prometheus text exposition. */
  exposition(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
