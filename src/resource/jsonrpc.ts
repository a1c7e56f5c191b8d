/**
 * JSON-RPC error bodies for answers the gateway gives on an MCP endpoint itself, so MCP clients
 * can show them (JSON-RPC 2.0 §5.1; -32000..-32099 are implementation-defined server errors).
 */
import { PublicError, type PublicErrorOptions } from '../errors.js'

export const JsonRpcCode = {
  parseError: -32700,
  invalidRequest: -32600,
  invalidParams: -32602,
  /** The upstream MCP server failed or could not be reached. */
  upstreamUnavailable: -32001,
  /** The gateway itself cannot serve the request right now (store down, shutting down). */
  gatewayUnavailable: -32002,
  /** The session is unknown or belongs to someone else. */
  sessionNotFound: -32003,
  /** No valid access token: authenticate (HTTP 401 with its challenge). */
  authenticationRequired: -32004,
  /** The token lacks a scope this call needs: step up (HTTP 403 insufficient_scope with its challenge, MCPA-43). */
  insufficientScope: -32005,
  /** The gateway's policy refuses this call; the message says why. A request gets it as its answer (HTTP 200). */
  policyDenied: -32006,
  /** Refused for where it comes from: a foreign Origin (MCPT-01). */
  forbidden: -32007,
  /** Too many requests; Retry-After says when to try again. */
  rateLimited: -32008,
  /** MCP 2026-07-28: mirrored headers disagree with the body (MCPT-12). */
  headerMismatch: -32020,
} as const

export type JsonRpcId = string | number | null

/** A refusal that knows its JSON-RPC code and the id of the request it answers. */
export class JsonRpcError extends PublicError {
  override readonly name = 'JsonRpcError'
  constructor(
    code: string,
    status: number,
    description: string,
    readonly rpcCode: number,
    readonly rpcId: JsonRpcId = null,
    options?: PublicErrorOptions,
  ) {
    super(code, status, description, options)
  }
}

export function jsonRpcError(code: number, message: string, id: JsonRpcId = null) {
  return { jsonrpc: '2.0' as const, id, error: { code, message } }
}
