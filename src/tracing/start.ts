/**
 * Turns tracing on for a gateway when the configuration asks for it. The OpenTelemetry SDK is
 * imported here, dynamically, and nowhere else: with tracing off it is never loaded.
 */
import type { Logger } from 'pino'
import type { TracingConfig } from '../config/operations-schema.js'
import { installTracer, uninstallTracer, type Tracer } from './span.js'

/** The installed tracer, or undefined when tracing is off (or already on in this process). */
export async function startTracing(config: TracingConfig, logger: Logger): Promise<Tracer | undefined> {
  if (!config.enabled) return undefined
  const { createOtelTracer } = await import('./otel.js')
  const tracer = createOtelTracer(config)
  if (!installTracer(tracer)) {
    await tracer.shutdown()
    logger.warn('tracing is already on in this process (another gateway); this one adds its spans to it')
    return undefined
  }
  // The endpoint may carry a collector credential in its userinfo or query: logged without them.
  const endpoint = new URL(config.otlpEndpoint)
  logger.info({ otlpEndpoint: `${endpoint.origin}${endpoint.pathname}`, sampleRatio: config.sampleRatio }, 'tracing on')
  return tracer
}

/** Flushes the spans still queued and uninstalls the tracer. */
export async function stopTracing(tracer: Tracer | undefined): Promise<void> {
  if (!tracer) return
  uninstallTracer(tracer)
  await tracer.shutdown()
}
