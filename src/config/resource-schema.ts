/** `resources`: the protected MCP endpoints, their upstreams, scopes, access rules and call policy. */
import { Type, type Static } from '@sinclair/typebox'
import { AccessSchema } from './login-schema.js'
import { Scope, Seconds, strict, Url } from './schema-kit.js'
import { UpstreamAuth } from './upstream-auth-schema.js'

export const Pattern = (description: string) =>
  Type.String({ minLength: 1, maxLength: 512, description: `${description} \`*\` matches any run of characters.` })

export const PolicyRule = Type.Object(
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
    reason: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 300,
        description:
          'Why this rule refuses a call, in words an agent (and the person behind it) can act on; sent in the JSON-RPC ' +
          'error of every call it refuses. Public: never put a secret here. Default: the rule\'s id.',
      }),
    ),
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
            'Who may make a matching call (all given conditions must hold), from the token\'s sub, email and groups claims. ' +
            'Never matches a machine client (client_credentials) or a workload (workloadIdentity).',
        },
      ),
    ),
    clients: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Machine clients (client_credentials, by client id) that may make a matching call. With users, a call ' +
          'is allowed to the people users admits and to these clients; alone, to these clients and nobody else.',
      }),
    ),
    workloads: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Workloads (workloadIdentity rules, by their workload name) that may make a matching call, beside users and ' +
          'clients. A workload is admitted only by this list: users and clients never match it.',
      }),
    ),
  },
  strict,
)

export const Policy = Type.Object(
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

export const Resource = Type.Object(
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
    upstreamAuth: Type.Optional(UpstreamAuth),
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
    sseKeepAliveSeconds: Type.Integer({
      minimum: 0,
      maximum: 3600,
      default: 0,
      description:
        'Seconds of quiet after which an event stream gets a keep-alive comment (only between events), so that a load balancer\'s idle timeout does not close a quiet notification stream; set it below that timeout (e.g. 25 behind a 60 s one). 0: off.',
    }),
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


export type ResourceConfig = Static<typeof Resource>
export type PolicyRuleConfig = Static<typeof PolicyRule>
