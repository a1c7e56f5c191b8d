/**
 * The `admin` section: the operator console at /admin (off by default). Who may enter is named
 * twice over, never implied: people by the login configuration's conditions (`access`), or
 * whoever holds the admin token (only its SHA-256 is configured). Imported by schema.ts; what a
 * schema cannot say is checked by adminConfigProblems (semantic-checks.ts).
 */
import { Type, type Static } from '@sinclair/typebox'
import { userConditions } from './login-schema.js'
import { strict } from './schema-kit.js'

export const AdminSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description: 'Serve the operator console at /admin. Off: /admin does not exist (404).',
    }),
    access: Type.Optional(
      Type.Object(userConditions, {
        ...strict,
        description:
          'People who may enter, signed in at /account (password or the company\'s IdP); every given condition must ' +
          'hold. At least one condition: a rule that names nobody would admit everyone the login providers accept.',
      }),
    ),
    tokenSha256: Type.Optional(
      Type.String({
        pattern: '^[0-9a-f]{64}$',
        description:
          'Hex SHA-256 of an admin token typed into the /admin sign-in form (e.g. `openssl rand -hex 32` for the token, ' +
          'then `printf %s "$TOKEN" | sha256sum`). The token itself is never configured nor logged.',
      }),
    ),
    sessionTtlSeconds: Type.Integer({
      minimum: 60,
      maximum: 86400,
      default: 3600,
      description: 'Lifetime of a console session started with the admin token (people keep their login session).',
    }),
  },
  { ...strict, default: {}, description: 'The operator console (/admin): clients, grants, keys, configuration and health.' },
)

export type AdminConfig = Static<typeof AdminSchema>

/** An enabled console names who enters; paths are relative to the configuration root. */
export function adminConfigProblems(admin: AdminConfig): { path: string; message: string }[] {
  if (!admin.enabled) return []
  const problems: { path: string; message: string }[] = []
  const named = admin.access !== undefined && Object.values(admin.access).some((v) => v !== undefined)
  if (admin.access !== undefined && !named) {
    problems.push({ path: 'admin.access', message: 'give at least one condition (subjects, emails, emailDomains, groupsAnyOf, groupsAllOf): an empty rule would admit everyone' })
  }
  if (admin.access === undefined && admin.tokenSha256 === undefined) {
    problems.push({ path: 'admin', message: 'an enabled console needs access (who may enter) or tokenSha256 (an admin token), or both' })
  }
  return problems
}
