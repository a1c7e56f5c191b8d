/**
 * The configuration schema: the single source of the YAML's shape, its defaults and its
 * documentation. `npm run schema` writes it to config/gatehouse.schema.json for editors;
 * a test keeps that file in sync.
 *
 * Every property with a default is filled in by the loader, so the TypeScript type `Config`
 * can treat it as present.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { CimdSchema } from './cimd-schema.js'
import { AccessSchema, LoginSchema } from './login-schema.js'
import { AuditSchema, RateLimitsSchema } from './operations-schema.js'
import { MetricsSchema, TracingSchema } from './operations-schema.js'

const strict = { additionalProperties: false } as const

const Url = (description: string) => Type.String({ format: 'uri', description })
const Seconds = (description: string, def: number, minimum = 1) =>
  Type.Integer({ minimum, default: def, description })

const Scope = Type.String({
  pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$',
  description: 'An OAuth scope token (RFC 6749 §3.3: printable ASCII without space, " or \\).',
})

const RedisStore = Type.Object(
  {
    url: Type.String({
      pattern: '^rediss?://',
      description:
        'redis:// or rediss:// (TLS) URL, e.g. rediss://:${REDIS_PASSWORD}@redis:6380/0. ' +
        'Ignored when sentinels or cluster nodes are given, except for its password and db.',
    }),
    keyPrefix: Type.String({ default: 'gatehouse:', description: 'Prefix of every key Gatehouse writes.' }),
    tls: Type.Optional(
      Type.Object(
        {
          caFile: Type.Optional(Type.String({ description: 'PEM file of the CA that signed the Redis certificate.' })),
          servername: Type.Optional(Type.String({ description: 'TLS server name, when it differs from the host.' })),
        },
        { ...strict, description: 'TLS settings; TLS is on whenever this is present or the URL is rediss://.' },
      ),
    ),
    sentinels: Type.Optional(
      Type.Array(Type.Object({ host: Type.String(), port: Type.Integer({ minimum: 1, maximum: 65535 }) }, strict), {
        minItems: 1,
        description: 'Redis Sentinel nodes; with `sentinelMasterName`, replaces the URL host.',
      }),
    ),
    sentinelMasterName: Type.Optional(Type.String({ description: 'The Sentinel master group name.' })),
    clusterNodes: Type.Optional(
      Type.Array(Type.Object({ host: Type.String(), port: Type.Integer({ minimum: 1, maximum: 65535 }) }, strict), {
        minItems: 1,
        description: 'Redis Cluster seed nodes. Gatehouse uses single-key commands only, so any cluster works.',
      }),
    ),
    connectTimeoutMs: Type.Integer({ minimum: 100, default: 5000, description: 'Connection timeout.' }),
    commandTimeoutMs: Type.Integer({
      minimum: 50,
      default: 2000,
      description: 'A command not answered in this time fails; the request that needed it gets 503.',
    }),
  },
  { ...strict, description: 'Redis connection (type: redis).' },
)

const Store = Type.Object(
  {
    type: Type.Union([Type.Literal('memory'), Type.Literal('redis')], {
      default: 'memory',
      description:
        'memory: one process only, lost on restart (development). redis: shared by any number of replicas.',
    }),
    redis: Type.Optional(RedisStore),
  },
  {
    ...strict,
    default: {},
    description: 'Where sessions, codes, grants, bindings and caches live.',
    if: { required: ['type'], properties: { type: { const: 'redis' } } },
    then: { required: ['redis'] },
  },
)

const SigningKey = Type.Object(
  {
    file: Type.Optional(Type.String({ description: 'A private key file: PEM (PKCS#8) or a JWK in JSON.' })),
    env: Type.Optional(Type.String({ description: 'An environment variable holding the PEM or JWK.' })),
    kid: Type.Optional(Type.String({ description: 'Key id; defaults to the JWK thumbprint (RFC 7638).' })),
    alg: Type.Union([Type.Literal('ES256'), Type.Literal('RS256'), Type.Literal('PS256'), Type.Literal('EdDSA')], {
      default: 'ES256',
      description: 'The JWS algorithm this key signs with.',
    }),
    active: Type.Boolean({
      default: false,
      description:
        'The key that signs new tokens. Exactly one key is active; the others only verify, so keys rotate ' +
        'without invalidating tokens in flight.',
    }),
  },
  { ...strict, oneOf: [{ required: ['file'] }, { required: ['env'] }] },
)

const ExternalIssuer = Type.Object(
  {
    issuer: Url('The issuer identifier; tokens must carry exactly this `iss`.'),
    jwksUri: Url('Where the issuer publishes its signing keys.'),
    algorithms: Type.Array(Type.String({ pattern: '^(RS|PS|ES)(256|384|512)$|^EdDSA$' }), {
      minItems: 1,
      default: ['RS256', 'ES256'],
      description: 'Accepted JWS algorithms; never none or HS*.',
    }),
    tokenTypes: Type.Array(Type.String(), {
      minItems: 1,
      default: ['at+jwt'],
      description:
        'Accepted `typ` headers (RFC 9068 says at+jwt; some providers send JWT, list it only if yours does).',
    }),
    jwksCacheSeconds: Seconds('How long fetched keys are trusted before a refresh.', 600),
    jwksRefreshCooldownSeconds: Seconds(
      'A token with an unknown kid triggers a JWKS refetch (key rotation) at most this often.',
      30,
    ),
  },
  {
    ...strict,
    description:
      'Resource-server-only mode: trust access tokens of an existing authorization server instead of minting them.',
  },
)

const Pattern = (description: string) =>
  Type.String({ minLength: 1, maxLength: 512, description: `${description} \`*\` matches any run of characters.` })

const PolicyRule = Type.Object(
  {
    id: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'Named in audit events and refusals; defaults to rules[N].' })),
    method: Pattern('The JSON-RPC method, e.g. tools/call.'),
    name: Type.Optional(
      Pattern('The tool or prompt name (params.name); the resource URI (params.uri) of resources/read, resources/subscribe and resources/unsubscribe; the prompt name or resource template URI of completion/complete (params.ref).'),
    ),
    action: Type.Union([Type.Literal('allow'), Type.Literal('deny')], {
      default: 'allow',
      description: 'deny refuses matching calls whatever the token carries.',
    }),
    scopes: Type.Optional(
      Type.Array(Scope, {
        uniqueItems: true,
        description:
          'Every scope a matching call needs; replaces the resource\'s requiredScopes for it ([] = any valid token).',
      }),
    ),
    users: Type.Optional(
      Type.Object(
        {
          subjects: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
          emails: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
          emailDomains: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z0-9.-]+$' }), { minItems: 1 })),
          groupsAnyOf: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
          groupsAllOf: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
        },
        {
          ...strict,
          description:
            'Who may make a matching call (all given conditions must hold), from the token\'s sub, email and groups claims.',
        },
      ),
    ),
  },
  strict,
)

const Policy = Type.Object(
  {
    rules: Type.Array(PolicyRule, {
      default: [],
      description:
        'Checked in order; the first rule whose method and name match decides. A call no rule matches is ' +
        'allowed with the resource\'s requiredScopes.',
    }),
    filterLists: Type.Boolean({
      default: false,
      description: 'Remove from tools/list, resources/list and prompts/list results what the token may not call.',
    }),
    auditArguments: Type.Boolean({
      default: false,
      description: 'Put call arguments into audit events (they may hold personal data; off by default).',
    }),
  },
  { ...strict, default: {}, description: 'MCP-aware authorization of each JSON-RPC call.' },
)

const Resource = Type.Object(
  {
    id: Type.String({
      pattern: '^[a-z0-9][a-z0-9_-]{0,62}$',
      description: 'A stable short name used in logs, metrics and store keys.',
    }),
    name: Type.String({ minLength: 1, description: 'Shown to people, and published as `resource_name`.' }),
    path: Type.String({
      pattern: '^/[A-Za-z0-9._~!$&\'()*+,;=:@%/-]*$',
      description: 'The MCP endpoint path on the gateway, e.g. /mcp. Its public URL is the resource identifier.',
    }),
    upstream: Url('The MCP endpoint of the protected server, e.g. http://files-mcp:3000/mcp.'),
    default: Type.Boolean({
      default: false,
      description: 'The resource used when an authorization request names none, and served at the root PRM URL.',
    }),
    scopes: Type.Array(
      Type.Object(
        {
          name: Scope,
          description: Type.String({ default: '', description: 'Shown on the consent page.' }),
        },
        strict,
      ),
      { default: [], description: 'The scopes this resource knows (published in its metadata).' },
    ),
    requiredScopes: Type.Array(Scope, {
      default: [],
      uniqueItems: true,
      description: 'Scopes every request must carry; each must be listed in `scopes`.',
    }),
    allowedOrigins: Type.Array(Type.String({ pattern: '^https?://[^/]+$' }), {
      default: [],
      uniqueItems: true,
      description:
        'Browser origins allowed to call this endpoint (MCPT-01); a request with any other Origin gets 403. ' +
        'The gateway\'s own origin is always allowed.',
    }),
    maxBodyBytes: Type.Integer({
      minimum: 1024,
      default: 1048576,
      description: 'Largest request body accepted (413 above it).',
    }),
    identityHeaders: Type.Object(
      {
        subject: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]+$', description: 'Carries the token `sub`.' })),
        clientId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]+$', description: 'Carries `client_id`.' })),
        scope: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]+$', description: 'Carries the granted scopes.' })),
        email: Type.Optional(
          Type.String({ pattern: '^[A-Za-z0-9-]+$', description: 'Carries the token `email` (a verified address), when known.' }),
        ),
        groups: Type.Optional(
          Type.String({
            pattern: '^[A-Za-z0-9-]+$',
            description: 'Carries the token `groups`, comma-joined; a group name with a comma or control character is left out.',
          }),
        ),
      },
      {
        ...strict,
        default: {},
        description:
          'Request headers that tell the upstream who is calling. Inbound copies of these headers are always removed.',
      },
    ),
    sessionIdleSeconds: Seconds(
      'How long an upstream Mcp-Session-Id stays bound to its creator without use.',
      86400,
    ),
    timeouts: Type.Object(
      {
        connectMs: Type.Integer({ minimum: 100, default: 5000, description: 'Connecting to the upstream.' }),
        responseHeadersMs: Type.Integer({
          minimum: 100,
          default: 60000,
          description: 'Waiting for the upstream response headers (504 after). A started stream is never cut.',
        }),
      },
      { ...strict, default: {}, description: 'Upstream time limits (504 when exceeded).' },
    ),
    documentation: Type.Optional(Url('Published as `resource_documentation`.')),
    access: Type.Optional(AccessSchema),
    policy: Policy,
  },
  strict,
)

const StaticClient = Type.Object(
  {
    clientId: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$',
      description:
        'The client identifier (never URL-shaped: URLs are Client ID Metadata Documents; never starting with ' +
        '"dcr.": that prefix belongs to dynamically registered clients).',
    }),
    name: Type.String({ minLength: 1, maxLength: 100, description: 'Shown on the consent page.' }),
    redirectUris: Type.Array(Type.String({ format: 'uri' }), {
      minItems: 1,
      uniqueItems: true,
      description:
        'Exact redirect URIs (https, or http on localhost/127.0.0.1/[::1] where any port matches), or a ' +
        'private-use scheme of a native app.',
    }),
    tokenEndpointAuthMethod: Type.Union(
      [Type.Literal('none'), Type.Literal('client_secret_basic'), Type.Literal('client_secret_post')],
      { default: 'none', description: 'none for public clients (PKCE alone); a secret for confidential ones.' },
    ),
    secret: Type.Optional(
      Type.String({ minLength: 32, description: 'The client secret, from the environment (${NAME}); at least 32 characters.' }),
    ),
    grantTypes: Type.Array(Type.Union([Type.Literal('authorization_code'), Type.Literal('refresh_token')]), {
      default: ['authorization_code', 'refresh_token'],
      uniqueItems: true,
      description: 'Refresh tokens are issued only to clients that list refresh_token.',
    }),
  },
  strict,
)

/** Dynamically registered client ids start with this; pre-registered ids may not (load.ts). */
export const REGISTERED_CLIENT_ID_PREFIX = 'dcr.'

