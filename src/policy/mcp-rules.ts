/**
 * MCP-aware authorization rules: which calls (method, tool/prompt name or resource URI) need
 * which scopes and which users or machine clients, or are denied. Pure: no I/O, no Fastify.
 *
 * Evaluation: the first rule whose method and name patterns match decides; a call no rule
 * matches needs the resource's base scopes. Decisions always come from the parsed body, never
 * from mirrored headers (MCPT-14).
 */
import type { PolicyRuleConfig } from '../config/schema.js'
import { usersMatch } from './access-rules.js'

/** The caller, as far as the token tells. */
export interface Caller {
  sub: string
  scopes: ReadonlySet<string>
  email?: string | undefined
  groups?: readonly string[] | undefined
  clientId?: string | undefined
  /** A machine client's own token (client_credentials): only `clients` conditions admit it (CC-05). */
  machine?: boolean | undefined
  /** A workload's token (its workload name): only `workloads` conditions admit it (WIF-05). */
  workload?: string | undefined
}

/** What a call is: its method and, for the methods of NAMED_METHODS, its target. */
export interface Operation {
  method: string
  name?: string | undefined
}

export type Decision =
  | { allowed: true; rule: string }
  /** Denied outright (an action: deny rule or a user condition); `message` is the rule's public reason. */
  | { allowed: false; reason: 'denied'; rule: string; message: string | undefined }
  /** The token lacks scopes: `needed` is everything this operation needs (MCPA-F05). */
  | { allowed: false; reason: 'insufficient_scope'; rule: string; needed: readonly string[] }

interface CompiledRule {
  id: string
  method: RegExp
  name: RegExp | undefined
  action: 'allow' | 'deny'
  message: string | undefined
  scopes: readonly string[] | undefined
  users: PolicyRuleConfig['users']
  clients: readonly string[] | undefined
  workloads: readonly string[] | undefined
}

export const DEFAULT_RULE = 'default'

/**
 * The methods whose target a rule's `name` matches, and where the target is in params: `ref` is
 * completion/complete's reference, a prompt (`ref.name`) or a resource template (`ref.uri`).
 */
export const NAMED_METHODS: Readonly<Record<string, 'name' | 'uri' | 'ref'>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  // Subscribing tells the client when a resource changes: a resource it may not read is not its
  // business either, so `resources/*` rules on a URI cover these too.
  'resources/subscribe': 'uri',
  'resources/unsubscribe': 'uri',
  // Completions of a prompt's arguments belong to that prompt: a `*` method rule on its name covers them.
  'completion/complete': 'ref',
}

export class McpPolicy {
  readonly #rules: readonly CompiledRule[]

  constructor(
    rules: readonly PolicyRuleConfig[],
    private readonly baseScopes: readonly string[],
  ) {
    this.#rules = rules.map((r, i) => ({
      id: r.id ?? `rules[${i}]`,
      method: globToRegExp(r.method),
      name: r.name === undefined ? undefined : globToRegExp(r.name),
      action: r.action,
      message: r.reason,
      scopes: r.scopes,
      users: r.users,
      clients: r.clients,
      workloads: r.workloads,
    }))
  }

  /** For traffic that is not a call (GET streams, DELETE, responses to the server): the base scopes. */
  decideBase(caller: Caller): Decision {
    return this.#scopes(this.baseScopes, DEFAULT_RULE, caller)
  }

  decide(op: Operation, caller: Caller): Decision {
    const rule = this.#rules.find((r) => r.method.test(op.method) && (r.name === undefined || (op.name !== undefined && r.name.test(op.name))))
    if (!rule) return this.#scopes(this.baseScopes, DEFAULT_RULE, caller)
    const denied = { allowed: false, reason: 'denied', rule: rule.id, message: rule.message } as const
    if (rule.action === 'deny') return denied
    if ((rule.users || rule.clients || rule.workloads) && !admits(rule, caller)) return denied
    return this.#scopes(rule.scopes ?? this.baseScopes, rule.id, caller)
  }

  #scopes(needed: readonly string[], rule: string, caller: Caller): Decision {
    return needed.every((s) => caller.scopes.has(s))
      ? { allowed: true, rule }
      : { allowed: false, reason: 'insufficient_scope', rule, needed }
  }
}

/** A rule's `users` admit people, its `clients` machine clients, its `workloads` workloads; a caller is only one. */
function admits(rule: CompiledRule, caller: Caller): boolean {
  if (caller.workload !== undefined) return caller.workload !== '' && (rule.workloads?.includes(caller.workload) ?? false)
  if (caller.machine) return caller.clientId !== undefined && (rule.clients?.includes(caller.clientId) ?? false)
  return rule.users !== undefined && usersMatch(rule.users, caller)
}

/** `*` matches any run of characters (slashes included); everything else is literal. */
export function globToRegExp(pattern: string): RegExp {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*')
  return new RegExp(`^${source}$`, 's')
}
