/**
 * The `login` section (who people are: static users, the company's OpenID Providers, the
 * browser session) and a resource's `access` rules (which of them may reach it). Imported by
 * schema.ts; what a schema cannot say is checked in load.ts (loginConfigProblems).
 */
import { Type, type Static } from '@sinclair/typebox'

import { strict } from './schema-kit.js'

/** Authorization request parameters the gateway sets itself; `authorizationParams` may not override them. */
export const PROTOCOL_AUTHORIZATION_PARAMS: readonly string[] = [
  'response_type',
  'response_mode',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'max_age',
  'request',
  'request_uri',
  'claims',
  'registration',
]

const StaticUser = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 128 }),
    passwordHash: Type.String({
      pattern: '^scrypt\\$',
      description: 'From `gatehouse hash-password`: scrypt$N$r$p$salt$hash.',
    }),
    subject: Type.Optional(Type.String({ minLength: 1, description: 'The token `sub`; defaults to static:<username>.' })),
    email: Type.Optional(Type.String()),
    name: Type.Optional(Type.String()),
    groups: Type.Array(Type.String(), { default: [] }),
  },
  strict,
)

const ClaimName = (description: string, def: string) =>
  Type.String({ minLength: 1, maxLength: 128, default: def, description })

const OidcProvider = Type.Object(
  {
    id: Type.String({
      pattern: '^[a-z0-9][a-z0-9-]{0,31}$',
      description:
        'A stable short name: the token `sub` is <id>:<the IdP\'s subject> and the redirect URI to register at the ' +
        'IdP is <publicUrl>/oauth/callback/<id>. Changing it changes every user\'s subject.',
    }),
    name: Type.String({ minLength: 1, maxLength: 60, description: 'The button label: "Allow and continue with <name>".' }),
    issuer: Type.String({
      format: 'uri',
      pattern: '^https://',
      description:
        'The issuer identifier; its metadata is discovered at <issuer>/.well-known/openid-configuration on first use ' +
        '(and cached), and ID tokens must carry exactly this `iss`. https only.',
    }),
    clientId: Type.String({ minLength: 1, description: 'The client id the IdP gave the gateway.' }),
    clientSecret: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'The client secret, from the environment (${NAME}). Absent: a public client (PKCE only).',
      }),
    ),
    tokenEndpointAuthMethod: Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post')], {
      default: 'client_secret_basic',
      description:
        'How the secret is sent to the IdP\'s token endpoint; client_secret_basic is what every IdP must support ' +
        '(RFC 6749 §2.3.1). Ignored without clientSecret.',
    }),
    scopes: Type.Array(Type.String({ pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }), {
      default: ['openid', 'email', 'profile'],
      uniqueItems: true,
      minItems: 1,
      description:
        'Scopes asked of the IdP; must include openid. Add the one that releases groups where the IdP needs it ' +
        '(e.g. groups at Okta and Dex).',
    }),
    authorizationParams: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), Type.String(), {
      additionalProperties: false,
      default: {},
      description:
        'Extra authorization request parameters, e.g. hd (Google Workspace) or domain_hint (Entra ID). The protocol ' +
        'parameters (state, nonce, code_challenge, redirect_uri, scope, max_age, ...) are the gateway\'s and refused here.',
    }),
    claims: Type.Object(
      {
        subject: ClaimName('ID token claim that identifies the user (stable, never reassigned).', 'sub'),
        email: ClaimName('Claim with the email address.', 'email'),
        name: ClaimName('Claim with the display name.', 'name'),
        groups: ClaimName('Claim with the group list (an array of strings); may be absent.', 'groups'),
      },
      {
        ...strict,
        default: {},
        description:
          'Which claims of the ID token (merged over the UserInfo response when the IdP has one) give the user\'s id, ' +
          'email, name and groups.',
      },
    ),
    requireVerifiedEmail: Type.Boolean({
      default: true,
      description:
        'Use the email only when email_verified is true. Off only for an IdP that never sends email_verified and ' +
        'whose addresses it owns, or anyone could claim an address an email rule allows.',
    }),
    caFile: Type.Optional(
      Type.String({ description: 'PEM bundle of the CA(s) that signed the IdP\'s certificate, for a private CA; read at startup.' }),
    ),
    timeoutSeconds: Type.Integer({
      minimum: 1,
      maximum: 60,
      default: 10,
      description: 'Each request to the IdP (discovery, token, UserInfo, keys) fails after this; the person sees a clear page.',
    }),
  },
  strict,
)

const Session = Type.Object(
  {
    maxAgeSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'A login older than this is not reused: the person signs in again, and `max_age` is sent to the IdP (whose ' +
          'ID token must then carry a recent `auth_time`). Absent: a login lasts the session ' +
          '(authorizationServer.sessionTtlSeconds).',
      }),
    ),
  },
  { ...strict, default: {}, description: 'The browser session at the gateway (its lifetime is authorizationServer.sessionTtlSeconds).' },
)

