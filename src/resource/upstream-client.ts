/**
 * The connections to one upstream MCP server, and how its answers reach reply-from.
 *
 * reply-from sends through any object with `request(options, callback)` (its `undici` option).
 * This one dispatches on an undici Pool with a handler of its own rather than undici's
 * `request()` API, which wraps every answer in a stream, an async resource and abort wiring
 * before anyone has looked at it. Here an answer's body is an UpstreamBody: read whole into one
 * Buffer (a small JSON answer, most MCP calls: no stream at all), or turned into a Readable when
 * it must stream (event streams, large answers). The benchmark's profile put this per-call
 * machinery among the largest items the gateway could still shed (README, Benchmark).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { errors, Pool, util, type Dispatcher } from 'undici'

/** What reply-from passes to `request` (lib/request.js, handleUndici). */
interface ProxiedRequest {
  origin: string
  path: string
  method: string
  headers: Record<string, string | string[] | number | undefined>
  body?: string | Buffer | null | undefined
  headersTimeout?: number
  bodyTimeout?: number
}

/** What reply-from reads of an answer: its status, headers and body (handed on to onResponse). */
export interface UpstreamAnswer {
  statusCode: number
  headers: IncomingHttpHeaders
  body: UpstreamBody
}

type Callback = (err: Error | null, answer?: UpstreamAnswer) => void

/** Bytes an answer may hold in memory before anyone reads it; then the upstream waits. */
const UNREAD_LIMIT = 64 * 1024

/**
 * One answer's body as it arrives: read `whole()` or as a `stream()`, once. Until one of them
 * is chosen, up to UNREAD_LIMIT bytes wait here and then the upstream connection pauses, as a
 * stream's buffer would.
 */
export class UpstreamBody {
  #chunks: Buffer[] = []
  #bytes = 0
  #ended = false
  #error: Error | undefined
  #readable: Readable | undefined
  #whole: { resolve: (body: Buffer) => void; reject: (err: Error) => void } | undefined
  #paused = false

  constructor(
    private readonly resume: () => void,
    private readonly abort: (err: Error) => void,
  ) {}

