/** Small builders the configuration schema files share. */
import { Type } from '@sinclair/typebox'

/** Unknown keys are errors: a misspelled option must never be silently ignored. */
export const strict = { additionalProperties: false } as const

export const Url = (description: string) => Type.String({ format: 'uri', description })
export const Seconds = (description: string, def: number, minimum = 1) =>
  Type.Integer({ minimum, default: def, description })

export const Scope = Type.String({
  pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$',
  description: 'An OAuth scope token (RFC 6749 §3.3: printable ASCII without space, " or \\).',
})
