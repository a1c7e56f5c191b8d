/**
 * The span helpers every instrumented step calls. With tracing off (the default) nothing from
 * OpenTelemetry is loaded: `withSpan` calls its function directly and `startSpan` returns one
 * shared do-nothing handle, so the cost of an instrumented step is one variable check.
 * With tracing on, tracing/start.ts installs the SDK-backed tracer here.
 *
 * The installed tracer is process-wide, like OpenTelemetry's own global provider: two gateways
 * in one process with tracing on share it (the second is refused at startup).
 *
 * Span attributes are chosen by the caller from bounded, non-secret values (route classes,
 * resource ids, status codes, error kinds); never tokens, client ids, URLs or bodies.
 */

export type SpanAttributes = Readonly<Record<string, string | number | boolean>>

export type SpanKindName = 'internal' | 'server' | 'client'

export interface SpanHandle {
  setAttribute(key: string, value: string | number | boolean): void
  /** Ends the span; `errorKind` (a fixed word such as `timeout`) marks it failed. Once only. */
  end(errorKind?: string): void
  /** Writes this span's W3C `traceparent` into outgoing headers (and drops a foreign `tracestate`). */
  inject(headers: Record<string, unknown>): void
  /** Runs `fn` with this span as the parent of the spans started inside it (async included). */
  run<T>(fn: () => T): T
}

export interface Tracer {
  start(name: string, attributes?: SpanAttributes, kind?: SpanKindName): SpanHandle
  /** Flushes the spans still queued and stops exporting. */
  shutdown(): Promise<void>
}

/** The handle of an untraced step: every method does nothing. */
export const NO_SPAN: SpanHandle = Object.freeze({
  setAttribute() {},
  end() {},
  inject() {},
  run: <T>(fn: () => T): T => fn(),
})

let active: Tracer | undefined

export function tracingActive(): boolean {
  return active !== undefined
}

/** Starts a span that the caller ends (for steps that end in a callback, like the upstream hop). */
export function startSpan(name: string, attributes?: SpanAttributes, kind?: SpanKindName): SpanHandle {
  return active === undefined ? NO_SPAN : active.start(name, attributes, kind)
}

/**
 * Runs `fn` inside a span named `name`, ended when the promise settles; a rejection marks the
 * span failed with the error's `kind` (FetchError) or class name, never its message.
 */
export function withSpan<T>(
  name: string,
  attributes: SpanAttributes | undefined,
  fn: (span: SpanHandle) => Promise<T>,
  kind: SpanKindName = 'internal',
): Promise<T> {
  if (active === undefined) return fn(NO_SPAN)
  const span = active.start(name, attributes, kind)
  return span.run(() => fn(span)).then(
    (value) => {
      span.end()
      return value
    },
    (err: unknown) => {
      span.end(errorKindOf(err))
      throw err
    },
  )
}

/** A fixed word for a failure: FetchError-style `kind`, else the error's class name. */
export function errorKindOf(err: unknown): string {
  const kind = (err as { kind?: unknown } | undefined)?.kind
  if (typeof kind === 'string' && /^[a-z_]{1,40}$/.test(kind)) return kind
  const name = (err as { name?: unknown } | undefined)?.name
  return typeof name === 'string' && /^[A-Za-z]{1,60}$/.test(name) ? name : 'error'
}

/** Installs the process's tracer; false when another one is already installed. */
export function installTracer(tracer: Tracer): boolean {
  if (active !== undefined) return false
  active = tracer
  return true
}

export function uninstallTracer(tracer: Tracer): void {
  if (active === tracer) active = undefined
}
