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

/**
 * client_credentials for clients the operator did not list one by one (dynamic registration,
 * metadata documents): their presence is the opt-in (CC-01); the limits work as a
 * pre-registered machine client's `resources` and `scopes` (CC-03, CC-04).
 */
export const machineLimits = {
  resources: Type.Optional(
    Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      uniqueItems: true,
      description: 'The ids of the resources such a client may get tokens for. Absent: every resource.',
    }),
  ),
  scopes: Type.Optional(
    Type.Array(Scope, {
      minItems: 1,
      uniqueItems: true,
      description: 'The scopes such a client may be granted. Absent: every scope the resource knows.',
    }),
  ),
}