const Registration = Type.Object(
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

const AuthorizationServer = Type.Object(
  {
    codeTtlSeconds: Seconds('Lifetime of an authorization code (single use).', 60, 10),
    requestTtlSeconds: Seconds('How long a person has to log in and consent.', 600, 60),
    refreshTokenTtlSeconds: Seconds('Lifetime of a refresh token; each use rotates it.', 2592000, 60),
    refreshReuseGraceSeconds: Type.Integer({
      minimum: 0,
      maximum: 300,
      default: 10,
      description:
        'A rotated refresh token presented again within this time is refused without consequence (two tabs ' +
        'refreshing at once); later, its reuse revokes the whole grant (OAuth 2.1 §4.3.1).',
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

export const ConfigSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'Path or URL of this schema, for editors.' })),
    publicUrl: Type.String({
      pattern: '^https?://[^/?#]+/?$',
      description:
        'The public origin clients use, e.g. https://mcp.example.com. Every published URL is built from it, ' +
        'never from Host or X-Forwarded-* headers. http is accepted for loopback hosts only (development).',
    }),
    issuer: Type.Optional(
      Url('The issuer identifier of the built-in authorization server; defaults to publicUrl without a slash.'),
    ),
    listen: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1', description: 'Address to bind; 0.0.0.0 in containers.' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'TCP port; 0 picks a free one.' }),
      },
      { ...strict, default: {}, description: 'Where the gateway accepts connections.' },
    ),
    trustProxy: Type.Union([Type.Boolean(), Type.Integer({ minimum: 1 }), Type.Array(Type.String())], {
      default: false,
      description:
        'Which reverse proxies may set X-Forwarded-For (client addresses in logs and limits): false, a hop ' +
        'count, or a list of addresses/CIDRs. Public URLs never come from these headers.',
    }),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info', description: 'JSON log lines at this level and above go to stdout.' },
        ),
      },
      { ...strict, default: {}, description: 'Logging. Tokens, cookies and codes are always redacted.' },
    ),
    store: Store,
    keys: Type.Array(SigningKey, {
      default: [],
      description:
        'Signing keys of the built-in authorization server. When empty, a development key is generated ' +
        'and kept in the store (with a warning): fine for trials, not for production.',
    }),
    externalIssuer: Type.Optional(ExternalIssuer),
    accessTokens: Type.Object(
      {
        ttlSeconds: Seconds('Lifetime of issued access tokens (MCPA-63: short).', 300, 30),
        clockToleranceSeconds: Type.Integer({
          minimum: 0,
          maximum: 300,
          default: 10,
          description: 'Leeway for exp/nbf/iat when checking tokens.',
        }),
      },
      { ...strict, default: {}, description: 'Access tokens issued and accepted by the gateway.' },
    ),
    shutdown: Type.Object(
      {
        graceSeconds: Seconds('How long in-flight requests may finish after SIGTERM before streams are cut.', 10, 0),
      },
      {
        ...strict,
        default: {},
        description:
          'Graceful shutdown: readiness fails at once, notification streams end at once (clients reconnect), ' +
          'calls in flight get the grace period.',
      },
    ),
    authorizationServer: AuthorizationServer,
    cimd: CimdSchema,
    clients: Type.Array(StaticClient, { default: [], description: 'Pre-registered OAuth clients.' }),
    registration: Registration,
    login: LoginSchema,
    rateLimits: RateLimitsSchema,
    audit: AuditSchema,
    metrics: MetricsSchema,
    tracing: TracingSchema,
    resources: Type.Array(Resource, { minItems: 1, description: 'The protected MCP endpoints.' }),
  },
  { ...strict, title: 'Gatehouse configuration' },
)

