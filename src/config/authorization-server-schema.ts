/** The built-in authorization server: its settings, pre-registered clients and dynamic registration. */
import { Type, type Static } from '@sinclair/typebox'
import { machineLimits, Seconds, strict } from './schema-kit.js'

export const StaticClient = Type.Object(
  {
    clientId: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$',
      description:
        'The client identifier (never URL-shaped: URLs are Client ID Metadata Documents; never starting with ' +
        '"dcr.": that prefix belongs to dynamically registered clients).',
    }),
    name: Type.String({ minLength: 1, maxLength: 100, description: 'Shown on the consent page.' }),
    redirectUris: Type.Optional(
      Type.Array(Type.String({ format: 'uri' }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Exact redirect URIs (https, or http on localhost/127.0.0.1/[::1] where any port matches), or a ' +
          'private-use scheme of a native app. Required with authorization_code; a machine client ' +
          '(client_credentials only) has none.',
      }),
    ),
    tokenEndpointAuthMethod: Type.Union(
      [Type.Literal('none'), Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('private_key_jwt')],
      {
        default: 'none',
        description:
          'none for public clients (PKCE alone); a secret for confidential ones; private_key_jwt (RFC 7523 §2.2) ' +
          'for a client that signs assertions with a key given in jwks or jwksUri.',
      },
    ),
    secret: Type.Optional(
      Type.String({ minLength: 32, description: 'The client secret, from the environment (${NAME}); at least 32 characters.' }),
    ),
    jwks: Type.Optional(
      Type.Object(
        { keys: Type.Array(Type.Object({}, { additionalProperties: true }), { minItems: 1, maxItems: 10 }) },
        {
          additionalProperties: false,
          description: 'private_key_jwt: the client\'s public keys (a JWK Set). Public members only; checked at load.',
        },
      ),
    ),
    jwksUri: Type.Optional(
      Type.String({
        format: 'uri',
        pattern: '^https://',
        description:
          'private_key_jwt: where the client\'s public keys are published (https), fetched and cached by the ' +
          'hardened fetcher of cimd.fetch (special-use addresses refused unless cimd.allowPrivateAddresses).',
      }),
    ),
    grantTypes: Type.Array(
      Type.Union([
        Type.Literal('authorization_code'),
        Type.Literal('refresh_token'),
        Type.Literal('client_credentials'),
        Type.Literal('urn:ietf:params:oauth:grant-type:jwt-bearer'),
      ]),
      {
        default: ['authorization_code', 'refresh_token'],
        uniqueItems: true,
        minItems: 1,
        description:
          'Refresh tokens are issued only to clients that list refresh_token. client_credentials (OAuth 2.1 §4.2) ' +
          'is for confidential machine clients: never with tokenEndpointAuthMethod none. ' +
          'urn:ietf:params:oauth:grant-type:jwt-bearer: ID-JAG assertions of an enterpriseAuthorization issuer that names the client.',
      },
    ),
    dpopBoundAccessTokens: Type.Boolean({
      default: false,
      description:
        'RFC 9449 §5.2 (dpop_bound_access_tokens): this client always gets DPoP-bound tokens; a token request ' +
        'without a proof is refused.',
    }),
    resources: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'client_credentials: the ids of the resources this client may get tokens for. Absent: every resource.',
      }),
    ),
    scopes: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        uniqueItems: true,
        description:
          'client_credentials: the scopes this client may be granted. Absent: every scope the resource knows.',
      }),
    ),
  },
  strict,
)

/** Dynamically registered client ids start with this; pre-registered ids may not (load.ts). */
export const REGISTERED_CLIENT_ID_PREFIX = 'dcr.'

