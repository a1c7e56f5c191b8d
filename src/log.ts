/**
 * The process logger: pino JSON, one line per event. Secrets never reach it: credential
 * headers are censored wherever they appear, and credential-bearing query parameters are
 * masked in every logged URL (MCPA-62: never log token values).
 *
 * Two lines are written on every MCP call at level info (the access line and the policy's
 * audit event), so they are built by hand from fields that cannot hold a secret, without
 * pino's redaction pass, and standard output is written in batches: a profile once put a
 * third of the gateway's CPU per call in logging; now info costs what warn does (README, Benchmark).
 */
import { pino, type Bindings, type ChildLoggerOptions, type DestinationStream, type Level, type Logger, type LoggerOptions } from 'pino'

const CENSORED = '[redacted]'
const SECRET_QUERY_PARAMS = /([?&](?:access_token|refresh_token|id_token|token|code|code_verifier|client_secret|client_assertion|assertion|state|password)=)[^&#]*/gi

export function redactUrl(url: string): string {
  return url.includes('?') ? url.replace(SECRET_QUERY_PARAMS, `$1${CENSORED}`) : url
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["proxy-authorization"]',
        'req.headers.cookie',
        'res.headers["set-cookie"]',
        'headers.authorization',
        'headers.cookie',
        '*.client_secret',
        // Token exchange toward the upstream (UPS-03): never logged today; censored should anyone try.
        '*.clientSecret',
        '*.subject_token',
        '*.refresh_token',
        '*.access_token',
        '*.password',
      ],
      censor: CENSORED,
    },
    serializers: {
      req: (req: { method: string; url: string; ip?: string; socket?: { remoteAddress?: string } }) => ({
        method: req.method,
        url: redactUrl(req.url),
        remoteAddress: req.ip ?? req.socket?.remoteAddress,
      }),
    },
  }
}

/** Default destination: standard output (fd 1), batched. Commands pass their io's writers instead. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(loggerOptions(level), destination ?? batchedStdout())
}

/** Longest a line waits in the batch, and the batch size that is written at once. */
const BATCH_MS = 50
const BATCH_BYTES = 16 * 1024

/**
 * Standard output in batches: lines collect for at most BATCH_MS (or until BATCH_BYTES) and go
 * out in one write, instead of one write per line (the cost was the write per line, not its
 * being synchronous). Each batch is written synchronously, so the order of lines always holds
 * and `flushLog` can put a line out at once. Nothing is lost when the process exits, throws or
 * is told to stop; a process killed outright (SIGKILL, OOM) loses at most the last BATCH_MS of
 * lines that were not flushed at once. No timer runs while nothing is logged.
 */
function batchedStdout(): BatchedStream {
  const out = pino.destination({ dest: 1, sync: true })
  let pending = ''
  let timer: NodeJS.Timeout | undefined
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    if (pending === '') return
    out.write(pending)
    pending = ''
  }
  const flushSync = () => {
    flush()
    out.flushSync()
  }
  // Before pino ends the stream at a natural end (beforeExit), and synchronously on exit; a
  // stream that is already gone (a closed stdout) has nothing left to write to.
  process.on('beforeExit', flush)
  process.once('exit', () => {
    try {
      flushSync()
    } catch {
      // nowhere to write
    }
  })
  return {
    write(line: string) {
      pending += line
      if (pending.length >= BATCH_BYTES) flush()
      else if (timer === undefined) timer = setTimeout(flush, BATCH_MS).unref()
    },
    flushSync,
    [BATCHED]: true,
  }
}

const BATCHED = Symbol('gatehouse.batchedStdout')
type BatchedStream = DestinationStream & { flushSync(): void; [BATCHED]: true }

/**
 * Writes out what the logger's batch holds, now: for lines that must not wait in memory (audit
 * events other than the per-call decision, which a SIGKILL must not take with it). A no-op for
 * other destinations, which write each line as it comes.
 */
export function flushLog(logger: Logger): void {
  const stream = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym] as Partial<BatchedStream> | undefined
  if (stream?.[BATCHED]) stream.flushSync!()
}

