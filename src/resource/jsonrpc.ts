/**
 * JSON-RPC error bodies for answers the gateway gives on an MCP endpoint itself, so MCP clients
 * can show them (JSON-RPC 2.0 §5.1; -32000..-32099 are implementation-defined server errors).
 */
export const JsonRpcCode = {
  /** The upstream MCP server failed or could not be reached. */
  upstreamUnavailable: -32001,
  /** The gateway itself cannot serve the request right now (store down, shutting down). */
  gatewayUnavailable: -32002,
  /** The session is unknown or belongs to someone else. */
  sessionNotFound: -32003,
  /** The request was refused before reaching the upstream. */
  requestRefused: -32004,
  invalidRequest: -32600,
} as const

export function jsonRpcError(code: number, message: string, id: string | number | null = null) {
  return { jsonrpc: '2.0' as const, id, error: { code, message } }
}