export const Registration = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description:
        'Serve POST /oauth/register (RFC 7591) and advertise registration_endpoint. Off by default: MCP deprecates ' +
        'dynamic registration in favour of Client ID Metadata Documents (MCPA-F02), and every registration is ' +
        'self-asserted, so an operator turns it on knowingly.',
    }),
    initialAccessToken: Type.Optional(
      Type.String({
        minLength: 32,
        description:
          'When set, registering needs `Authorization: Bearer <this>` (RFC 7591 §3), compared in constant time. ' +
          'Give it from the environment (${NAME}); at least 32 characters. Absent: open registration.',
      }),
    ),
    maxClients: Type.Integer({
      minimum: 1,
      default: 10000,
      description:
        'At most this many new registrations within unusedTtlSeconds (counted in the current and the previous ' +
        'window), so unused registrations never exceed it. Beyond it registering is refused with 429 ' +
        'registration_limit_reached until the window moves on. Registrations kept alive by use are not counted: ' +
        'each needs a person who signed in.',
    }),
    unusedTtlSeconds: Seconds(
      'A registration not used for this long (no /authorize, no token request) is deleted. Use renews it (at most ' +
        'one write per tenth of this time). Keep it at least refreshTokenTtlSeconds, or a client\'s refresh tokens ' +
        'can outlive its registration.',
      2592000,
      60,
    ),
    rateLimit: Type.Object(
      {
        perAddress: Type.Integer({
          minimum: 1,
          default: 20,
          description:
            'Registration requests one source address may make per window (429 with Retry-After above it). MCP ' +
            'clients register once per installation, but many people can share one NAT address.',
        }),
        windowSeconds: Seconds('The fixed window of the per-address limit.', 3600),
      },
      { ...strict, default: {}, description: 'Limits POST /oauth/register per source address (see trustProxy).' },
    ),
    grantTypes: Type.Array(Type.Union([Type.Literal('authorization_code'), Type.Literal('refresh_token')]), {
      default: ['authorization_code', 'refresh_token'],
      uniqueItems: true,
      minItems: 1,
      description:
        'Grant types a registration may ask for; anything else is refused (invalid_client_metadata). Drop ' +
        'refresh_token to give self-registered clients access tokens only.',
    }),
    clientCredentials: Type.Optional(
      Type.Object(
        {
          initialAccessTokens: Type.Array(Type.String({ minLength: 32 }), {
            minItems: 1,
            uniqueItems: true,
            description:
              'Initial access tokens (RFC 7591 §3) that admit a registration asking for client_credentials: ' +
              '`Authorization: Bearer <one of these>`, compared in constant time. Give each from the environment ' +
              '(${NAME}); at least 32 characters. Hand one to each party allowed to register machine clients. Such a ' +
              'token also admits ordinary registrations when initialAccessToken is set.',
          }),
          ...machineLimits,
        },
        {
          ...strict,
          description:
            'Let dynamic registration create machine clients (grant_types client_credentials, OAuth 2.1 §4.2). Absent: ' +
            'a registration asking for client_credentials is refused (invalid_client_metadata). Such a registration must ' +
            'present one of initialAccessTokens and be confidential (client_secret_basic or client_secret_post, from ' +
            'tokenEndpointAuthMethods); it needs no redirect_uris when client_credentials is its only grant. Removing ' +
            'this setting stops the grant for clients registered under it.',
        },
      ),
    ),
    tokenEndpointAuthMethods: Type.Array(
      Type.Union([Type.Literal('none'), Type.Literal('client_secret_basic'), Type.Literal('client_secret_post')]),
      {
        default: ['none', 'client_secret_basic', 'client_secret_post'],
        uniqueItems: true,
        minItems: 1,
        description:
          'Client authentication methods a registration may ask for. A registration that names none is a public ' +
          'client (none), as MCP clients expect, not client_secret_basic as RFC 7591 §2 would have it.',
      },
    ),
  },
  {
    ...strict,
    default: {},
    description:
      'Dynamic client registration (RFC 7591) with read and delete (RFC 7592), for MCP clients that register ' +
      'themselves. Registered clients are self-asserted: the consent page says nothing about them was verified.',
  },
)

export const AuthorizationServer = Type.Object(
  {
    codeTtlSeconds: Seconds('Lifetime of an authorization code (single use).', 60, 10),
    requestTtlSeconds: Seconds('How long a person has to log in and consent.', 600, 60),
    refreshTokenTtlSeconds: Seconds('Lifetime of a refresh token; each use rotates it.', 2592000, 60),
    refreshReuseGraceSeconds: Type.Integer({
      minimum: 0,
      maximum: 300,
      default: 10,
      description:
        'The reuse grace window after a refresh token is rotated. Within it a rotated token presented again (a ' +
        'retry after a lost answer, two processes refreshing at once) is answered as refreshReuse says; later, ' +
        'its reuse means a copy leaked and revokes the whole grant (RFC 9700 §4.14.2, OAuth 2.1 §4.3.1).',
    }),
    refreshReuse: Type.Union([Type.Literal('grace'), Type.Literal('strict')], {
      default: 'grace',
      description:
        'What a rotated refresh token gets inside refreshReuseGraceSeconds. grace (as Auth0\'s reuse interval ' +
        'and Okta\'s grace period): a fresh access token and the grant\'s current refresh token, at any replica, ' +
        'with every binding of the grant (resource, scopes, subject, DPoP key); a revoked grant is still refused. ' +
        'No new refresh token is minted, so the grant keeps one live refresh token. strict: invalid_grant, ' +
        'without revoking (a client that lost the answer must sign in again).',
    }),
    sessionTtlSeconds: Seconds('Lifetime of the browser login session at the gateway.', 28800, 60),
    consentTtlSeconds: Seconds('How long a remembered consent spares the person the consent page.', 2592000, 60),
    rememberConsentForLoopbackClients: Type.Boolean({
      default: false,
      description:
        'Let a remembered consent skip the consent page for self-registered and metadata-document clients whose ' +
        'redirect URIs are all loopback. Off by default (SEC-29): any program on the person\'s computer can ' +
        'claim such a client id and listen on loopback, so the person sees each authorization. Operator-' +
        'registered clients and clients with a web redirect URI skip it either way.',
    }),
  },
  { ...strict, default: {}, description: 'The built-in OAuth 2.1 authorization server.' },
)


export type StaticClientConfig = Static<typeof StaticClient>
export type RegistrationConfig = Static<typeof Registration>
