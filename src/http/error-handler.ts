/**
 * The only writer of error bodies. Every error becomes a response in the protocol of the route
 * it happened on: OAuth JSON (RFC 6749 §5.2) by default, a JSON-RPC error on MCP endpoints.
 * Unexpected errors are logged with their stack and answered with a generic 500: no internal
 * detail reaches the client (SEC-36).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { NotFoundError, PublicError, ServerError, TemporarilyUnavailableError } from '../errors.js'
import { jsonRpcError, JsonRpcCode, JsonRpcError } from '../resource/jsonrpc.js'
import { errorPage } from './html.js'
import { StoreUnavailableError } from '../store/store.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** How errors on this route are written; OAuth JSON unless said otherwise. */
    errorFormat?: 'oauth' | 'jsonrpc' | 'html'
    /** The response comes from an upstream: the gateway adds no page-oriented headers. */
    proxied?: boolean
  }
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => writeError(toPublicError(err, request), request, reply))
  app.setNotFoundHandler((request, reply) => writeError(new NotFoundError('no such endpoint'), request, reply))
}

/**
 * Errors Node's HTTP parser raises before any route is known (headers over its 16 KiB limit, a
 * malformed request line, a request too slow to arrive): answered in the default error form,
 * OAuth JSON (RFC 6749 §5.2), rather than in Fastify's own; then the connection closes.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, description] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'the request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'the request did not arrive in time']
        : [400, 'the request is malformed']
  const body = JSON.stringify({ error: 'invalid_request', error_description: description })
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncache-control: no-store\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}

function toPublicError(err: FastifyError, request: FastifyRequest): PublicError {
  if (err instanceof PublicError) {
    if (err.status >= 500) request.log.warn({ err: err.cause ?? err, detail: err.detail }, err.description)
    else request.log.info({ error: err.code, detail: err.detail }, err.description)
    return err
  }
  if (err instanceof StoreUnavailableError) {
    request.log.error({ err }, 'store unavailable')
    return new TemporarilyUnavailableError('the gateway cannot reach its store; try again')
  }
  // Fastify's own client errors (body too large, bad media type, malformed JSON): their codes are public.
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    request.log.info({ error: err.code }, err.message)
    const code = err.statusCode === 413 ? 'payload_too_large' : err.statusCode === 415 ? 'unsupported_media_type' : 'invalid_request'
    return new PublicError(code, err.statusCode, publicMessage(err))
  }
  // A client that hangs up mid-answer aborts the upstream request: expected, not a fault. Its
  // socket tells, not the request stream: that one is destroyed as soon as its body was read.
  if (request.raw.socket?.destroyed !== false) {
    request.log.debug({ error: err.code ?? err.name }, 'client went away')
    return new ServerError('the request was aborted')
  }
  request.log.error({ err }, 'unexpected error')
  return new ServerError('the gateway failed to handle the request')
}

function publicMessage(err: FastifyError): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'the request body is too large'
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'the request content type is not supported'
    default:
      return 'the request is malformed'
  }
}

function writeError(err: PublicError, request: FastifyRequest, reply: FastifyReply) {
  reply.code(err.status).headers(err.headers).header('cache-control', 'no-store')
  if (err.status === 503) reply.header('retry-after', '5')
  const format = request.routeOptions.config?.errorFormat
  if (format === 'html') {
    const page = errorPage(err.status >= 500 ? 'Something went wrong' : 'This request cannot continue', err.description)
    return reply.header('content-security-policy', page.csp).type('text/html; charset=utf-8').send(page.html)
  }
  if (format === 'jsonrpc') {
    const body =
      err instanceof JsonRpcError
        ? jsonRpcError(err.rpcCode, err.description, err.rpcId)
        : jsonRpcError(jsonRpcCodeOf(err), err.description)
    return reply.type('application/json').send(body)
  }
  return reply.type('application/json').send(err.toJSON())
}

function jsonRpcCodeOf(err: PublicError): number {
  if (err.status === 404) return JsonRpcCode.sessionNotFound
  if (err.status === 502 || err.status === 504) return JsonRpcCode.upstreamUnavailable
  if (err.status === 503) return JsonRpcCode.gatewayUnavailable
  if (err.status === 400 || err.status === 413 || err.status === 415) return JsonRpcCode.invalidRequest
  if (err.status === 429) return JsonRpcCode.rateLimited
  if (err.status === 403) return JsonRpcCode.forbidden
  return JsonRpcCode.authenticationRequired
}
