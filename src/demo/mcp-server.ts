/**
 * The small demo MCP server bundled with Gatehouse, so `gatehouse serve` has something to
 * protect with nothing else installed. Streamable HTTP (MCP SDK 1.x) on plain node:http,
 * stateful sessions, SSE responses. It has no authentication of its own: it is meant to be
 * reached only through the gateway, on a loopback address.
 *
 * Surface: tools `echo`, `add`, `whoami` (shows the identity headers the gateway forwarded),
 * resource `gatehouse://demo/about`, prompt `greeting`.
 *
 * Built on the low-level `Server` with plain JSON Schemas so that it needs nothing beyond the
 * SDK itself.
 *
 * Longer than 300 lines because it is read as the example of a complete MCP server: one file
 * from transport to tools, nothing to chase.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import {
  CallToolRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  isInitializeRequest,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  type CallToolResult,
} from '@modelcontextprotocol/sdk/types.js'

export interface DemoMcpServerOptions {
  /** Interface to bind; default 127.0.0.1. */
  host?: string
  /** Port; default 0 (any free port). */
  port?: number
}

export interface DemoMcpServer {
  /** The MCP endpoint, e.g. http://127.0.0.1:PORT/mcp */
  url: string
  /** Ends every open stream and session and stops listening. */
  close(): Promise<void>
}

const MCP_PATH = '/mcp'
const ABOUT_URI = 'gatehouse://demo/about'
/** Identity headers the gateway adds to proxied requests. */
const IDENTITY_HEADERS = ['x-gatehouse-subject', 'x-gatehouse-client-id', 'x-gatehouse-scope'] as const
/** Bodies larger than this are refused before parsing. */
const MAX_BODY_BYTES = 1024 * 1024
/** Sessions unused for this long are closed (clients rarely send DELETE). */
const SESSION_IDLE_MS = 30 * 60 * 1000
const MAX_SESSIONS = 1000

const ABOUT_TEXT = `This is the Gatehouse demo MCP server.

It has no authentication of its own. Gatehouse sits in front of it, checks the OAuth access
token on every request, and forwards the request here with the token removed and the caller's
identity in x-gatehouse-subject, x-gatehouse-client-id and x-gatehouse-scope.
Call the whoami tool to see them.`

const TOOLS = [
  {
    name: 'echo',
    title: 'Echo',
    description: 'Returns the text it was given.',
    inputSchema: {
      type: 'object' as const,
      properties: { text: { type: 'string', description: 'Text to echo back' } },
      required: ['text'],
      additionalProperties: false,
    },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  {
    name: 'add',
    title: 'Add',
    description: 'Adds two numbers.',
    inputSchema: {
      type: 'object' as const,
      properties: { a: { type: 'number' }, b: { type: 'number' } },
      required: ['a', 'b'],
      additionalProperties: false,
    },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
  {
    name: 'whoami',
    title: 'Who am I',
    description: 'Shows the identity the gateway forwarded with this request.',
    inputSchema: { type: 'object' as const, properties: {}, additionalProperties: false },
    annotations: { readOnlyHint: true, openWorldHint: false },
  },
]

function text(value: string, isError = false): CallToolResult {
  return { content: [{ type: 'text', text: value }], ...(isError ? { isError: true } : {}) }
}

/**
 * A JSON-RPC error for the response. (McpError would prefix its own "MCP error N:" to the
 * message, which the client then prefixes again.)
 */
function invalidParams(message: string): Error {
  return Object.assign(new Error(message), { code: ErrorCode.InvalidParams })
}

function headerValue(headers: Record<string, string | string[] | undefined> | undefined, name: string) {
  const v = headers?.[name]
  return Array.isArray(v) ? v.join(', ') : v
}

function buildServer(): Server {
  const server = new Server(
    { name: 'gatehouse-demo', title: 'Gatehouse demo server', version: '1.0.0' },
    {
      capabilities: { tools: {}, resources: {}, prompts: {} },
      instructions: 'A demo server behind Gatehouse. Try the whoami tool to see the identity the gateway forwards.',
    },
  )

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }))

  server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
    const args = request.params.arguments ?? {}
    switch (request.params.name) {
      case 'echo':
        if (typeof args['text'] !== 'string') return text('echo: "text" must be a string', true)
        return text(args['text'])
      case 'add': {
        const { a, b } = args
        if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b)) {
          return text('add: "a" and "b" must be numbers', true)
        }
        const sum = a + b
        return { ...text(String(sum)), structuredContent: { sum } }
      }
      case 'whoami': {
        const headers = extra.requestInfo?.headers
        const identity: Record<string, string | null> = {}
        for (const name of IDENTITY_HEADERS) identity[name] = headerValue(headers, name) ?? null
        const report = {
          ...identity,
          // Gatehouse never forwards the client's access token; this shows it did not arrive.
          authorizationHeaderReceived: headerValue(headers, 'authorization') !== undefined,
        }
        return { ...text(JSON.stringify(report, null, 2)), structuredContent: report }
      }
      default:
        throw invalidParams(`Unknown tool: ${request.params.name}`)
    }
  })

  server.setRequestHandler(ListResourcesRequestSchema, () => ({
    resources: [
      {
        uri: ABOUT_URI,
        name: 'about',
        title: 'About this demo',
        description: 'What this server is and how Gatehouse talks to it',
        mimeType: 'text/plain',
      },
    ],
  }))

  server.setRequestHandler(ReadResourceRequestSchema, (request) => {
    if (request.params.uri !== ABOUT_URI) {
      throw invalidParams(`Unknown resource: ${request.params.uri}`)
    }
    return { contents: [{ uri: ABOUT_URI, mimeType: 'text/plain', text: ABOUT_TEXT }] }
  })

  server.setRequestHandler(ListPromptsRequestSchema, () => ({
    prompts: [
      {
        name: 'greeting',
        title: 'Greeting',
        description: 'Asks the model to greet someone',
        arguments: [{ name: 'name', description: 'Who to greet', required: false }],
      },
    ],
  }))

  server.setRequestHandler(GetPromptRequestSchema, (request) => {
    if (request.params.name !== 'greeting') {
      throw invalidParams(`Unknown prompt: ${request.params.name}`)
    }
    const name = request.params.arguments?.['name'] || 'there'
    return {
      description: 'A friendly greeting',
      messages: [{ role: 'user', content: { type: 'text', text: `Please greet ${name} warmly in one sentence.` } }],
    }
  })

  return server
}

