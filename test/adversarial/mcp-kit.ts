/**
 * Shared parts of the MCP red-team suites (test/adversarial/mcp-*.test.ts): an echo upstream
 * that records exactly what reached it, a raw-socket client for requests fetch() will not send,
 * and a gateway with a deny rule, a step-up rule, list filtering and identity headers.
 */
import { connect } from 'node:net'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'

export interface Seen {
  method: string
  url: string
  /** Lower-cased names, repeated headers joined with ', '. */
  headers: Record<string, string>
  rawHeaders: string[]
  body: Buffer
}

export type EchoHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

/** Tools the echo upstream lists: one allowed, one denied, one that needs the admin scope. */
export const LISTED_TOOLS = [{ name: 'echo' }, { name: 'delete_file' }, { name: 'admin_reset' }]

/** Answers every JSON-RPC request with its own message as the result (lists with LISTED_TOOLS). */
export function echoAnswer(message: unknown): unknown {
  const m = message as { id?: unknown; method?: unknown }
  if (m === null || typeof m !== 'object' || m.id === undefined || m.method === undefined) return undefined
  if (m.method === 'tools/list') return { jsonrpc: '2.0', id: m.id, result: { tools: LISTED_TOOLS } }
  return { jsonrpc: '2.0', id: m.id, result: { echoed: m } }
}

const defaultHandler: EchoHandler = (_req, res, body) => {
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch {
    res.writeHead(400, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}')
    return
  }
  const answer = Array.isArray(parsed) ? parsed.map(echoAnswer).filter(Boolean) : echoAnswer(parsed)
  if (answer === undefined || (Array.isArray(answer) && answer.length === 0)) {
    res.writeHead(202).end()
    return
  }
  let text: string
  try {
    text = JSON.stringify(answer)
  } catch {
    text = '{"jsonrpc":"2.0","id":1,"result":{"tooDeep":true}}'
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(text)
}

export async function echoUpstream(t: Test, handler: EchoHandler = defaultHandler) {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const headers: Record<string, string> = {}
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i]!.toLowerCase()
        headers[name] = name in headers ? `${headers[name]}, ${req.rawHeaders[i + 1]}` : req.rawHeaders[i + 1]!
      }
      const body = Buffer.concat(chunks)
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers, rawHeaders: [...req.rawHeaders], body })
      handler(req, res, body)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, seen, server }
}

export const POLICY = {
  filterLists: true,
  rules: [
    { id: 'no-deletes', method: 'tools/call', name: 'delete_*', action: 'deny' },
    { id: 'admin-tools', method: 'tools/call', name: 'admin_*', scopes: ['mcp', 'admin'] },
    { id: 'no-secrets', method: 'resources/read', name: 'file:///secrets/*', action: 'deny' },
  ],
}
export const IDENTITY = { subject: 'X-User', clientId: 'X-Client', scope: 'X-Scope' }

export async function redTeamGateway(t: Test, upstream: string, extra: Record<string, unknown> = {}): Promise<TestGateway> {
  return startTestGateway(t, {
    resources: [{ upstream, policy: POLICY, identityHeaders: IDENTITY, allowedOrigins: ['https://app.example.com'], ...extra }],
  })
}

/** A JSON-RPC tools/call. */
export function call(name: unknown, id: unknown = 1, extra: Record<string, unknown> = {}) {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} }, ...extra }
}

export interface RawAnswer {
  status: number
  head: string
  body: string
  /** Everything the server wrote before closing or the timeout. */
  all: string
}

/**
 * Writes exact bytes on a fresh connection and reads the first response (or whatever arrived
 * before the server closed the connection or `waitMs` passed).
 */
export async function rawRequest(origin: string, bytes: string | Buffer, waitMs = 1500): Promise<RawAnswer> {
  const { hostname, port } = new URL(origin)
  const socket = connect(Number(port), hostname)
  const received: Buffer[] = []
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy()
      resolve()
    }, waitMs)
    socket.on('data', (c: Buffer) => {
      received.push(c)
      const text = Buffer.concat(received).toString('latin1')
      const headEnd = text.indexOf('\r\n\r\n')
      if (headEnd !== -1) {
        const head = text.slice(0, headEnd)
        const len = /\r\ncontent-length:\s*(\d+)/i.exec(head)
        const chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head)
        // A complete answer ends the wait: its whole Content-Length, or the last chunk.
        if ((len && text.length >= headEnd + 4 + Number(len[1])) || (chunked && text.endsWith('\r\n0\r\n\r\n'))) {
          clearTimeout(timer)
          socket.destroy()
          resolve()
        }
      }
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve()
    })
    socket.on('error', () => {})
    socket.write(bytes)
  })
  const all = Buffer.concat(received).toString('latin1')
  const headEnd = all.indexOf('\r\n\r\n')
  const head = headEnd === -1 ? all : all.slice(0, headEnd)
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(all)?.[1] ?? 0), head, body: headEnd === -1 ? '' : all.slice(headEnd + 4), all }
}

/** A POST to the MCP path as raw bytes; `headers` are full lines without CRLF. */
export function rawPost(origin: string, token: string, headers: string[], body: string | Buffer): Buffer {
  const host = new URL(origin).host
  const head = [`POST /mcp HTTP/1.1`, `Host: ${host}`, `Authorization: Bearer ${token}`, 'Accept: application/json, text/event-stream', ...headers]
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')])
}

export function jsonOf(text: string): Record<string, unknown> {
  return JSON.parse(text) as Record<string, unknown>
}