/**
 * Writes one info line `{"level":30,"time":…,<fields>,"msg":…}` as pino would, without its
 * serializers and redaction: only for fields that cannot hold a secret by construction.
 * Returns false (and writes nothing) when info is not enabled.
 */
export function writeInfoLine(logger: Logger, fields: string, msg: string): boolean {
  if (!logger.isLevelEnabled('info')) return false
  const stream = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]!
  stream.write(`{"level":30,"time":"${isoNow()}",${fields === '' ? '' : `${fields},`}"msg":${JSON.stringify(msg)}}\n`)
  return true
}

let isoSecond = -1
let isoPrefix = ''

/**
 * The time as pino's isoTime writes it (`2026-12-07T05:20:33.123Z`): the date and second are
 * formatted once per second and the milliseconds appended, as every MCP call writes two lines.
 */
function isoNow(): string {
  const now = Date.now()
  const second = Math.floor(now / 1000)
  if (second !== isoSecond) {
    isoSecond = second
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20)
  }
  const millis = now - second * 1000
  return `${isoPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`
}

/** Printable ASCII without `"` and `\`: such a string is its own JSON body. */
const PLAIN_JSON = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

/** A string as JSON; most need no escaping and are quoted without JSON.stringify (twice as fast per line). */
export function jsonString(value: string): string {
  return PLAIN_JSON.test(value) ? `"${value}"` : JSON.stringify(value)
}

/** A value as JSON, as JSON.stringify writes it. */
export function jsonValue(value: unknown): string {
  return typeof value === 'string' ? jsonString(value) : JSON.stringify(value)
}

export interface AccessFields {
  reqId: string
  method: string
  url: string
  remoteAddress: string | undefined
  statusCode: number
  responseTime: number
}

/** The access line of one request (README, Operations): the same members Fastify's request log had. */
export function writeAccessLine(logger: Logger, f: AccessFields): void {
  const address = f.remoteAddress === undefined ? '' : `,"remoteAddress":${jsonString(f.remoteAddress)}`
  writeInfoLine(
    logger,
    `"reqId":${jsonString(f.reqId)},"req":{"method":${jsonString(f.method)},"url":${jsonString(redactUrl(f.url))}${address}},` +
      `"res":{"statusCode":${f.statusCode}},"responseTime":${f.responseTime}`,
    'request completed',
  )
}

type LevelMethod = (...args: unknown[]) => void

/**
 * A request's `request.log`, made into a pino child only when something first logs through it:
 * a child of this logger (redaction, serializers) takes about 2 µs to make, and an MCP call that
 * goes well logs nothing through it (its access line and decision are written by hand, above).
 * Fastify's `childLoggerFactory`; a route with a level of its own gets its child at once.
 */
export function requestLogger(parent: Logger, bindings: Bindings, options: ChildLoggerOptions): Logger {
  if (options.level !== undefined || options.serializers !== undefined) return parent.child(bindings, options)
  return new RequestLog(parent, bindings) as unknown as Logger
}

class RequestLog {
  #child: Logger | undefined

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
  ) {}

  get level(): string {
    return this.#child?.level ?? this.parent.level
  }

  set level(level: string) {
    this.#log().level = level
  }

  isLevelEnabled(level: string): boolean {
    return (this.#child ?? this.parent).isLevelEnabled(level)
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): Logger {
    return this.#log().child(bindings, options)
  }

  fatal(...args: unknown[]): void {
    this.#write('fatal', args)
  }

  error(...args: unknown[]): void {
    this.#write('error', args)
  }

  warn(...args: unknown[]): void {
    this.#write('warn', args)
  }

  info(...args: unknown[]): void {
    this.#write('info', args)
  }

  debug(...args: unknown[]): void {
    this.#write('debug', args)
  }

  trace(...args: unknown[]): void {
    this.#write('trace', args)
  }

  silent(): void {}

  #write(level: Level, args: unknown[]) {
    if (this.#child === undefined && !this.parent.isLevelEnabled(level)) return
    ;(this.#log()[level] as LevelMethod).apply(this.#child, args)
  }

  #log(): Logger {
    return (this.#child ??= this.parent.child(this.bindings))
  }
}