  /** Reads the rest of the answer into one Buffer. */
  whole(): Promise<Buffer> {
    if (this.#error) return Promise.reject(this.#error)
    if (this.#ended) return Promise.resolve(this.#joined())
    return new Promise((resolve, reject) => {
      this.#whole = { resolve, reject }
      this.#wake()
    })
  }

  /** The answer as a stream; destroying it ends the upstream request. */
  stream(): Readable {
    if (this.#readable) return this.#readable
    const readable = new Readable({
      read: () => this.#wake(),
      destroy: (err, done) => {
        if (!this.#ended && this.#error === undefined) this.#cancel(err ?? new errors.RequestAbortedError())
        done(err)
      },
    })
    this.#readable = readable
    for (const chunk of this.#chunks) readable.push(chunk)
    this.#chunks = []
    if (this.#error) readable.destroy(this.#error)
    else if (this.#ended) readable.push(null)
    return readable
  }

  /** Nobody will read this answer: the upstream request ends here. */
  destroy(): void {
    if (this.#readable) this.#readable.destroy()
    else if (!this.#ended && this.#error === undefined) this.#cancel(new errors.RequestAbortedError())
  }

  /** A chunk arrived; false asks the connection to pause. */
  data(chunk: Buffer): boolean {
    let more: boolean
    if (this.#readable) {
      more = this.#readable.push(chunk)
    } else {
      this.#chunks.push(chunk)
      this.#bytes += chunk.length
      more = this.#whole !== undefined || this.#bytes < UNREAD_LIMIT
    }
    if (!more) this.#paused = true
    return more
  }

  ended(): void {
    this.#ended = true
    if (this.#readable) this.#readable.push(null)
    else this.#whole?.resolve(this.#joined())
  }

  failed(err: Error): void {
    if (this.#ended || this.#error !== undefined) return
    this.#error = err
    if (this.#readable) this.#readable.destroy(err)
    else this.#whole?.reject(err)
  }

  #cancel(err: Error) {
    this.#error = err
    this.#chunks = []
    this.abort(err)
  }

  #wake() {
    if (!this.#paused) return
    this.#paused = false
    this.resume()
  }

  #joined(): Buffer {
    const chunks = this.#chunks
    this.#chunks = []
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#bytes)
  }
}

/** undici's dispatch handler (the callback form its clients speak natively) for one proxied request. */
class ProxiedExchange implements Dispatcher.DispatchHandler {
  #abort: ((err: Error) => void) | undefined
  #body: UpstreamBody | undefined
  #callback: Callback | undefined

  constructor(callback: Callback) {
    this.#callback = callback
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // Informational answers (1xx) are not passed on: undici reads the final one next.
    if (statusCode < 200) return true
    const body = new UpstreamBody(resume, (err) => this.#abort?.(err))
    this.#body = body
    const callback = this.#callback!
    this.#callback = undefined
    callback(null, { statusCode, headers: headersOf(rawHeaders), body })
    return true
  }

  onData(chunk: Buffer): boolean {
    return this.#body!.data(chunk)
  }

  onComplete(): void {
    this.#body!.ended()
  }

  onError(err: Error): void {
    const callback = this.#callback
    this.#callback = undefined
    // Never inside the caller's own dispatch call: reply-from expects its callback later.
    if (callback) queueMicrotask(() => callback(err))
    else this.#body?.failed(err)
  }
}

/**
 * Response headers in Node's shape (`IncomingHttpHeaders`): names in lower case, Set-Cookie
 * always a list, other repeated headers joined with ", " (RFC 9110 §5.3).
 */
function headersOf(raw: Buffer[]): IncomingHttpHeaders {
  // A plain object, not a null-prototype one (always a slow dictionary in V8, which every later
  // reader pays): an inherited name (`constructor`) is told from a repeated header by hasOwn, and
  // a header named `__proto__` cannot set the prototype from a string, so it is dropped.
  const headers: Record<string, string | string[]> = {}
  for (let i = 0; i < raw.length; i += 2) {
    const name = util.headerNameToString(raw[i]!)
    const value = raw[i + 1]!.toString('latin1')
    const found = headers[name]
    const seen = found === undefined || Object.hasOwn(headers, name) ? found : undefined
    if (name === 'set-cookie') {
      if (seen === undefined) headers[name] = [value]
      else (seen as string[]).push(value)
    } else {
      headers[name] = seen === undefined ? value : `${seen as string}, ${value}`
    }
  }
  return headers as IncomingHttpHeaders
}

export interface UpstreamClientOptions {
  connectTimeoutMs: number
  headersTimeoutMs: number
}

/** The pool of connections to one upstream origin, in the form reply-from sends through. */
export class UpstreamClient {
  readonly #pool: Pool

  constructor(origin: string, { connectTimeoutMs, headersTimeoutMs }: UpstreamClientOptions) {
    this.#pool = new Pool(origin, {
      connect: { timeout: connectTimeoutMs, rejectUnauthorized: true },
      headersTimeout: headersTimeoutMs,
      // A started response is a stream the client controls; an idle SSE stream is not an error (MCPT-16).
      bodyTimeout: 0,
      // No cap on upstream connections: every open notification stream holds one for as long as the
      // client listens, and a request queued behind a full pool waits with no timeout at all
      // (headersTimeout starts only once it has a socket), so a cap of N hangs every call after N
      // listening clients. The inbound connections already bound how many there can be.
      connections: null,
    })
  }

  request(request: ProxiedRequest, callback: Callback): void {
    const { path, method, headers, body } = request
    this.#pool.dispatch({ path, method: method as Dispatcher.HttpMethod, headers: headers as Record<string, string>, body: body ?? null }, new ProxiedExchange(callback))
  }

  close(): Promise<void> {
    return this.#pool.close()
  }

  destroy(): Promise<void> {
    return this.#pool.destroy()
  }
}
