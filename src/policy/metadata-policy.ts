/**
 * The operator's metadata policy over Client ID Metadata Documents: OpenID Federation 1.0
 * §6.1 operators, one level, keyed directly by client metadata name as Authlete's
 * `cimdMetadataPolicy` is (ATL-08, OQ-14, OF-01..10).
 *
 * Operators run in the fixed order value, add, default, one_of, subset_of, superset_of,
 * essential (OF-08). `scope` is a space-separated string handled as an array and joined back.
 * Combinations the specification forbids are reported at config load
 * (`metadataPolicyProblems`); a failed check refuses the client and names the field.
 */

export const OPERATORS = ['value', 'add', 'default', 'one_of', 'subset_of', 'superset_of', 'essential'] as const
export type Operator = (typeof OPERATORS)[number]
export type FieldPolicy = Partial<Record<Operator, unknown>>
export type MetadataPolicy = Readonly<Record<string, FieldPolicy>>

/** Fields whose array must not end up empty: the client could not work at all. */
const REQUIRED_ARRAYS = new Set(['redirect_uris', 'grant_types', 'response_types'])

export type PolicyOutcome =
  | { ok: true; metadata: Record<string, unknown> }
  | { ok: false; field: string; reason: string }

const isArrayField = (field: string) => field === 'scope'
const asArray = (field: string, v: unknown) => (isArrayField(field) && typeof v === 'string' ? v.split(' ').filter(Boolean) : v)
const equal = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)
const contains = (list: readonly unknown[], v: unknown) => list.some((x) => equal(x, v))
const subset = (a: readonly unknown[], b: readonly unknown[]) => a.every((x) => contains(b, x))

/**
 * Applies the policy to a copy of `metadata` (a null-prototype object from the document);
 * returns the effective metadata or the first violation.
 */
export function applyMetadataPolicy(policy: MetadataPolicy, metadata: Record<string, unknown>): PolicyOutcome {
  const out: Record<string, unknown> = Object.assign(Object.create(null), metadata)
  for (const field of Object.keys(policy)) {
    const p = policy[field]!
    const fail = (reason: string): PolicyOutcome => ({ ok: false, field, reason })
    // The value, as an array for `scope`.
    let present = Object.hasOwn(out, field) && out[field] !== undefined
    let v: unknown = present ? out[field] : undefined
    if (isArrayField(field) && typeof v === 'string') v = v.split(' ').filter(Boolean)
    if (present && isArrayField(field) && !Array.isArray(v)) return fail('must be a space-separated string')

    if ('value' in p) {
      if (p.value === null) {
        present = false
        v = undefined
      } else {
        present = true
        v = asArray(field, structuredClone(p.value))
      }
    }
    if ('add' in p) {
      const add = p.add as unknown[]
      if (!present) v = [...add]
      else if (!Array.isArray(v)) return fail('must be an array')
      else v = [...v, ...add.filter((x) => !contains(v as unknown[], x))]
      present = true
    }
    if ('default' in p && !present) {
      v = asArray(field, structuredClone(p.default))
      present = true
    }
    if ('one_of' in p && present) {
      if (Array.isArray(v) || !contains(p.one_of as unknown[], v)) {
        return fail(`must be one of ${(p.one_of as unknown[]).map(String).join(', ')}`)
      }
    }
    let emptiedBySubset = false
    if ('subset_of' in p && present) {
      if (!Array.isArray(v)) return fail('must be an array')
      const allowed = p.subset_of as unknown[]
      const before = v.length
      v = v.filter((x) => contains(allowed, x))
      emptiedBySubset = before > 0 && (v as unknown[]).length === 0
    }
    if ('superset_of' in p && present) {
      if (!Array.isArray(v)) return fail('must be an array')
      const missing = (p.superset_of as unknown[]).filter((x) => !contains(v as unknown[], x))
      if (missing.length > 0) return fail(`must include ${missing.map(String).join(', ')}`)
    }
    if (p.essential === true && !present) return fail('is required')
    // OF-09: subset_of may legitimately yield []; for a field the client needs, that is a refusal.
    const needed = p.essential === true || REQUIRED_ARRAYS.has(field)
    if (present && Array.isArray(v) && v.length === 0 && needed && (emptiedBySubset || p.essential === true)) {
      return fail('has no allowed value left')
    }
    if (!present) delete out[field]
    else out[field] = isArrayField(field) ? (v as unknown[]).join(' ') : v
  }
  return { ok: true, metadata: out }
}

/**
 * Load-time checks (OF-01..07 combination rules, §6.1.3.1). Paths are relative to the policy:
 * `grant_types.subset_of`.
 */
export function metadataPolicyProblems(policy: MetadataPolicy): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = []
  for (const [field, p] of Object.entries(policy)) {
    const add = (op: string, message: string) => problems.push({ path: op ? `${field}.${op}` : field, message })
    for (const op of Object.keys(p)) {
      if (!(OPERATORS as readonly string[]).includes(op)) add(op, `unknown operator (use ${OPERATORS.join(', ')})`)
    }
    const arrayField = isArrayField(field)
    const asList = (x: unknown) => (arrayField && typeof x === 'string' ? x.split(' ').filter(Boolean) : x)
    for (const op of ['add', 'subset_of', 'superset_of', 'one_of'] as const) {
      if (op in p && !Array.isArray(p[op])) add(op, 'must be an array')
    }
    if ('one_of' in p && Array.isArray(p.one_of) && p.one_of.some((x) => x === null || typeof x === 'object')) {
      add('one_of', 'lists single values (strings, numbers, booleans)')
    }
    if ('essential' in p && typeof p.essential !== 'boolean') add('essential', 'must be true or false')
    if ('default' in p && p.default === null) add('default', 'must not be null')
    const value = 'value' in p ? asList(p.value) : undefined
    if ('value' in p) {
      if ('add' in p && (!Array.isArray(value) || !subset(p.add as unknown[], value))) add('add', 'must be a subset of value')
      if ('default' in p && p.value === null) add('default', 'cannot be combined with value: null')
      if ('one_of' in p && !contains((p.one_of as unknown[]) ?? [], p.value)) add('one_of', 'must contain value')
      if ('subset_of' in p && (!Array.isArray(value) || !subset(value, p.subset_of as unknown[]))) add('subset_of', 'must contain every entry of value')
      if ('superset_of' in p && (!Array.isArray(value) || !subset(p.superset_of as unknown[], value))) add('superset_of', 'must be a subset of value')
      if (p.value === null && p.essential === true) add('essential', 'cannot be true with value: null')
    }
    if ('add' in p && 'one_of' in p) add('one_of', 'cannot be combined with add')
    if ('add' in p && 'subset_of' in p && Array.isArray(p.add) && Array.isArray(p.subset_of) && !subset(p.add, p.subset_of)) {
      add('add', 'must be a subset of subset_of')
    }
    if ('one_of' in p && 'subset_of' in p) add('one_of', 'cannot be combined with subset_of')
    if ('one_of' in p && 'superset_of' in p) add('one_of', 'cannot be combined with superset_of')
    if ('subset_of' in p && 'superset_of' in p && Array.isArray(p.subset_of) && Array.isArray(p.superset_of) && !subset(p.superset_of, p.subset_of)) {
      add('superset_of', 'must be a subset of subset_of')
    }
  }
  return problems
}