interface Session {
  server: Server
  transport: StreamableHTTPServerTransport
  lastSeen: number
}

function sendJsonRpcError(res: ServerResponse, status: number, code: number, message: string, headers = {}): void {
  if (res.headersSent) {
    res.end()
    return
  }
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }))
}

/** Reads the body up to MAX_BODY_BYTES; undefined when it is larger. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) return undefined
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) return undefined
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export async function startDemoMcpServer({ host = '127.0.0.1', port = 0 }: DemoMcpServerOptions = {}): Promise<DemoMcpServer> {
  const sessions = new Map<string, Session>()
  /** Sessions whose initialize is still in flight (not yet in `sessions`). */
  const pending = new Set<Session>()
  let closing = false

  async function closeSession(session: Session): Promise<void> {
    // transport.close() ends the session's SSE streams and fires onclose (which unregisters it).
    await session.transport.close().catch(() => {})
    await session.server.close().catch(() => {})
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost')
    if (pathname !== MCP_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found. The MCP endpoint is /mcp.\n')
      return
    }
    if (closing) {
      sendJsonRpcError(res, 503, -32000, 'Server is shutting down')
      return
    }

    let parsedBody: unknown
    if (req.method === 'POST') {
      const body = await readBody(req)
      if (body === undefined) {
        sendJsonRpcError(res, 413, -32000, `Request body exceeds ${MAX_BODY_BYTES} bytes`)
        return
      }
      try {
        parsedBody = JSON.parse(body)
      } catch {
        sendJsonRpcError(res, 400, -32700, 'Parse error: Invalid JSON')
        return
      }
    }

    const sessionId = req.headers['mcp-session-id']
    if (typeof sessionId === 'string') {
      const session = sessions.get(sessionId)
      if (!session) {
        sendJsonRpcError(res, 404, -32001, 'Session not found')
        return
      }
      session.lastSeen = Date.now()
      await session.transport.handleRequest(req, res, parsedBody)
      return
    }

    if (req.method === 'POST' && isInitializeRequest(parsedBody)) {
      if (sessions.size + pending.size >= MAX_SESSIONS) {
        sendJsonRpcError(res, 503, -32000, 'Too many sessions')
        return
      }
      const server = buildServer()
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          pending.delete(session)
          sessions.set(id, session)
        },
      })
      const session: Session = { server, transport, lastSeen: Date.now() }
      pending.add(session)
      transport.onclose = () => {
        pending.delete(session)
        if (transport.sessionId) sessions.delete(transport.sessionId)
      }
      await server.connect(transport)
      await transport.handleRequest(req, res, parsedBody)
      // An initialize that failed before a session id was issued leaves nothing to keep.
      if (transport.sessionId === undefined) {
        pending.delete(session)
        void closeSession(session)
      }
      return
    }

    if (req.method === 'POST') {
      sendJsonRpcError(res, 400, -32000, 'Bad Request: send initialize first, or include the Mcp-Session-Id header')
    } else if (req.method === 'GET' || req.method === 'DELETE') {
      sendJsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required')
    } else {
      sendJsonRpcError(res, 405, -32000, 'Method not allowed.', { allow: 'GET, POST, DELETE' })
    }
  }

  const httpServer = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJsonRpcError(res, 500, -32603, 'Internal error')
      else res.destroy()
    })
  })

  const sweeper = setInterval(() => {
    const cutoff = Date.now() - SESSION_IDLE_MS
    for (const session of sessions.values()) {
      if (session.lastSeen < cutoff) void closeSession(session)
    }
  }, 60_000)
  sweeper.unref()

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject)
    httpServer.listen(port, host, () => {
      httpServer.off('error', reject)
      resolve()
    })
  })

  const address = httpServer.address() as AddressInfo
  // A wildcard bind is reachable on loopback; advertise that rather than 0.0.0.0 / ::.
  const reachable = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address
  const urlHost = reachable.includes(':') ? `[${reachable}]` : reachable
  const url = `http://${urlHost}:${address.port}${MCP_PATH}`

  let closed: Promise<void> | undefined
  return {
    url,
    close() {
      closed ??= (async () => {
        closing = true
        clearInterval(sweeper)
        const all = [...sessions.values(), ...pending]
        sessions.clear()
        pending.clear()
        await Promise.all(all.map(closeSession))
        await new Promise<void>((resolve) => {
          httpServer.close(() => resolve())
          // Open SSE responses were ended above; this drops idle keep-alive sockets too.
          httpServer.closeAllConnections()
        })
      })()
      return closed
    },
  }
}