export const LoginSchema = Type.Object(
  {
    static: Type.Optional(
      Type.Object(
        { users: Type.Array(StaticUser, { minItems: 1 }) },
        { ...strict, description: 'Users defined in this file, with scrypt password hashes.' },
      ),
    ),
    oidc: Type.Array(OidcProvider, {
      default: [],
      description:
        'The company\'s OpenID Providers (Okta, Entra ID, Google Workspace, Keycloak, Auth0, Dex ...). With any, every ' +
        'resource needs `access` rules (or allowAnyUser: true).',
    }),
    session: Session,
  },
  { ...strict, default: {}, description: 'How people prove who they are before consenting.' },
)

/** Conditions on a person, shared by a resource's `access` and the operator console's `admin.access`. */
export const userConditions = {
  subjects: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'Token subjects, e.g. corp:00u1ab2c or static:alice.' })),
  emails: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'Email addresses (case-insensitive; verified ones only).' })),
  emailDomains: Type.Optional(
    Type.Array(Type.String({ pattern: '^[A-Za-z0-9.-]+$' }), { minItems: 1, description: 'Domains after the @ (exact; no subdomains).' }),
  ),
  groupsAnyOf: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'The user is in at least one of these groups.' })),
  groupsAllOf: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'The user is in every one of these groups.' })),
}

export const AccessSchema = Type.Object(
  {
    ...userConditions,
    clients: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Machine clients (client_credentials) that may get tokens for this resource. Absent: any client_credentials ' +
          'client whose own `resources` allow it. People are never admitted by this list, nor machines by the others.',
      }),
    ),
    allowAnyUser: Type.Boolean({
      default: false,
      description:
        'Every person the login providers accept may use this resource. Say it explicitly: an IdP like Google lets ' +
        'any Google account sign in.',
    }),
  },
  {
    ...strict,
    description:
      'Who may authorize clients for this resource; all given conditions must hold. Checked after login, before ' +
      'consent or a code, and again at every refresh. Required with an oidc provider; without one, all static users.',
  },
)

export type LoginConfig = Static<typeof LoginSchema>
export type OidcProviderConfig = Static<typeof OidcProvider>
export type StaticUserConfig = Static<typeof StaticUser>
export type AccessConfig = Static<typeof AccessSchema>

/** What load.ts cannot leave to the schema; paths are relative to the configuration root. */
export function loginConfigProblems(
  login: LoginConfig,
  resources: readonly { access?: AccessConfig | undefined }[],
): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = []
  const add = (path: string, message: string) => problems.push({ path, message })
  const usernames = new Set<string>()
  login.static?.users.forEach((u, i) => {
    if (usernames.has(u.username)) add(`login.static.users[${i}].username`, `"${u.username}" is listed twice`)
    usernames.add(u.username)
  })
  const ids = new Set<string>()
  login.oidc.forEach((p, i) => {
    const at = `login.oidc[${i}]`
    if (ids.has(p.id)) add(`${at}.id`, `"${p.id}" is listed twice`)
    ids.add(p.id)
    if (p.id === 'static') add(`${at}.id`, '"static" is the password provider\'s subject prefix; choose another id')
    if (p.id === 'client') add(`${at}.id`, '"client" is the subject prefix of machine clients (client_credentials); choose another id')
    if (p.id === 'workload') add(`${at}.id`, '"workload" is the subject prefix of workloads (workloadIdentity); choose another id')
    if (!p.scopes.includes('openid')) add(`${at}.scopes`, 'must include openid')
    const issuer = URL.canParse(p.issuer) ? new URL(p.issuer) : undefined
    if (issuer && (issuer.search || issuer.hash)) add(`${at}.issuer`, 'must not have a query or fragment (OIDC Discovery §2)')
    for (const name of Object.keys(p.authorizationParams)) {
      if (PROTOCOL_AUTHORIZATION_PARAMS.includes(name) || name.startsWith('code_challenge')) {
        add(`${at}.authorizationParams.${name}`, 'is set by the gateway itself and cannot be overridden')
      }
    }
  })
  resources.forEach((r, i) => {
    const at = `resources[${i}].access`
    const conditions = r.access ? Object.keys(userConditions).filter((k) => r.access![k as keyof typeof userConditions] !== undefined) : []
    if (r.access?.allowAnyUser && conditions.length > 0) {
      add(at, `allowAnyUser: true admits everyone; remove it or the conditions (${conditions.join(', ')})`)
    }
    if (r.access && !r.access.allowAnyUser && conditions.length === 0 && r.access.clients === undefined) {
      add(at, 'give at least one condition (subjects, emails, emailDomains, groupsAnyOf, groupsAllOf), clients or allowAnyUser: true')
    }
    // Secure by default: an IdP may admit far more people than the operator means (the
    // oauth2-proxy lesson: Google's issuer accepts every Google account).
    if (login.oidc.length > 0 && r.access === undefined) {
      add(at, 'is required when login.oidc is configured: list who may use this resource, or say allowAnyUser: true')
    }
  })
  return problems
}

export function loginWarnings(login: LoginConfig): string[] {
  return login.oidc
    .filter((p) => !p.requireVerifiedEmail)
    .map((p) => `login.oidc ${p.id}: requireVerifiedEmail is off: unverified email addresses are trusted`)
}
