/**
 * One request's trip to the upstream MCP server, observed: its outcome and time to response
 * headers (metrics), its `upstream` span with the W3C `traceparent` it carries (tracing), and,
 * for an event-stream answer, the open-streams gauge until the client's response closes.
 *
 * The resource plugin creates an observer only when metrics or tracing is on; otherwise the
 * proxy path has no hop object at all.
 */
import type { ServerResponse } from 'node:http'
import { startSpan, type SpanHandle } from '../tracing/span.js'
import type { GatewayMetrics, UpstreamOutcome } from './gateway-metrics.js'

export class UpstreamObserver {
  constructor(
    private readonly metrics: GatewayMetrics | undefined,
    private readonly resourceId: string,
  ) {}

  /** Called just before the request is sent upstream. */
  begin(method: string): UpstreamHop {
    return new UpstreamHop(this.metrics, this.resourceId, method)
  }
}

export class UpstreamHop {
  readonly #started = performance.now()
  readonly #span: SpanHandle
  #settled = false

  constructor(
    private readonly metrics: GatewayMetrics | undefined,
    private readonly resource: string,
    method: string,
  ) {
    this.#span = startSpan('upstream', { 'gatehouse.resource': resource, 'http.request.method': method }, 'client')
  }

  /** Adds the span's trace context to the upstream request's headers (tracing on only). */
  propagate(headers: Record<string, unknown>): void {
    this.#span.inject(headers)
  }

  /** Response headers arrived, with this status. */
  responded(statusCode: number): void {
    if (this.#settled) return
    this.#settled = true
    this.metrics?.upstreamRequests.inc({ resource: this.resource, outcome: 'ok' })
    this.metrics?.upstreamDuration.observe({ resource: this.resource }, (performance.now() - this.#started) / 1000)
    this.#span.setAttribute('http.response.status_code', statusCode)
    this.#span.end(statusCode >= 500 ? 'upstream_status' : undefined)
  }

  /** No response: connection refused, timeout, reset... */
  failed(outcome: Exclude<UpstreamOutcome, 'ok'>): void {
    if (this.#settled) return
    this.#settled = true
    this.metrics?.upstreamRequests.inc({ resource: this.resource, outcome })
    this.#span.end(outcome)
  }

  /**
   * The answer is an event stream going to `client`: counted open until the client's response
   * closes, whichever side ends it (upstream end, client gone, shutdown), exactly once.
   */
  streamOpened(client: ServerResponse): void {
    const metrics = this.metrics
    if (!metrics || client.destroyed || client.writableFinished) return
    const labels = { resource: this.resource }
    metrics.sseStreams.inc(labels)
    metrics.sseStreamsOpen.inc(labels)
    client.once('close', () => metrics.sseStreamsOpen.dec(labels))
  }
}

/** How a failed hop is counted, from the error reply-from reports. */
export function upstreamFailure(error: Error & { code?: string }, timedOut: boolean): Exclude<UpstreamOutcome, 'ok'> {
  if (timedOut) return 'timeout'
  // reply-from wraps the socket error (FST_REPLY_FROM_INTERNAL_SERVER_ERROR, cause ECONNREFUSED).
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === 'ECONNREFUSED') return 'connection_refused'
  }
  return 'error'
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the resource plugin just before a request goes upstream, when metrics or tracing is on. */
    upstreamHop?: UpstreamHop
  }
}
