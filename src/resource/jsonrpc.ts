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
  /** The request was refused before reaching the upstream (authorization, policy). */
  requestRefused: -32004,
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