export type Config = Static<typeof ConfigSchema>
export type ResourceConfig = Static<typeof Resource>
export type PolicyRuleConfig = Static<typeof PolicyRule>
export type StoreConfig = Static<typeof Store>
export type RedisStoreConfig = Static<typeof RedisStore>
export type SigningKeyConfig = Static<typeof SigningKey>
export type ExternalIssuerConfig = Static<typeof ExternalIssuer>
export type StaticClientConfig = Static<typeof StaticClient>
export type { StaticUserConfig } from './login-schema.js'
export type RegistrationConfig = Static<typeof Registration>

/**
 * The published JSON Schema document, for editors: a property with a default is not required
 * of the person writing the file (the loader fills it in before it checks `required`).
 */
export function jsonSchema(): object {
  return withOptionalDefaults(JSON.parse(JSON.stringify(ConfigSchema satisfies TSchema)))
}

function withOptionalDefaults(node: unknown): any {
  if (Array.isArray(node)) return node.map(withOptionalDefaults)
  if (node === null || typeof node !== 'object') return node
  const out: Record<string, any> = {}
  for (const [k, v] of Object.entries(node)) out[k] = withOptionalDefaults(v)
  if (Array.isArray(out.required) && out.properties) {
    out.required = out.required.filter((name: string) => out.properties[name]?.default === undefined)
    if (out.required.length === 0) delete out.required
  }
  return out
}
