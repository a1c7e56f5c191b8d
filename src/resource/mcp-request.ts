/**
 * What an MCP POST asks for, read from its body: each JSON-RPC message with its method and,
 * for tools/call, prompts/get and resources/read, its target. For the 2026-07-28 revision the
 * mirrored headers must agree with the body (MCPT-11..13), else 400 HeaderMismatch (-32020).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { NAMED_METHODS } from '../policy/mcp-rules.js'
import { JsonRpcCode, JsonRpcError, type JsonRpcId } from './jsonrpc.js'

export interface McpMessage {
  id: JsonRpcId | undefined
  /** Undefined for responses (a client answering a server's request). */
  method: string | undefined
  name: string | undefined
  params: Record<string, unknown> | undefined
}

export interface McpRequest {
  messages: McpMessage[]
  batch: boolean
}

/** The first revision whose requests mirror method and name in headers. */
const HEADER_MIRRORING_SINCE = '2026-07-28'
/**
 * The methods whose target a 2026-07-28 request mirrors in `Mcp-Name` (MCPT-11). The policy
 * reads more targets than these (NAMED_METHODS: subscriptions, completions), but a client sends
 * no Mcp-Name for those, so demanding one would refuse what the upstream serves
 * (conformance check completion-complete).
 */
const MIRRORED_NAME_METHODS: ReadonlySet<string> = new Set(['tools/call', 'resources/read', 'prompts/get'])
/** JSON-RPC batches exist only in 2025-03-26 (removed in 2025-06-18). */
const BATCHES_UNTIL = '2025-03-26'
const PROTOCOL_META = 'io.modelcontextprotocol/protocolVersion'

class McpRequestError extends JsonRpcError {
  constructor(rpcCode: number, status: number, description: string, rpcId: JsonRpcId = null) {
    const code = rpcCode === JsonRpcCode.headerMismatch ? 'header_mismatch' : status === 415 ? 'unsupported_media_type' : 'invalid_request'
    super(code, status, description, rpcCode, rpcId)
  }
}

export function inspectMcpBody(body: Buffer, headers: IncomingHttpHeaders): McpRequest {
  checkEncoding(headers)
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch {
    throw new McpRequestError(JsonRpcCode.parseError, 400, 'the body is not JSON')
  }
  const version = single(headers['mcp-protocol-version'])
  const batch = Array.isArray(parsed)
  if (batch) {
    if ((version !== undefined && version > BATCHES_UNTIL) || (parsed as unknown[]).length === 0) {
      throw new McpRequestError(JsonRpcCode.invalidRequest, 400, 'JSON-RPC batches are not allowed in this protocol revision')
    }
  }
  const messages = (batch ? (parsed as unknown[]) : [parsed]).map(message)
  if (version !== undefined && version >= HEADER_MIRRORING_SINCE) {
    if (batch) throw mismatch('a batch cannot carry mirrored headers', null)
    checkMirroredHeaders(messages[0]!, headers, version)
  }
  return { messages, batch }
}

function message(raw: unknown): McpMessage {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || (raw as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
    throw new McpRequestError(JsonRpcCode.invalidRequest, 400, 'not a JSON-RPC 2.0 message')
  }
  const m = raw as { id?: unknown; method?: unknown; params?: unknown }
  const id = m.id === undefined || m.id === null || typeof m.id === 'string' || typeof m.id === 'number' ? (m.id as JsonRpcId | undefined) : undefined
  if (m.method !== undefined && typeof m.method !== 'string') {
    throw new McpRequestError(JsonRpcCode.invalidRequest, 400, 'the method must be a string', id ?? null)
  }
  const params = m.params !== null && typeof m.params === 'object' && !Array.isArray(m.params) ? (m.params as Record<string, unknown>) : undefined
  // Own keys only: a method named `constructor` or `__proto__` is just an unknown method.
  const field = m.method === undefined || !Object.hasOwn(NAMED_METHODS, m.method) ? undefined : NAMED_METHODS[m.method]
  // params that are there but not an object (by-position params, null) are `null`: no name, and
  // an upstream reading them by position could still find one.
  const target = field === undefined ? undefined : m.params !== undefined && !params ? null : field === 'ref' ? referenceOf(params?.ref) : params?.[field]
  // A target that is there must be a string: the policy matches strings, and an upstream could
  // coerce anything else into a name no rule saw (["delete_file"] looks up "delete_file").
  // A target that is absent names nothing: the policy decides on the method alone (rules with a
  // name pattern do not match) and the upstream, reading the same bytes, gives its own answer:
  // invalid params, or 404/-32601 for a method its revision removed (resources/subscribe in
  // 2026-07-28; conformance check sep-2575-http-server-method-not-found-404-resources-subscribe).
  if (target !== undefined && typeof target !== 'string') {
    const where = field === 'ref' ? 'params.ref with a name or uri' : `params.${field}`
    throw new McpRequestError(JsonRpcCode.invalidParams, 400, `${m.method} needs ${where} as a string`, id ?? null)
  }
  return { id, method: m.method, name: target, params }
}

