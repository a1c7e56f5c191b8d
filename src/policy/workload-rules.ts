/**
 * Which workload a verified workload JWT is, by the operator's claim rules (WIF-03; ext-auth WIF
 * draft "Workload Trust Relationship"). Pure: no I/O.
 *
 * - A rule matches when every matcher holds: the claim at its path (a name, or a dotted path into
 *   nested objects, where a key may hold dots itself, as Kubernetes' `kubernetes.io` does) is a
 *   string, number or boolean equal to one of the patterns, or an array with such an element.
 *   `*` matches any run of characters; comparison is case-sensitive.
 * - Rules are tried in order: the first that matches and covers the requested resource decides.
 *   Matching rules that all leave the resource out tell the caller so (invalid_target); no
 *   matching rule at all is unauthorized_client (WIF-06).
 */
import type { WorkloadRuleConfig } from '../config/workload-schema.js'
import { globToRegExp } from './mcp-rules.js'

/** One rule's verdict on a set of claims, for `gatehouse workload inspect` and the log. */
export interface RuleVerdict {
  index: number
  workload: string
  matched: boolean
  /** The first matcher that failed, with what the claim held (bounded). */
  failed?: { path: string; patterns: readonly string[]; actual: string }
  coversResource: boolean
}

export type RuleOutcome =
  | { kind: 'matched'; rule: WorkloadRuleConfig; index: number; verdicts: RuleVerdict[] }
  /** Claims matched, but no such rule lists the resource. */
  | { kind: 'resource'; verdicts: RuleVerdict[] }
  | { kind: 'none'; verdicts: RuleVerdict[] }

export function chooseRule(rules: readonly WorkloadRuleConfig[], claims: Record<string, unknown>, resourceId: string): RuleOutcome {
  const verdicts = rules.map((rule, index) => verdictOf(rule, index, claims, resourceId))
  const chosen = verdicts.find((v) => v.matched && v.coversResource)
  if (chosen) return { kind: 'matched', rule: rules[chosen.index]!, index: chosen.index, verdicts }
  return { kind: verdicts.some((v) => v.matched) ? 'resource' : 'none', verdicts }
}

function verdictOf(rule: WorkloadRuleConfig, index: number, claims: Record<string, unknown>, resourceId: string): RuleVerdict {
  const base = { index, workload: rule.workload, coversResource: rule.resources.includes(resourceId) }
  for (const [path, pattern] of Object.entries(rule.match)) {
    const patterns = typeof pattern === 'string' ? [pattern] : pattern
    const value = claimAt(claims, path)
    if (!valueMatches(value, patterns)) return { ...base, matched: false, failed: { path, patterns, actual: describe(value) } }
  }
  return { ...base, matched: true }
}

function valueMatches(value: unknown, patterns: readonly string[]): boolean {
  if (Array.isArray(value)) return value.some((v) => !Array.isArray(v) && valueMatches(v, patterns))
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return false
  const text = String(value)
  return patterns.some((p) => globToRegExp(p).test(text))
}

/**
 * The claim at a dotted path. An exact key wins (`kubernetes.io`); otherwise the longest key made
 * of the leading segments that holds an object is descended into. Own properties only.
 */
export function claimAt(claims: unknown, path: string): unknown {
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return undefined
  const record = claims as Record<string, unknown>
  if (Object.hasOwn(record, path)) return record[path]
  const segments = path.split('.')
  for (let i = segments.length - 1; i >= 1; i--) {
    const head = segments.slice(0, i).join('.')
    if (Object.hasOwn(record, head)) {
      const found = claimAt(record[head], segments.slice(i).join('.'))
      if (found !== undefined) return found
    }
  }
  return undefined
}

function describe(value: unknown): string {
  if (value === undefined) return 'absent'
  const text = JSON.stringify(value)
  return text.length > 120 ? `${text.slice(0, 117)}...` : text
}
