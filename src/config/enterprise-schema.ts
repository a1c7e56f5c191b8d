/**
 * `enterpriseAuthorization`: the company's identity providers whose Identity Assertion JWT
 * Authorization Grants (ID-JAG, SEP-990; draft-ietf-oauth-identity-assertion-authz-grant) the
 * gateway accepts at its token endpoint in place of a browser login.
 */
import { Type, type Static } from '@sinclair/typebox'
import { ASSERTION_ALGORITHMS } from './cimd-schema.js'
import { strict } from './schema-kit.js'

const IdJagIssuer = Type.Object(
  {
    id: Type.String({
      pattern: '^[a-z0-9][a-z0-9-]{0,31}$',
      description:
        'A stable short name: a person\'s subject is <id>:<the assertion\'s sub>. Use the id of the login.oidc ' +
        'provider for the same IdP, so that a person is one subject (and one set of access rules) whether they ' +
        'sign in at the browser or their agent presents an assertion.',
    }),
    issuer: Type.String({ format: 'uri', description: 'The IdP\'s issuer identifier: the assertion\'s iss must equal it exactly.' }),
    jwksUri: Type.Optional(
      Type.String({ format: 'uri', description: 'Where the IdP publishes its signing keys (https; http only on loopback).' }),
    ),
    jwks: Type.Optional(
      Type.Object(
        { keys: Type.Array(Type.Object({}, { additionalProperties: true }), { minItems: 1, maxItems: 20 }) },
        { additionalProperties: false, description: 'The IdP\'s public keys inline, instead of jwksUri.' },
      ),
    ),
    clients: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      uniqueItems: true,
      description:
        'Pre-registered confidential clients that may present this IdP\'s assertions; each must list the grant ' +
        'urn:ietf:params:oauth:grant-type:jwt-bearer. The assertion\'s client_id must name the client that authenticated.',
    }),
    algorithms: Type.Array(Type.Union(ASSERTION_ALGORITHMS.map((a) => Type.Literal(a))), {
      minItems: 1,
      uniqueItems: true,
      default: ['ES256', 'RS256', 'PS256', 'EdDSA'],
      description: 'JWS algorithms accepted on this IdP\'s assertions: asymmetric only (no none, no HS*).',
    }),
    maxLifetimeSeconds: Type.Integer({
      minimum: 30,
      maximum: 3600,
      default: 600,
      description: 'Longest accepted assertion lifetime (exp − iat); also how long a used jti is remembered at most.',
    }),
    claims: Type.Object(
      {
        email: Type.String({ default: 'email', description: 'The claim that holds the person\'s email address.' }),
        groups: Type.String({ default: 'groups', description: 'The claim that holds the person\'s groups (an array of strings).' }),
      },
      { ...strict, default: {}, description: 'Which claims of the assertion map to the person Gatehouse\'s access rules read.' },
    ),
  },
  strict,
)

export const EnterpriseSchema = Type.Object(
  {
    issuers: Type.Array(IdJagIssuer, {
      default: [],
      description:
        'Trusted IdPs. With any, the token endpoint accepts grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer ' +
        'with an ID-JAG assertion (typ oauth-id-jag+jwt) and the metadata advertises the id-jag grant profile.',
    }),
  },
  {
    ...strict,
    default: {},
    description:
      'Enterprise-managed authorization (SEP-990): agents whose access the company\'s IdP governs present an ID-JAG ' +
      'it signed instead of sending a person to the browser. The resource\'s access rules apply as after a login.',
  },
)

export type EnterpriseConfig = Static<typeof EnterpriseSchema>
export type IdJagIssuerConfig = Static<typeof IdJagIssuer>

export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** What the schema cannot say; paths relative to the configuration root. */
export function enterpriseConfigProblems(
  enterprise: EnterpriseConfig,
  clients: readonly { clientId: string; grantTypes: readonly string[]; tokenEndpointAuthMethod: string }[],
  reservedIds: readonly string[],
): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = []
  const ids = new Set<string>()
  enterprise.issuers.forEach((issuer, i) => {
    const at = `enterpriseAuthorization.issuers[${i}]`
    const add = (path: string, message: string) => problems.push({ path: `${at}.${path}`, message })
    if (ids.has(issuer.id)) add('id', `"${issuer.id}" is listed twice`)
    ids.add(issuer.id)
    if (reservedIds.includes(issuer.id)) add('id', `"${issuer.id}" is a reserved subject prefix; choose another id`)
    if ((issuer.jwks === undefined) === (issuer.jwksUri === undefined)) add('jwksUri', 'give exactly one of jwksUri or jwks')
    if (issuer.jwksUri !== undefined && !secureOrLoopback(issuer.jwksUri)) add('jwksUri', 'must be https (http only on localhost, 127.0.0.1 or [::1])')
    for (const [j, clientId] of issuer.clients.entries()) {
      const client = clients.find((c) => c.clientId === clientId)
      if (!client) add(`clients[${j}]`, `no pre-registered client has the id "${clientId}"`)
      else if (client.tokenEndpointAuthMethod === 'none') add(`clients[${j}]`, `"${clientId}" is public: the ID-JAG grant is for confidential clients (ID-JAG §9.1)`)
      else if (!client.grantTypes.includes(JWT_BEARER_GRANT)) add(`clients[${j}]`, `"${clientId}" must list ${JWT_BEARER_GRANT} in grantTypes`)
    }
  })
  return problems
}

function secureOrLoopback(uri: string): boolean {
  const url = URL.canParse(uri) ? new URL(uri) : undefined
  return url !== undefined && (url.protocol === 'https:' || (url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)))
}
