/**
 * How a checked request travels to the upstream MCP server and how its answer comes back:
 * the @fastify/reply-from options for one resource.
 *
 * Upstream-bound headers: the client's token, Gatehouse's cookies, hop-by-hop headers and any
 * inbound copy of an identity or forwarding header are removed (MCPA-60, BCP-13); identity
 * travels only in the configured headers. Responses stream through untouched, except that SSE
 * is marked unbufferable (MCPT-16) and Gatehouse's own cookie names cannot be set upstream.
 */
import type { FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import { pipeline, type Readable } from 'node:stream'
import type { Resource } from '../config/load.js'
import { BadGatewayError, GatewayTimeoutError, TemporarilyUnavailableError } from '../errors.js'
import { withoutGatehouseCookies } from '../http/cookies.js'
import { DROPPED_REQUEST_HEADERS, DROPPED_RESPONSE_HEADERS, GUARDED_REQUEST_HEADERS, headerSafe, scopeHeader, setsGatehouseCookie } from './upstream-headers.js'
import { upstreamFailure } from '../metrics/upstream-hop.js'
import type { JsonRpcId } from './jsonrpc.js'
import { filterJson, filterSse, ListTooLargeError, type ListFilter, type ListKind } from './list-filter.js'
import { SseKeepAlive } from './sse-keep-alive.js'
import type { McpRequest } from './mcp-request.js'
import { LIST_METHODS } from './policy-step.js'
import type { Principal } from './principal.js'
import type { SessionBindings } from './sessions.js'
import type { UpstreamBody } from './upstream-client.js'
import type { UpstreamCredential } from './upstream-credentials.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
    /** What upstreamAuth presents to the upstream for this call (upstream-credentials.ts). */
    upstreamCredential?: UpstreamCredential | undefined
  }
}

const LIST_KINDS: readonly ListKind[] = Object.values(LIST_METHODS)
const DROPPED_RESPONSE: ReadonlySet<string> = new Set(DROPPED_RESPONSE_HEADERS)

export interface UpstreamDeps {
  resource: Resource
  sessions: SessionBindings
  publicUrl: string
  /**
   * Called for every notification stream (a GET stream, a subscriptions/listen answer), which
   * never ends by itself, so shutdown can end it: the upstream body and the client response.
   */
  trackStream: (upstreamBody: Readable, client: ServerResponse) => void
  /** Whether a principal may call a listed item; used when the resource filters lists. */
  mayCall: (principal: Principal, method: string, name: string) => boolean
}

type ReplyOptions = Required<NonNullable<FastifyHttpProxyOptions['replyOptions']>>
type Hook<K extends keyof ReplyOptions> = ReplyOptions[K]

/** What reply-from hands to onResponse (its type declaration says otherwise): an UpstreamClient's answer. */
interface UpstreamResponse {
  statusCode: number
  headers: IncomingHttpHeaders
  stream: UpstreamBody
}

