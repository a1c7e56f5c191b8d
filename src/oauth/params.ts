/**
 * OAuth parameters: each may appear at most once (RFC 6749 §3.1, §3.2), so a repeated one is
 * refused rather than guessed at.
 */
import { InvalidRequestError } from '../errors.js'

export type Params = Readonly<Record<string, string | undefined>>

export function singleValued(source: unknown, errorOptions: { redirectable?: boolean } = {}): Params {
  const out: Record<string, string> = {}
  if (source === null || typeof source !== 'object') return out
  for (const [name, value] of Object.entries(source)) {
    if (Array.isArray(value)) throw new InvalidRequestError(`the ${name} parameter is repeated`, errorOptions)
    if (typeof value === 'string' && value !== '') out[name] = value
  }
  return out
}
