/**
 * `resources[].upstreamAuth`: what the gateway presents to the upstream MCP server (UPS-01..03).
 * Exactly one kind per resource (semantic check): a static secret header, a gateway-signed JWT,
 * or a token obtained by RFC 8693 token exchange at the operator's security token service.
 */
import { Type, type Static } from '@sinclair/typebox'
import { strict } from './schema-kit.js'

export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

const Header = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9-]+$', description: 'The request header that carries the secret, e.g. X-Api-Key.' }),
    value: Type.String({ minLength: 1, description: 'The secret: give it from the environment (${NAME}). Never logged.' }),
  },
  { ...strict, description: 'A static secret the upstream expects on every request (UPS-01: never the client\'s token).' },
)

const Jwt = Type.Object(
  {
    audience: Type.Optional(Type.String({ format: 'uri', description: 'The token\'s aud; default the upstream URL\'s origin.' })),
    ttlSeconds: Type.Integer({ minimum: 10, maximum: 600, default: 60, description: 'Lifetime of each upstream token.' }),
  },
  {
    ...strict,
    description:
      'A short-lived JWT the gateway signs for the upstream, in Authorization: Bearer: iss the gateway, aud the ' +
      'upstream, sub and client_id of the caller, its scopes (and email and groups when known), typ ' +
      'upstream+jwt. Signed with the active key of the gateway\'s JWKS (/oauth/jwks), so the upstream can ' +
      'verify who is calling; the gateway never accepts such a token itself (UPS-02).',
  },
)

/** RFC 6749 §3.3 scope syntax: scope tokens separated by single spaces. */
const SCOPE_LIST = '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+( [\\x21\\x23-\\x5B\\x5D-\\x7E]+)*$'

const Exchange = Type.Object(
  {
    tokenEndpoint: Type.String({
      format: 'uri',
      description: 'The token endpoint of the security token service (https; http only on localhost, 127.0.0.1 or [::1]).',
    }),
    clientId: Type.String({ minLength: 1, description: 'The gateway\'s client id at that token service.' }),
    clientSecret: Type.String({
      minLength: 1,
      description: 'The gateway\'s client secret there, from the environment (${NAME}); sent with client_secret_basic (RFC 6749 §2.3.1). Never logged.',
    }),
    audience: Type.Optional(
      Type.String({ minLength: 1, description: 'RFC 8693 audience parameter: the logical name of the upstream the token is for.' }),
    ),
    resource: Type.Optional(
      Type.String({ format: 'uri', description: 'RFC 8693 / RFC 8707 resource parameter: the upstream\'s URI the token is for.' }),
    ),
    scope: Type.Optional(Type.String({ pattern: SCOPE_LIST, description: 'RFC 8693 scope parameter (space-separated), when the token service needs one.' })),
    requestedTokenType: Type.String({
      minLength: 1,
      default: ACCESS_TOKEN_TYPE,
      description: 'RFC 8693 requested_token_type.',
    }),
    subjectTokenAudience: Type.Optional(
      Type.String({ minLength: 1, description: 'The aud of the subject token the gateway signs; default the tokenEndpoint URL.' }),
    ),
    subjectTokenTtlSeconds: Type.Integer({
      minimum: 10,
      maximum: 300,
      default: 60,
      description: 'Lifetime of the subject token: it only has to survive one exchange.',
    }),
    timeoutMs: Type.Integer({
      minimum: 100,
      maximum: 10000,
      default: 3000,
      description: 'Deadline of one exchange (connect, answer, body); the MCP client gets 503 after it.',
    }),
  },
  {
    ...strict,
    description:
      'RFC 8693 token exchange: the gateway asks the operator\'s token service for a token for the upstream and sends ' +
      'it as Authorization: Bearer. The subject token is a short-lived JWT the gateway signs about the caller (as ' +
      'with jwt, aud = subjectTokenAudience, subject_token_type urn:ietf:params:oauth:token-type:jwt), verifiable ' +
      'with /oauth/jwks; the client\'s own token is never sent (UPS-01). Exchanged tokens are cached per caller and ' +
      'target until shortly before expires_in runs out, never shared between callers, never logged (UPS-03).',
  },
)

export const UpstreamAuth = Type.Object(
  {
    header: Type.Optional(Header),
    jwt: Type.Optional(Jwt),
    exchange: Type.Optional(Exchange),
  },
  {
    ...strict,
    description:
      'Credentials the gateway presents to the upstream MCP server (exactly one kind). The client\'s own token ' +
      'never reaches the upstream, whatever this says (UPS-01).',
  },
)

export type UpstreamExchangeConfig = Static<typeof Exchange>