export function upstreamReplyOptions({ resource, sessions, publicUrl, trackStream, mayCall }: UpstreamDeps) {
  const identity = resource.identityHeaders
  // An inbound copy of the upstream secret's header is a forgery attempt: dropped like identity.
  const identityNames = [...Object.values(identity), ...(resource.upstreamAuth?.header ? [resource.upstreamAuth.header.name] : [])].map((h) => h.toLowerCase())
  const guarded = new Set([...GUARDED_REQUEST_HEADERS, ...identityNames])
  const forwardedProto = new URL(publicUrl).protocol.slice(0, -1)
  const forwardedHost = new URL(publicUrl).host
  const dropped = new Set([...DROPPED_REQUEST_HEADERS, ...identityNames])

  // Headers (both ways) go into a new object rather than being deleted from reply-from's copy:
  // one pass, and the object keeps the fast shape every later reader (undici, Fastify) meets.
  const rewriteRequestHeaders: Hook<'rewriteRequestHeaders'> = (request, incoming) => {
    const headers: IncomingHttpHeaders = {}
    for (const name in incoming) {
      if (dropped.has(name) || name.startsWith('x-forwarded-')) continue
      if (name.includes('_')) {
        const dashed = name.replaceAll('_', '-')
        if (dashed.startsWith('x-forwarded-') || guarded.has(dashed)) continue
      }
      headers[name] = (incoming as IncomingHttpHeaders)[name]
    }
    if (headers.cookie !== undefined) {
      const kept = withoutGatehouseCookies(headers.cookie)
      if (kept === undefined) delete headers.cookie
      else headers.cookie = kept
    }
    headers['x-forwarded-for'] = request.ip
    headers['x-forwarded-proto'] = forwardedProto
    headers['x-forwarded-host'] = forwardedHost
    // An answer the gateway filters must come as plain bytes (see bindAndSend).
    if (listFilterOf(request)) headers['accept-encoding'] = 'identity'
    // W3C traceparent of the upstream span, only when tracing is on (else the client's passes as before).
    request.upstreamHop?.propagate(headers)
    const principal = request.principal!
    const credential = request.upstreamCredential
    if (credential) headers[credential.name] = credential.value
    if (identity.subject) headers[identity.subject.toLowerCase()] = headerSafe(principal.sub)
    if (identity.clientId && principal.clientId !== undefined) {
      headers[identity.clientId.toLowerCase()] = headerSafe(principal.clientId)
    }
    if (identity.scope) headers[identity.scope.toLowerCase()] = scopeHeader(principal.scopes)
    if (identity.email && principal.token.email !== undefined) {
      headers[identity.email.toLowerCase()] = headerSafe(principal.token.email)
    }
    if (identity.groups && principal.token.groups !== undefined) {
      // A name with a comma would split into two groups upstream, one with a control character
      // could smuggle a header: such names are left out, not mangled.
      // eslint-disable-next-line no-control-regex
      const groups = principal.token.groups.filter((g) => g !== '' && !/[,\u0000-\u001f\u007f]/.test(g))
      if (groups.length > 0) headers[identity.groups.toLowerCase()] = groups.map(headerSafe).join(',')
    }
    return headers
  }

  const rewriteHeaders: Hook<'rewriteHeaders'> = (incoming) => {
    const upstreamHeaders = incoming as IncomingHttpHeaders
    // Headers the upstream's Connection header names are hop-by-hop too (RFC 9110 §7.6.1); the
    // usual one, keep-alive, is dropped anyway.
    const named = upstreamHeaders.connection
    const hopByHop = named === undefined || named === 'keep-alive' ? undefined : new Set(named.split(',').map((name) => name.trim().toLowerCase()))
    const headers: IncomingHttpHeaders = {}
    for (const name in upstreamHeaders) {
      if (!DROPPED_RESPONSE.has(name) && !hopByHop?.has(name)) headers[name] = upstreamHeaders[name]
    }
    if (isEventStream(headers)) {
      headers['x-accel-buffering'] = 'no'
      headers['cache-control'] = 'no-cache, no-transform'
    }
    const setCookie = headers['set-cookie']
    if (setCookie !== undefined) {
      const kept = setCookie.filter((c) => !setsGatehouseCookie(c))
      if (kept.length > 0) headers['set-cookie'] = kept
      else delete headers['set-cookie']
    }
    return headers
  }

  const onResponse: Hook<'onResponse'> = (request, reply, raw) => void bindAndSend(request, reply, raw as unknown as UpstreamResponse)

  async function bindAndSend(request: Parameters<Hook<'onResponse'>>[0], reply: Parameters<Hook<'onResponse'>>[1], res: UpstreamResponse) {
    request.upstreamHop?.responded(res.statusCode)
    if (res.statusCode === 401) {
      // The upstream wants credentials the gateway does not have: a gateway misconfiguration, not
      // something the client can fix by signing in again (its token was good here).
      res.stream.destroy()
      for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
      return reply.send(new BadGatewayError('the MCP server refused the gateway\'s request', { detail: `upstream ${resource.id}: 401` }))
    }
    const requested = request.headers['mcp-session-id']
    const issued = res.headers['mcp-session-id']
    try {
      if (typeof issued === 'string' && issued !== requested && res.statusCode < 300) {
        await sessions.bind(issued, request.principal!)
      } else if (request.method === 'DELETE' && typeof requested === 'string' && res.statusCode < 300) {
        await sessions.unbind(requested)
      }
    } catch (err) {
      // A session we cannot bind must not be handed out: nobody could use it safely.
      res.stream.destroy()
      for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
      reply.send(new TemporarilyUnavailableError('session state is unavailable; try again', { cause: err }))
      return
    }
    const filter = listFilterOf(request)
    if (isEventStream(res.headers)) {
      request.upstreamHop?.streamOpened(reply.raw as ServerResponse)
      // A filtered answer to a POST keeps its head until its first event has passed the filter,
      // so that an event the filter must refuse can still become a 502.
      if (!filter || request.method === 'GET') flushHeadersWhenPiped(reply.raw as ServerResponse)
    }
    if (isEventStream(res.headers) && isNotificationStream(request.method, request.body)) {
      trackStream(res.stream.stream(), reply.raw as ServerResponse)
    }
    const keepAliveMs = resource.sseKeepAliveSeconds * 1000
    if (!filter || res.statusCode !== 200) {
      // pipeline, not pipe: a client hanging up must also end the upstream request (MCPT-16).
      if (isEventStream(res.headers) && keepAliveMs > 0) return reply.send(pipeline(res.stream.stream(), new SseKeepAlive(keepAliveMs), () => {}))
      if (isEventStream(res.headers) || !isSmallWhole(res.headers)) return reply.send(res.stream.stream())
      // A small whole answer (a JSON result, a 202) is read and sent at once: one write to the
      // client instead of a stream's several, and no stream at all (upstream-client.ts; README, Benchmark).
      try {
        return reply.send(await res.stream.whole())
      } catch {
        // Cut off mid-body (reset, crash): the client's answer is cut too, as when it streams.
        res.stream.destroy()
        reply.raw.destroy()
        return
      }
    }
    // Compressed bytes cannot be filtered and must not pass unfiltered (identity was asked for).
    const coding = res.headers['content-encoding']
    if (coding !== undefined && coding.trim().toLowerCase() !== 'identity') {
      res.stream.destroy()
      for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
      return reply.send(new BadGatewayError('the MCP server sent a compressed list', { detail: `upstream ${resource.id}: content-encoding ${coding}` }))
    }
    if (isEventStream(res.headers)) {
      const events = res.stream.stream()
      return reply.send(
        keepAliveMs > 0 ? pipeline(events, filterSse(filter), new SseKeepAlive(keepAliveMs), () => {}) : pipeline(events, filterSse(filter), () => {}),
      )
    }
    try {
      const body = await filterJson(res.stream.stream(), filter)
      reply.removeHeader('content-length')
      reply.send(body)
    } catch (err) {
      res.stream.destroy()
      // Too large, or the upstream cut its answer off mid-body (reset, crash): both are its failure.
      reply.send(
        err instanceof ListTooLargeError
          ? err
          : new BadGatewayError('the MCP server cut its answer off', { detail: `upstream ${resource.id}: ${(err as Error).message}`, cause: err }),
      )
    }
  }

  /**
   * The filter for this exchange's answer, when lists are filtered: every list request of the
   * POST (a 2025-03-26 batch may hold several), or any answer at all on a GET stream, which
   * replays stored answers when a client resumes with Last-Event-ID.
   */
  function listFilterOf(request: { method: string; mcp?: McpRequest | undefined; principal?: Principal | undefined }): ListFilter | undefined {
    if (!resource.policy.filterLists) return undefined
    let ids: Set<JsonRpcId> | undefined
    if (request.method !== 'GET') {
      ids = new Set()
      for (const m of request.mcp?.messages ?? []) {
        if (m.id !== undefined && m.method !== undefined && Object.hasOwn(LIST_METHODS, m.method)) ids.add(m.id)
      }
      if (ids.size === 0) return undefined
    }
    const principal = request.principal!
    return { ids, kinds: LIST_KINDS, keep: (call, name) => mayCall(principal, call, name) }
  }

  const onError: Hook<'onError'> = (reply, { error: e }) => {
    const error = e as Error & { statusCode?: number; code?: string }
    const timedOut = error.statusCode === 504 || /TIMEOUT/i.test(error.code ?? '')
    const detail = `upstream ${resource.id}: ${error.code ?? error.name}`
    reply.request.upstreamHop?.failed(upstreamFailure(error, timedOut))
    reply.send(
      timedOut
        ? new GatewayTimeoutError('the MCP server did not answer in time', { detail, cause: error })
        : new BadGatewayError('the MCP server is unavailable', { detail, cause: error }),
    )
  }

  // reply-from retries a GET answered 503 up to ten times by default: the client's request goes
  // upstream once here, and the 503 (with its Retry-After) is the client's to act on.
  const retryDelay: Hook<'retryDelay'> = () => null
  return { rewriteRequestHeaders, rewriteHeaders, onResponse, onError, retryDelay }
}