/**
 * completion/complete's target: the prompt's name or the resource template's URI; undefined
 * when there is no reference or the reference has no name or URI; `null` (never a name) for
 * a reference that is not one of the two kinds, which the policy cannot place.
 */
function referenceOf(ref: unknown): unknown {
  if (ref === undefined) return undefined
  if (ref === null || typeof ref !== 'object' || Array.isArray(ref)) return null
  const { type, name, uri } = ref as { type?: unknown; name?: unknown; uri?: unknown }
  return type === 'ref/prompt' ? name : type === 'ref/resource' ? uri : null
}

/** A charset parameter naming UTF-8, and where the next parameter or the end follows it. */
const UTF8_CHARSET = /;\s*charset\s*=\s*(?:"utf-?8"|utf-?8)\s*(?=;|$)/gi

/**
 * The policy reads the body as UTF-8 JSON and forwards the same bytes; the upstream must read
 * them the same way. A declared charset other than UTF-8 (RFC 8259 §8.1: JSON between systems
 * is UTF-8) would have it decode other text: body-parser decodes `charset=utf-7` with
 * iconv-lite, where `+ACI-` is a quote, so one body holds one call for the gateway and another
 * for the server. A content coding would have it decompress bytes the policy never read
 * (RFC 9110 §8.4). Both are refused with 415.
 */
function checkEncoding(headers: IncomingHttpHeaders): void {
  const coding = headers['content-encoding']
  if (coding !== undefined && coding.split(',').some((c) => c.trim().toLowerCase() !== 'identity')) {
    throw new McpRequestError(JsonRpcCode.invalidRequest, 415, 'compressed request bodies are not accepted')
  }
  const type = headers['content-type'] ?? ''
  const charsets = type.match(/charset/gi)?.length ?? 0
  if (charsets > 0 && (type.match(UTF8_CHARSET)?.length ?? 0) !== charsets) {
    throw new McpRequestError(JsonRpcCode.invalidRequest, 415, 'the request body must be UTF-8 JSON')
  }
}

/** MCPT-12, MCPT-13: present, well-formed and equal to the body, values decoded first. */
function checkMirroredHeaders(m: McpMessage, headers: IncomingHttpHeaders, version: string): void {
  if (m.method === undefined) return
  const id = m.id ?? null
  const isNotification = m.id === undefined
  const method = single(headers['mcp-method'])
  // Clients send no Mcp-Method on some notifications (notifications/cancelled); when sent, it must agree.
  if (method === undefined && !isNotification) throw mismatch('the Mcp-Method header is missing', id)
  if (method !== undefined && decode(method) !== m.method) throw mismatch('Mcp-Method does not match the body', id)
  if (MIRRORED_NAME_METHODS.has(m.method)) {
    const name = single(headers['mcp-name'])
    if (name === undefined && m.name !== undefined) throw mismatch('the Mcp-Name header is missing', id)
    if (name !== undefined && decode(name) !== m.name) throw mismatch('Mcp-Name does not match the body', id)
  }
  const meta = m.params?._meta as Record<string, unknown> | undefined
  if (!isNotification && meta?.[PROTOCOL_META] !== undefined && meta[PROTOCOL_META] !== version) {
    throw mismatch('MCP-Protocol-Version does not match the body', id)
  }
}

function mismatch(description: string, id: JsonRpcId): McpRequestError {
  return new McpRequestError(JsonRpcCode.headerMismatch, 400, description, id)
}

/** MCPT-13: `=?base64?…?=` (markers case-sensitive) is Base64 of UTF-8. */
function decode(value: string): string | undefined {
  const encoded = /^=\?base64\?(.*)\?=$/.exec(value)
  if (!encoded) return value
  const text = Buffer.from(encoded[1]!, 'base64').toString('utf8')
  return Buffer.from(text, 'utf8').toString('base64').replace(/=+$/, '') === encoded[1]!.replace(/=+$/, '') ? text : undefined
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}
