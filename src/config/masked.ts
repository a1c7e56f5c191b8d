/**
 * The configuration in effect as an operator may see it (the console's configuration page): every
 * credential's value replaced by ****, by the same key rule as configuration reports
 * (problems.ts), and passwords inside URLs too. The rule errs towards masking; only the names of
 * a token endpoint and its authentication method, which are never secret, are let through. Pure.
 */
import { SECRET_KEY, withoutUrlPassword } from './problems.js'

const NOT_SECRET = new Set(['tokenEndpoint', 'tokenEndpointAuthMethod', 'tokenEndpointAuthMethods', 'tokenTypes'])

export function maskedSecrets(value: unknown, key = ''): unknown {
  if (typeof value === 'string') return SECRET_KEY.test(key) && !NOT_SECRET.has(key) ? '****' : withoutUrlPassword(value)
  // Array items are masked by the key of their list (a list of secrets is secret).
  if (Array.isArray(value)) return value.map((v) => maskedSecrets(v, key))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskedSecrets(v, k)]))
  }
  return value
}
