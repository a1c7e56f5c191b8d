/**
 * `workloadIdentity`: the platforms whose workload tokens (Kubernetes projected service-account
 * tokens, GitHub Actions OIDC tokens, SPIFFE JWT-SVIDs) the token endpoint accepts as a
 * jwt-bearer grant with no client authentication (SEP-1933, draft; RFC 7523 §2.1; WIF-01..06).
 * Trust is per issuer; the claim rules say which workload may reach which resource and scopes
 * (WIF-03).
 */
import { Type, type Static } from '@sinclair/typebox'
import { ASSERTION_ALGORITHMS } from './cimd-schema.js'
import { Scope, strict } from './schema-kit.js'

const ClaimPattern = Type.String({ minLength: 1, maxLength: 512 })

const WorkloadRule = Type.Object(
  {
    workload: Type.String({
      pattern: '^[A-Za-z0-9._-]{1,64}$',
      description:
        'The workload principal this rule names: policy rules admit it with `workloads: [<name>]`, as they admit ' +
        'machine clients with `clients`. Tokens carry client_id workload:<name>.',
    }),
    match: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Union([ClaimPattern, Type.Array(ClaimPattern, { minItems: 1 })]), {
      minProperties: 1,
      description:
        'Claim matchers; every one must hold. The key is a claim name, or a dotted path into nested claims ' +
        '(kubernetes.io.namespace, kubernetes.io.serviceaccount.name: a key with dots of its own is found too). ' +
        'The value is a pattern or a list of patterns (any may match), compared case-sensitively with the claim ' +
        '(a string, number or boolean; for an array claim, any element); `*` matches any run of characters, ' +
        'everything else is literal. Examples: sub: system:serviceaccount:ci:deployer; repository: acme/app; ' +
        'ref: refs/heads/main; sub: spiffe://prod.example.com/ns/ci/sa/*.',
    }),
    resources: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      uniqueItems: true,
      description: 'The ids of the resources this workload may get tokens for; any other is invalid_target.',
    }),
    scopes: Type.Optional(
      Type.Array(Scope, {
        uniqueItems: true,
        description:
          'The scopes it may be granted (∩ what the resource knows). Absent: every scope of the resource. A request ' +
          'for more is narrowed to these; nothing left of a non-empty request is invalid_scope.',
      }),
    ),
  },
  strict,
)

const WorkloadIssuer = Type.Object(
  {
    id: Type.String({
      pattern: '^[a-z0-9][a-z0-9-]{0,31}$',
      description:
        'A stable short name, unique among workload issuers: a workload\'s subject is workload:<id>:<its sub>, so two ' +
        'issuers\' equal sub never become one subject (WIF-05).',
    }),
    issuer: Type.String({
      minLength: 1,
      description:
        'The issuer identifier: the token\'s iss must equal it exactly (https://token.actions.githubusercontent.com; ' +
        'a cluster\'s service-account issuer, e.g. https://kubernetes.default.svc.cluster.local).',
    }),
    discovery: Type.Boolean({
      default: false,
      description:
        'Find the keys through OpenID discovery: <issuer>/.well-known/openid-configuration, whose issuer must equal ' +
        'this one and whose jwks_uri holds the keys. One of discovery, jwksUri, jwksFile.',
    }),
    jwksUri: Type.Optional(Type.String({ format: 'uri', description: 'Where the issuer publishes its keys (https; http only on loopback).' })),
    jwksFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'A JWKS file, read at start and again on an unknown kid: for a cluster whose issuer is not reachable from ' +
          'inside (kubectl get --raw /openid/v1/jwks, mounted from a ConfigMap or Secret).',
      }),
    ),
    allowPrivateAddresses: Type.Boolean({
      default: false,
      description:
        'Fetch discovery and keys from loopback or private addresses too (an in-cluster issuer, SPIRE\'s OIDC ' +
        'discovery provider on an internal address). Off: such an address is refused as in every outbound fetch.',
    }),
    audience: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The audience the tokens must carry instead of the gateway\'s issuer identifier (its trailing-slash ' +
          'variant is accepted too). The token endpoint URL is always accepted (RFC 7523 §3); nothing else is, ' +
          'nor an aud array with any other member (WIF-02).',
      }),
    ),
    algorithms: Type.Array(Type.Union(ASSERTION_ALGORITHMS.map((a) => Type.Literal(a))), {
      minItems: 1,
      uniqueItems: true,
      default: ['RS256', 'ES256', 'PS256', 'EdDSA'],
      description: 'JWS algorithms accepted: asymmetric only (never none or HS*).',
    }),
    maxLifetimeSeconds: Type.Integer({
      minimum: 60,
      maximum: 86400,
      default: 3600,
      description:
        'Longest accepted token lifetime (exp − iat, or exp − now without iat). Kubernetes projected tokens live ' +
        'expirationSeconds (at least 600); GitHub Actions tokens a few minutes; also how long a used token is remembered.',
    }),
    rules: Type.Array(WorkloadRule, {
      minItems: 1,
      description: 'Checked in order: the first rule whose claims match and whose resources include the requested one decides.',
    }),
  },
  strict,
)

