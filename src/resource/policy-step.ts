/**
 * The MCP-aware decision for one request, after the token check and once the body is read
 * (so it is decided from exactly the bytes that will be forwarded): every JSON-RPC message must
 * be allowed by the resource's policy. Each decision is an `mcp.decision` audit event (its
 * timing is a metric, not part of the event: the schema holds facts that stay true).
 *
 * Refusals: a missing scope is 403 with a step-up challenge naming everything the operation
 * needs (MCPA-43, MCPA-F05); a request the policy denies is answered with a JSON-RPC error
 * (policyDenied, HTTP 200) naming the rule's public reason.
 */
import type { FastifyRequest } from 'fastify'
import { AuditTrail, contextOf } from '../audit/events.js'
import type { Resource } from '../config/load.js'
import { McpPolicy, type Caller, type Decision } from '../policy/mcp-rules.js'
import { bearerChallenge } from './challenge.js'
import { JsonRpcCode, JsonRpcError } from './jsonrpc.js'
import { inspectMcpBody, type McpMessage, type McpRequest } from './mcp-request.js'
import type { Principal } from './principal.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The parsed MCP POST, when there was one. */
    mcp?: McpRequest
  }
}

/** List methods whose results policy filtering may narrow, and the call each item stands for. */
export const LIST_METHODS: Readonly<Record<string, { field: 'tools' | 'resources' | 'prompts'; call: string; key: 'name' | 'uri' }>> = {
  'tools/list': { field: 'tools', call: 'tools/call', key: 'name' },
  'resources/list': { field: 'resources', call: 'resources/read', key: 'uri' },
  'prompts/list': { field: 'prompts', call: 'prompts/get', key: 'name' },
}

export function createPolicyStep(resource: Resource, trail: AuditTrail = new AuditTrail()) {
  const policy = new McpPolicy(resource.policy.rules, resource.requiredScopes)

  function policyStep(request: FastifyRequest): void {
    const principal = request.principal!
    const caller = callerOf(principal)
    if (request.method !== 'POST' || !Buffer.isBuffer(request.body)) {
      // GET streams and DELETE carry no call: the resource's base scopes apply.
      enforce(policy.decideBase(caller), undefined, request)
      return
    }
    const mcp = inspectMcpBody(request.body, request.headers)
    request.mcp = mcp
    for (const message of mcp.messages) {
      // A response to a server's request is not a call: the base scopes apply (as for GET).
      const decision =
        message.method === undefined ? policy.decideBase(caller) : policy.decide({ method: message.method, name: message.name }, caller)
      audit(trail, request, resource, principal, message, decision, resource.policy.auditArguments)
      enforce(decision, message, request)
    }
  }

  function enforce(decision: Decision, message: McpMessage | undefined, request: FastifyRequest): void {
    if (decision.allowed) return
    const id = message?.id ?? null
    if (decision.reason === 'denied') {
      const description = `the gateway's policy refuses this call: ${decision.message ?? `rule ${decision.rule}`}`
      // A refused request of an authorized session is answered, not failed: HTTP 200 with its
      // JSON-RPC error, which the SDK clients raise as an error of that one request while the
      // session goes on. HTTP 403 would read as a broken server. A notification or a batch has
      // no single request to answer, and GET and DELETE carry no call: those stay 403.
      const answerable = message?.id !== undefined && request.mcp?.batch === false
      throw new JsonRpcError('access_denied', answerable ? 200 : 403, description, JsonRpcCode.policyDenied, id, {
        detail: `rule ${decision.rule}`,
      })
    }
    const description = `this call needs the scope ${decision.needed.join(' ')}`
    throw new JsonRpcError('insufficient_scope', 403, description, JsonRpcCode.insufficientScope, id, {
      headers: {
        'www-authenticate': bearerChallenge({
          resourceMetadataUrl: resource.metadataUrl,
          scopes: decision.needed,
          error: 'insufficient_scope',
          description,
        }),
      },
      detail: `rule ${decision.rule}, ${request.method}`,
    })
  }

  /** Whether the token may call one listed item (for list filtering). */
  function mayCall(principal: Principal, method: string, name: string): boolean {
    return policy.decide({ method, name }, callerOf(principal)).allowed
  }

  return Object.assign(policyStep, { mayCall })
}

function callerOf(p: Principal): Caller {
  return { sub: p.sub, scopes: p.scopes, email: p.token.email, groups: p.token.groups, clientId: p.clientId, machine: p.token.machine, workload: p.token.workload }
}

/** One event per decision; arguments only when the operator asked (they may be personal). */
function audit(
  trail: AuditTrail,
  request: FastifyRequest,
  resource: Resource,
  principal: Principal,
  message: McpMessage,
  decision: Decision,
  withArguments: boolean,
): void {
  trail.record(
    {
      type: 'mcp.decision',
      resource: resource.id,
      sub: principal.sub,
      clientId: principal.clientId,
      method: message.method ?? 'response',
      ...(message.name !== undefined && { name: message.name }),
      decision: decision.allowed ? 'allow' : 'deny',
      ...(!decision.allowed && { reason: decision.reason }),
      rule: decision.rule,
      ...(withArguments && message.params?.arguments !== undefined && { arguments: message.params.arguments }),
    },
    contextOf(request),
  )
}
