/**
 * The OpenTelemetry-backed tracer. Only ever loaded by a dynamic import in tracing/start.ts,
 * when `tracing.enabled` is true.
 *
 * Spans go through a BatchSpanProcessor to the OTLP/HTTP (JSON) exporter. The parent of a span
 * is kept in an AsyncLocalStorage of our own rather than OpenTelemetry's global context
 * manager, so nothing global is registered and closing the gateway leaves no state behind.
 *
 * Incoming `traceparent` headers are not continued: the gateway faces the internet, and a
 * client must not choose trace ids or sampling decisions in the operator's tracing backend.
 * Traces start at the gateway and continue to the upstream MCP server.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node'
import type { TracingConfig } from '../config/operations-schema.js'
import type { SpanAttributes, SpanHandle, SpanKindName, Tracer } from './span.js'

const KINDS: Record<SpanKindName, SpanKind> = { internal: SpanKind.INTERNAL, server: SpanKind.SERVER, client: SpanKind.CLIENT }

export function createOtelTracer(config: TracingConfig): Tracer {
  const exporter = new OTLPTraceExporter({ url: config.otlpEndpoint })
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(exporter as unknown as SpanExporter)],
  })
  const tracer = provider.getTracer('gatehouse')
  const parents = new AsyncLocalStorage<Context>()

  const handle = (span: Span, context: Context): SpanHandle => {
    let ended = false
    return {
      setAttribute: (key, value) => void span.setAttribute(key, value),
      end(errorKind) {
        if (ended) return
        ended = true
        if (errorKind !== undefined) {
          span.setAttribute('error.type', errorKind)
          span.setStatus({ code: SpanStatusCode.ERROR, message: errorKind })
        }
        span.end()
      },
      inject(headers) {
        const { traceId, spanId, traceFlags } = span.spanContext()
        // W3C Trace Context §3.2: version 00, trace id, parent id, flags.
        headers.traceparent = `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`
        delete headers.tracestate
      },
      run: (fn) => parents.run(context, fn),
    }
  }

  return {
    start(name: string, attributes?: SpanAttributes, kind: SpanKindName = 'internal') {
      const parent = parents.getStore() ?? ROOT_CONTEXT
      const span = tracer.startSpan(name, { kind: KINDS[kind], ...(attributes && { attributes }) }, parent)
      return handle(span, trace.setSpan(parent, span))
    },
    shutdown: () => provider.shutdown(),
  }
}