/** GET streams (2025-11-25) and subscriptions/listen answers (2026-07-28) only ever carry notifications. */
function isNotificationStream(method: string, body: unknown): boolean {
  if (method === 'GET') return true
  if (!Buffer.isBuffer(body) || !body.includes('subscriptions/listen')) return false
  try {
    return (JSON.parse(body.toString('utf8')) as { method?: unknown }).method === 'subscriptions/listen'
  } catch {
    return false
  }
}

/** Answers up to this size with a declared length are read whole before they are sent on. */
const SMALL_WHOLE_BYTES = 64 * 1024

function isSmallWhole(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length']
  return length !== undefined && /^\d{1,6}$/.test(length) && Number(length) <= SMALL_WHOLE_BYTES
}

function isEventStream(headers: IncomingHttpHeaders): boolean {
  return headers['content-type']?.toLowerCase().startsWith('text/event-stream') ?? false
}

/**
 * Fastify writes a streamed reply's head with its first chunk, but an event stream may stay
 * silent for minutes (a GET notification stream, a long tool call): the upstream has already
 * answered 200 and flushed its head, and a client waits for that head to know the stream is open.
 * SSE passes through without buffering (MCPT-03), the head included. Fastify pipes the payload
 * once the status and headers are set, so the head goes out at that moment.
 */
function flushHeadersWhenPiped(raw: ServerResponse) {
  raw.once('pipe', () => {
    if (!raw.headersSent) raw.flushHeaders()
  })
}

