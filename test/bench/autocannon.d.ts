/**
 * The part of autocannon's API the benchmark uses (the package ships no type declarations and
 * there is no @types/autocannon in the project).
 */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  namespace autocannon {
    interface Client {
      setHeaders(headers: Record<string, string>): void
    }

    interface Options {
      url: string
      method?: string
      headers?: Record<string, string>
      body?: string | Buffer
      connections?: number
      pipelining?: number
      /** Seconds. */
      duration?: number
      /** Requests per second across all connections (a fixed offered load); unset: as fast as answered. */
      overallRate?: number
      /** Milliseconds between samples; a run stops at the first sample after its duration. */
      sampleInt?: number
      /** Seconds per request before it counts as a timeout. */
      timeout?: number
      /** Every response body must equal this; others are counted as mismatches. */
      expectBody?: string
      /** Called once per connection, e.g. to give each connection its own headers. */
      setupClient?: (client: Client) => void
    }

    interface Result {
      errors: number
      timeouts: number
      mismatches: number
      non2xx: number
      resets: number
      /** Seconds. */
      duration: number
      statusCodeStats: Record<string, { count: number }>
    }

    interface Instance extends EventEmitter {
      on(event: 'response', listener: (client: Client, statusCode: number, bytes: number, responseTimeMs: number) => void): this
      on(event: 'start' | 'done', listener: (...args: unknown[]) => void): this
      on(event: string, listener: (...args: unknown[]) => void): this
    }
  }

  function autocannon(options: autocannon.Options, callback: (err: Error | null, result: autocannon.Result) => void): autocannon.Instance

  export = autocannon
}
