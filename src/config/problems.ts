/**
 * How a schema error reads to an operator: its path, what is wrong, the value found (secrets
 * masked, since reports reach terminals and CI logs) and, for a misspelled key, the nearest key
 * allowed at that place. Used by load.ts, which collects every problem into one report.
 */
import type { ErrorObject } from 'ajv'

export interface ConfigProblem {
  path: string
  message: string
}

/** Keys whose values are credentials: never echoed, whatever is wrong with them. */
export const SECRET_KEY = /secret|password|token|credential|private|^value$|^d$/i

export function schemaProblem(e: ErrorObject): ConfigProblem {
  const segments = e.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  const path = pathOf(segments)
  const got = shown(segments.at(-1) ?? '', e.data)
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty)
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {})
      const near = nearest(key, allowed)
      return { path, message: `unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ''}` }
    }
    case 'enum':
      return { path, message: `must be one of ${(e.params.allowedValues as unknown[]).join(', ')}${got}` }
    case 'const':
      return { path, message: `must be ${JSON.stringify(e.params.allowedValue)}${got}` }
    case 'oneOf':
      return { path, message: 'give exactly one of the alternatives (for a key: `file` or `env`)' }
    case 'anyOf':
      return { path, message: `does not match any allowed form${got}` }
    case 'required':
    case 'minItems':
    case 'maxItems':
      return { path, message: e.message ?? e.keyword }
    default:
      return { path, message: `${e.message ?? e.keyword}${got}` }
  }
}

export function pathOf(segments: readonly string[]): string {
  return segments.map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`)).join('').replace(/^\./, '')
}

/** ` (got …)` for a scalar; objects and arrays are not echoed (their keys are reported apart). */
function shown(key: string, value: unknown): string {
  if (value === undefined || (typeof value === 'object' && value !== null)) return ''
  return ` (got ${masked(key, value)})`
}

/** The value as JSON, with a credential key's value and a URL's password replaced by ****. */
export function masked(key: string, value: unknown): string {
  if (SECRET_KEY.test(key)) return '"****"'
  if (typeof value !== 'string') return JSON.stringify(value)
  const text = withoutUrlPassword(value)
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text)
}

/** A URL's password (redis://user:secret@host) replaced by ****. */
export function withoutUrlPassword(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*:)[^/@]*@/i, '$1****@')
}

/** The allowed key nearest to a misspelled one, when it is near enough to be a typo. */
export function nearest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) [best, bestDistance] = [candidate, d]
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}

/**
 * "must have required property 'upstream'" beside `unknown key "upstreem" (did you mean
 * "upstream"?)` at the same path is one mistake, not two: the suggestion says it all.
 */
export function withoutImpliedRequired(problems: readonly ConfigProblem[]): ConfigProblem[] {
  const suggested = new Set(
    problems.flatMap((p) => {
      const near = /\(did you mean "([^"]+)"\?\)$/.exec(p.message)
      return near ? [`${p.path}\u0000${near[1]}`] : []
    }),
  )
  return problems.filter((p) => {
    const missing = /^must have required property '([^']+)'$/.exec(p.message)
    return !(missing && suggested.has(`${p.path}\u0000${missing[1]}`))
  })
}