export const WorkloadIdentitySchema = Type.Object(
  {
    issuers: Type.Array(WorkloadIssuer, {
      default: [],
      description:
        'Trusted workload issuers. With any, the token endpoint accepts grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer ' +
        'with a workload JWT (typ absent or JWT) and no client authentication.',
    }),
  },
  {
    ...strict,
    default: {},
    description:
      'Workload identity federation (SEP-1933, draft): workloads present the token their platform signed for them ' +
      'instead of a stored client secret. `gatehouse workload inspect` explains a refusal step by step.',
  },
)

export type WorkloadIdentityConfig = Static<typeof WorkloadIdentitySchema>
export type WorkloadIssuerConfig = Static<typeof WorkloadIssuer>
export type WorkloadRuleConfig = Static<typeof WorkloadRule>

/** Where a workload issuer's keys come from. */
export type WorkloadKeySource = { kind: 'discovery' } | { kind: 'jwksUri'; uri: string } | { kind: 'jwksFile'; file: string }

export function keySourceOf(issuer: WorkloadIssuerConfig): WorkloadKeySource {
  if (issuer.jwksFile !== undefined) return { kind: 'jwksFile', file: issuer.jwksFile }
  if (issuer.jwksUri !== undefined) return { kind: 'jwksUri', uri: issuer.jwksUri }
  return { kind: 'discovery' }
}

/** What the schema cannot say; paths relative to the configuration root. */
export function workloadConfigProblems(workload: WorkloadIdentityConfig, resourceIds: readonly string[], scopesOf: (id: string) => readonly string[]): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = []
  const ids = new Set<string>()
  const issuers = new Set<string>()
  workload.issuers.forEach((issuer, i) => {
    const at = `workloadIdentity.issuers[${i}]`
    const add = (path: string, message: string) => problems.push({ path: `${at}.${path}`, message })
    if (ids.has(issuer.id)) add('id', `"${issuer.id}" is listed twice`)
    ids.add(issuer.id)
    if (issuers.has(issuer.issuer)) add('issuer', 'is listed twice: merge the rules into one entry')
    issuers.add(issuer.issuer)
    const sources = [issuer.discovery, issuer.jwksUri !== undefined, issuer.jwksFile !== undefined].filter(Boolean).length
    if (sources !== 1) add('discovery', 'give exactly one of discovery: true, jwksUri or jwksFile')
    if (issuer.discovery && !secureOrLoopback(issuer.issuer)) add('issuer', 'discovery needs an https issuer (http only on localhost, 127.0.0.1 or [::1])')
    if (issuer.jwksUri !== undefined && !secureOrLoopback(issuer.jwksUri)) add('jwksUri', 'must be https (http only on localhost, 127.0.0.1 or [::1])')
    issuer.rules.forEach((rule, j) => {
      for (const [k, id] of rule.resources.entries()) {
        if (!resourceIds.includes(id)) add(`rules[${j}].resources[${k}]`, `no resource has the id "${id}"`)
      }
      for (const [k, scope] of (rule.scopes ?? []).entries()) {
        if (!rule.resources.some((id) => scopesOf(id).includes(scope))) add(`rules[${j}].scopes[${k}]`, `"${scope}" is not a scope of the rule's resources`)
      }
    })
  })
  return problems
}

export function secureOrLoopback(uri: string): boolean {
  const url = URL.canParse(uri) ? new URL(uri) : undefined
  return url !== undefined && (url.protocol === 'https:' || (url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)))
}
