/**
 * Keep-alive comments on a quiet event stream (resource `sseKeepAliveSeconds`): load balancers
 * and proxies close a connection that carried nothing for their idle timeout (often 60 s), which
 * ends a notification stream that simply had nothing to say. A line starting with a colon is a
 * comment that every SSE parser ignores (WHATWG HTML §9.2.6), so one is written after each quiet
 * interval, but only between events, never inside one the upstream is still sending: the bytes
 * so far must end with a blank line (LF LF, CRLF CRLF or LF CRLF). The upstream's bytes pass
 * through unchanged and unbuffered (MCPT-03).
 */
import { Transform, type TransformCallback } from 'node:stream'

const COMMENT = ': keep-alive\n\n'
const BLANK_LINE_AT_END = /(?:\n\n|\r\n\r\n|\n\r\n)$/

export class SseKeepAlive extends Transform {
  /** The last bytes that passed, enough to see whether they end an event; empty: nothing yet. */
  #tail = ''
  readonly #timer: NodeJS.Timeout

  constructor(intervalMs: number) {
    super()
    this.#timer = setTimeout(() => this.#quiet(), intervalMs)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#tail = (this.#tail + chunk.toString('latin1')).slice(-4)
    this.#timer.refresh()
    done(null, chunk)
  }

  override _flush(done: TransformCallback): void {
    clearTimeout(this.#timer)
    done()
  }

  override _destroy(error: Error | null, done: (error: Error | null) => void): void {
    clearTimeout(this.#timer)
    done(error)
  }

  #quiet(): void {
    if (this.#tail === '' || BLANK_LINE_AT_END.test(this.#tail)) this.push(COMMENT)
    this.#timer.refresh()
  }
}
