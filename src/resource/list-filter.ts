/**
 * Optional narrowing of list results (tools/list, resources/list, prompts/list) to what the
 * token may call. Only the answer to a list request is touched: a JSON answer is read whole
 * (it is a list, and bounded), an SSE answer is rewritten event by event as it streams, and
 * every other event passes through unchanged.
 */
import { Transform, type Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import type { JsonRpcId } from './jsonrpc.js'

export interface ListFilter {
  id: JsonRpcId
  field: 'tools' | 'resources' | 'prompts'
  key: 'name' | 'uri'
  keep: (key: string) => boolean
}

/** A list answer larger than this is refused (502) rather than held in memory or passed on unfiltered. */
const MAX_JSON_BYTES = 8 * 1024 * 1024

/** Rewrites one JSON-RPC message if it is the answer to the list request; otherwise returns undefined. */
export function filterMessage(text: string, filter: ListFilter): string | undefined {
  let message: { id?: unknown; result?: Record<string, unknown> }
  try {
    message = JSON.parse(text) as typeof message
  } catch {
    return undefined
  }
  const items = message?.result?.[filter.field]
  if (message.id !== filter.id || !Array.isArray(items)) return undefined
  const kept = items.filter((item: Record<string, unknown>) => typeof item?.[filter.key] === 'string' && filter.keep(item[filter.key] as string))
  return JSON.stringify({ ...message, result: { ...message.result, [filter.field]: kept } })
}

/** The list answer exceeds MAX_JSON_BYTES; other errors from filterJson are the upstream stream's own. */
export class ListTooLargeError extends Error {
  override readonly name = 'ListTooLargeError'
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

/** SSE events end at a blank line; only `data:` lines of the matching event are rewritten. */
export function filterSse(filter: ListFilter): Transform {
  let pending = ''
  // A multi-byte character may straddle two chunks.
  const decoder = new StringDecoder('utf8')
  const rewriteEvent = (event: string): string => {
    const lines = event.split(/\r?\n/)
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5))
    if (data.length === 0) return event
    const rewritten = filterMessage(data.join('\n'), filter)
    if (rewritten === undefined) return event
    return [...lines.filter((l) => !l.startsWith('data:')), `data: ${rewritten}`].filter(Boolean).join('\n')
  }
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      pending += decoder.write(chunk)
      let out = ''
      let end: RegExpExecArray | null
      while ((end = /\r?\n\r?\n/.exec(pending))) {
        out += `${rewriteEvent(pending.slice(0, end.index))}\n\n`
        pending = pending.slice(end.index + end[0].length)
      }
      done(null, out)
    },
    flush(done) {
      done(null, pending + decoder.end())
    },
  })
}
