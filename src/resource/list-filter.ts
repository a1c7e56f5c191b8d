/**
 * Optional narrowing of list results (tools/list, resources/list, prompts/list) to what the
 * token may call. Only answers to list requests are touched: a JSON answer (one message or a
 * 2025-03-26 batch) is read whole (it is a list, and bounded), an SSE answer is rewritten event
 * by event as it streams, and every other message passes through unchanged.
 */
import { Transform, type Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import { BadGatewayError } from '../errors.js'
import type { JsonRpcId } from './jsonrpc.js'

/** One kind of list: where its items are in the result, and which key names the call each stands for. */
export interface ListKind {
  field: 'tools' | 'resources' | 'prompts'
  key: 'name' | 'uri'
  call: string
}

export interface ListFilter {
  /**
   * Ids of the list requests whose answers are filtered; undefined: every answer (a resumed GET
   * stream replays answers to requests this exchange never saw). Every kind of list in such an
   * answer is filtered, so two requests sharing an id cannot shield one another.
   */
  ids: ReadonlySet<JsonRpcId> | undefined
  kinds: readonly ListKind[]
  keep: (call: string, key: string) => boolean
}

/** A list answer larger than this is refused (502) rather than held in memory or passed on unfiltered. */
const MAX_JSON_BYTES = 8 * 1024 * 1024

type Message = { id?: unknown; result?: Record<string, unknown> }

function filterOne(message: Message, filter: ListFilter): Message | undefined {
  const result = message?.result
  if (result === null || typeof result !== 'object' || (filter.ids !== undefined && !filter.ids.has(message.id as JsonRpcId))) return undefined
  let changed: Record<string, unknown> | undefined
  for (const { field, key, call } of filter.kinds) {
    const items = result[field]
    if (!Array.isArray(items)) continue
    const kept = items.filter((item: Record<string, unknown>) => typeof item?.[key] === 'string' && filter.keep(call, item[key] as string))
    changed = { ...(changed ?? result), [field]: kept }
  }
  return changed && { ...message, result: changed }
}

/** Rewrites a JSON-RPC message or batch if it answers a list request; otherwise returns undefined. */
export function filterMessage(text: string, filter: ListFilter): string | undefined {
  let parsed: Message | Message[]
  try {
    parsed = JSON.parse(text) as Message | Message[]
  } catch {
    return undefined
  }
  if (!Array.isArray(parsed)) {
    const one = filterOne(parsed, filter)
    return one && JSON.stringify(one)
  }
  const rewritten = parsed.map((m) => filterOne(m, filter))
  return rewritten.some(Boolean) ? JSON.stringify(rewritten.map((m, i) => m ?? parsed[i])) : undefined
}

/**
 * The list answer exceeds MAX_JSON_BYTES; other errors from filterJson are the upstream stream's
 * own. A 502 of itself, so an SSE stream failing before its first byte is answered as one.
 */
export class ListTooLargeError extends BadGatewayError {
  override readonly name = 'ListTooLargeError'
  constructor(detail: string) {
    super('the MCP server sent a list too large to filter', { detail })
  }
}

export async function filterJson(stream: Readable, filter: ListFilter): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    size += (chunk as Buffer).length
    chunks.push(chunk as Buffer)
    if (size > MAX_JSON_BYTES) break
  }
  const body = Buffer.concat(chunks)
  if (size > MAX_JSON_BYTES) throw new ListTooLargeError('list answer too large to filter')
  const rewritten = filterMessage(body.toString('utf8'), filter)
  return rewritten === undefined ? body : Buffer.from(rewritten)
}

/**
 * SSE events end at a blank line; lines end in CRLF, LF or a lone CR (WHATWG SSE §9.2.5), so
 * line ends are normalized to LF first. Only `data:` lines of a matching event are rewritten.
 * An event growing past MAX_JSON_BYTES fails the stream (it cannot be filtered, nor held).
 */
export function filterSse(filter: ListFilter): Transform {
  let pending = ''
  /** How far `pending` has been searched for a blank line. */
  let searched = 0
  /** A CR ending the last chunk may be the first half of a CRLF. */
  let heldCr = false
  // A multi-byte character may straddle two chunks.
  const decoder = new StringDecoder('utf8')
  const rewriteEvent = (event: string): string => {
    const lines = event.split('\n')
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5))
    if (data.length === 0) return event
    const rewritten = filterMessage(data.join('\n'), filter)
    if (rewritten === undefined) return event
    return [...lines.filter((l) => !l.startsWith('data:')), `data: ${rewritten}`].filter(Boolean).join('\n')
  }
  const normalize = (text: string): string => {
    let t = (heldCr ? '\r' : '') + text
    heldCr = t.endsWith('\r')
    if (heldCr) t = t.slice(0, -1)
    return t.replace(/\r\n?/g, '\n')
  }
  /** The complete events in `pending`, rewritten; `pending` keeps the rest. */
  const drain = (): string => {
    let out = ''
    let end: number
    while ((end = pending.indexOf('\n\n', Math.max(0, searched - 1))) !== -1) {
      out += `${rewriteEvent(pending.slice(0, end))}\n\n`
      pending = pending.slice(end + 2)
      searched = 0
    }
    searched = pending.length
    return out
  }
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      pending += normalize(decoder.write(chunk))
      const out = drain()
      if (pending.length > MAX_JSON_BYTES) return done(new ListTooLargeError('SSE event too large to filter'))
      done(null, out)
    },
    flush(done) {
      pending += normalize(decoder.end()) + (heldCr ? '\n' : '')
      const out = drain()
      // An event the stream ended inside: filtered like any other, never passed on raw.
      done(null, pending === '' ? out : out + rewriteEvent(pending))
    },
  })
}
