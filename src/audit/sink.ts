/**
 * Where audit events are written (config `audit.sink`), one JSON line per event in the stable
 * schema of docs/audit-events.md:
 *
 *   {"time":"2026-…Z","audit":"token.issued", …the event's fields…, "requestId":"…", "address":"…"}
 *
 * `audit` carries the event type (and marks the line as an audit event in a mixed log).
 * - log: into the main logger at info level (with pino's `level`, `time` and a `msg`), so audit
 *   follows log.level and lands in the same stream as the access log; written out at once,
 *   except the per-call `mcp.decision`, which is batched as the access log is (log.ts).
 * - stdout: a logger of its own on standard output, written whatever log.level says.
 * - file: a logger of its own appending to `audit.file`; `reopen()` (SIGHUP) opens the path again
 *   so logrotate can move the old file away.
 * The stdout and file sinks write synchronously: an audit line is not lost in a buffer when the
 * process dies.
 * Events carry no secrets by construction (events.ts); the log sink also gets the main
 * logger's redaction.
 */
import { pino, type DestinationStream, type Logger } from 'pino'
import type { AuditConfig } from '../config/operations-schema.js'
import { flushLog, jsonString, jsonValue, writeInfoLine } from '../log.js'
import type { AuditContext, AuditEvent, AuditListener } from './events.js'

export interface AuditSink {
  write: AuditListener
  /** Opens the file again (sink: file), for log rotation. */
  reopen(): void
  /** Flushes and releases the file. */
  close(): void
}

export class AuditSinkError extends Error {
  override readonly name = 'AuditSinkError'
}

export interface SinkStreams {
  /** The stream of sink: stdout; the command line tool writes its events to stderr instead. */
  stdout?: DestinationStream
}

export function createAuditSink(config: AuditConfig, mainLog: Logger, streams: SinkStreams = {}): AuditSink {
  if (config.sink === 'log') {
    // Built by hand (one per MCP call at info): events hold no secrets by construction. Tool
    // arguments (auditArguments) are caller text, so they keep the main logger's redaction.
    const write: AuditListener = (event, context) => {
      if ('arguments' in event) mainLog.info(line(event, context), 'audit')
      else writeInfoLine(mainLog, members(event, context), 'audit')
      // The main log is written in batches; a security event goes out at once, so a process
      // killed outright cannot take it along. Only the per-call decision (two lines per MCP
      // call with the access line) waits for its batch.
      if (event.type !== 'mcp.decision') flushLog(mainLog)
    }
    return { write, reopen() {}, close() {} }
  }
  let destination: ReturnType<typeof pino.destination> | undefined
  let stream: DestinationStream
  if (config.sink === 'file') {
    const file = config.file
    if (file === undefined) throw new AuditSinkError('audit.file is required with sink: file')
    try {
      destination = pino.destination({ dest: file, append: true, sync: true, mkdir: true })
    } catch (err) {
      throw new AuditSinkError(`cannot open the audit file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err })
    }
    stream = destination
  } else {
    stream = streams.stdout ?? pino.destination({ dest: 1, sync: true })
  }
  return {
    // No level and no message: every line is an audit event; `time` and the event are the record.
    write: (event, context) => stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...line(event, context) })}\n`),
    reopen: () => destination?.reopen(),
    close: () => {
      if (destination) {
        destination.flushSync()
        destination.end()
      }
    },
  }
}

/** line()'s members as JSON, written without building it (the log sink writes one per MCP call). */
function members(event: AuditEvent, context: AuditContext): string {
  let out = `"audit":${jsonString(event.type)}`
  for (const key in event) {
    const value = (event as Record<string, unknown>)[key]
    if (key !== 'type' && value !== undefined) out += `,${jsonString(key)}:${jsonValue(value)}`
  }
  if (context.requestId !== undefined) out += `,"requestId":${jsonString(context.requestId)}`
  if (context.address !== undefined) out += `,"address":${jsonString(context.address)}`
  return out
}

/** The event as logged: its type under `audit`, its fields, then where it happened. */
function line(event: AuditEvent, context: AuditContext): Record<string, unknown> {
  const { type, ...fields } = event
  return {
    audit: type,
    ...fields,
    ...(context.requestId !== undefined && { requestId: context.requestId }),
    ...(context.address !== undefined && { address: context.address }),
  }
}
