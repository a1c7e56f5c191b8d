/**
 * The configuration schema: the single source of the YAML's shape, its defaults and its
 * documentation. `npm run schema` writes it to config/gatehouse.schema.json for editors;
 * a test keeps that file in sync.
 *
 * Every property with a default is filled in by the loader, so the TypeScript type `Config`
 * can treat it as present.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { AdminSchema } from './admin-schema.js'
import { AuthorizationServer, Registration, StaticClient } from './authorization-server-schema.js'
import { CimdSchema } from './cimd-schema.js'
import { EnterpriseSchema } from './enterprise-schema.js'
import { DpopSchema, ExternalIssuer, SigningKey } from './keys-schema.js'
import { LoginSchema } from './login-schema.js'
import { AuditSchema, MetricsSchema, RateLimitsSchema, TracingSchema } from './operations-schema.js'
import { Resource } from './resource-schema.js'
import { Seconds, strict, Url } from './schema-kit.js'
import { Store } from './store-schema.js'
import { WorkloadIdentitySchema } from './workload-schema.js'

export { REGISTERED_CLIENT_ID_PREFIX } from './authorization-server-schema.js'
export type { RegistrationConfig, StaticClientConfig } from './authorization-server-schema.js'
export type { ExternalIssuerConfig, SigningKeyConfig } from './keys-schema.js'
export type { StaticUserConfig } from './login-schema.js'
export type { PolicyRuleConfig, ResourceConfig } from './resource-schema.js'
export type { RedisStoreConfig, StoreConfig } from './store-schema.js'

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
    dpop: DpopSchema,
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
    enterpriseAuthorization: EnterpriseSchema,
    workloadIdentity: WorkloadIdentitySchema,
    login: LoginSchema,
    rateLimits: RateLimitsSchema,
    audit: AuditSchema,
    metrics: MetricsSchema,
    tracing: TracingSchema,
    admin: AdminSchema,
    resources: Type.Array(Resource, { minItems: 1, description: 'The protected MCP endpoints.' }),
  },
  { ...strict, title: 'Gatehouse configuration' },
)

export type Config = Static<typeof ConfigSchema>

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
