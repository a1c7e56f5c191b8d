/**
 * Configuration sections for running the gateway: rate limits and the audit trail (and the
 * metrics and tracing sections beside them). Kept in their own module and included by schema.ts.
 */
import { Type, type Static } from '@sinclair/typebox'

import { strict } from './schema-kit.js'

/** One limit: at most `requests` per fixed window of `windowSeconds`; 0 requests turns it off. */
const Limit = (description: string, requests: number, windowSeconds: number) =>
  Type.Object(
    {
      requests: Type.Integer({
        minimum: 0,
        default: requests,
        description: 'Requests allowed per window (429 with Retry-After above it); 0 turns this limit off.',
      }),
      windowSeconds: Type.Integer({ minimum: 1, maximum: 86400, default: windowSeconds, description: 'The fixed window.' }),
    },
    { ...strict, default: {}, description },
  )

const PER_ADDRESS =
  'Per client address (request.ip after trustProxy; IPv6 addresses count per /64). Generous: hosted MCP clients ' +
  'and company NATs put many people behind one address.'
const PER_CLIENT =
  'Per client_id as presented (hashed). Tighter than per address: one application gets one budget wherever it ' +
  'calls from. Anyone who knows a client id can spend its budget, so the per-address limit stays on too.'

export const RateLimitsSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description:
        'Count requests in the store (shared by every replica) and answer 429 with Retry-After above the limits. ' +
        'On by default: the authorization endpoints are reachable by anyone (SEC-35, OQ-09).',
    }),
    authorize: Type.Object(
      {
        perAddress: Limit(`${PER_ADDRESS} Counts GET /oauth/authorize, the login and consent forms, the account page and the operator console.`, 600, 60),
        perClient: Limit(
          `${PER_CLIENT} Counts GET /oauth/authorize (the query client_id).`,
          300,
          60,
        ),
      },
      { ...strict, default: {}, description: 'The authorization endpoint and its pages (browser traffic).' },
    ),
    passwordLogin: Type.Object(
      {
        perUsernameAndAddress: Limit(
          'Failed password sign-ins per username from one source address, across replicas, before that name and ' +
            'address wait: 2 s after the next failure, then 4, 8 … (at most the window). A guesser slows down ' +
            'exponentially; nobody else\'s failures slow a person down at their own address. Only failures count.',
          5,
          900,
        ),
        perUsername: Limit(
          'Failed password sign-ins per username from all addresses, across replicas: above it, sign-ins for that ' +
            'name are refused until the window ends, before any password hash is computed. The backstop against ' +
            'guessing spread over many addresses; high enough that one address, held back by its growing delays, ' +
            'cannot reach it.',
          100,
          900,
        ),
      },
      { ...strict, default: {}, description: 'The password form of static users.' },
    ),
    token: Type.Object(
      {
        perAddress: Limit(PER_ADDRESS, 1200, 60),
        perClient: Limit(
          `${PER_CLIENT} The client_id of the form or of Basic credentials, counted before authentication. The ` +
            'default allows 10 refreshes a second, one per user every 5 minutes for 3000 users of one client.',
          600,
          60,
        ),
      },
      { ...strict, default: {}, description: 'POST /oauth/token (server-to-server traffic of hosted clients).' },
    ),
    mcp: Type.Object(
      {
        perSubject: Limit(
          'Per token subject (sub), after the bearer check, across all resources. Off by default (requests 0): ' +
            'every call already carries a token the gateway issued, and each check adds a store round trip to ' +
            'every call, which stateless MCP calls otherwise never make. Agents make many calls: for example ' +
            '1200 per 60 s allows 20 a second.',
          0,
          60,
        ),
      },
      { ...strict, default: {}, description: 'The protected MCP endpoints.' },
    ),
  },
  {
    ...strict,
    default: {},
    description:
      'Rate limits (fixed windows counted in the store). Metadata-document fetches happen only inside ' +
      '/oauth/authorize and /oauth/token, so these limits bound them per address and per client id. Dynamic ' +
      'registration has its own limit, registration.rateLimit, counted the same way.',
  },
)

export const AuditSchema = Type.Object(
  {
    sink: Type.Union([Type.Literal('log'), Type.Literal('stdout'), Type.Literal('file')], {
      default: 'log',
      description:
        'Where audit events go (docs/audit-events.md): log = the main log at info level, marked by an `audit` ' +
        'member (dropped when log.level is above info); stdout = a separate JSON stream on standard output, ' +
        'whatever log.level says; file = appended to `file`, reopened on SIGHUP (logrotate).',
    }),
    file: Type.Optional(Type.String({ minLength: 1, description: 'The file of sink: file (created if absent, appended to).' })),
  },
  {
    ...strict,
    default: {},
    description: 'The audit trail: one JSON line per security decision, never a token, code, secret or password.',
    if: { required: ['sink'], properties: { sink: { const: 'file' } } },
    then: { required: ['file'] },
  },
)

export type RateLimitsConfig = Static<typeof RateLimitsSchema>
export type RateLimitConfig = RateLimitsConfig['token']['perAddress']
export type AuditConfig = Static<typeof AuditSchema>

// ---- Metrics and tracing (the observability sections) ----

export const MetricsSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description:
        'Serve Prometheus metrics on a listener of their own (never on the main port). Off by default: a ' +
        'second open port is the operator\'s decision.',
    }),
    listen: Type.Object(
      {
        host: Type.String({
          default: '0.0.0.0',
          description:
            'Address of the metrics listener. Every address by default, because the scraper runs on another ' +
            'host or pod; the listener is separate precisely so that the network (no Service/Ingress route, a ' +
            'NetworkPolicy, a firewall) keeps it private. Use 127.0.0.1 for a scraper on the same host. The ' +
            'metrics carry no identifiers, tokens or URLs, only bounded labels.',
        }),
        port: Type.Integer({
          minimum: 0,
          maximum: 65535,
          default: 9464,
          description: 'TCP port of the metrics listener (9464: the Prometheus exporter convention, as in the Helm chart); 0 picks a free one.',
        }),
      },
      { ...strict, default: {}, description: 'Where the metrics listener accepts connections.' },
    ),
    path: Type.String({
      pattern: '^/[A-Za-z0-9._~/-]*$',
      default: '/metrics',
      description: 'Path of the Prometheus text exposition on the metrics listener.',
    }),
  },
  { ...strict, default: {}, description: 'Prometheus metrics (README, Operations: Metrics).' },
)

export const TracingSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description:
        'Export OpenTelemetry spans (authorize, token, cimd.fetch, upstream) over OTLP/HTTP. Off by default; ' +
        'when off, no tracing code is loaded and each instrumented step costs one check of a variable.',
    }),
    otlpEndpoint: Type.String({
      format: 'uri',
      default: 'http://127.0.0.1:4318/v1/traces',
      description:
        'The OTLP/HTTP traces URL of the collector (JSON encoding), e.g. http://otel-collector:4318/v1/traces. ' +
        'Default: a collector agent on the same host.',
    }),
    serviceName: Type.String({
      minLength: 1,
      maxLength: 128,
      default: 'gatehouse',
      description: 'The service.name resource attribute of every span.',
    }),
    sampleRatio: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 1,
      description:
        'Share of traces recorded, decided at the gateway (0..1). 1 by default: tracing is off unless someone ' +
        'turns it on to look at something, and then every trace should be there; lower it on busy gateways.',
    }),
  },
  { ...strict, default: {}, description: 'OpenTelemetry tracing (README, Operations: Tracing).' },
)

export type MetricsConfig = Static<typeof MetricsSchema>
export type TracingConfig = Static<typeof TracingSchema>
