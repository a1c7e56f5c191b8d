/** `store`: memory for one process, Redis (standalone, Sentinel or Cluster) for any number of replicas. */
import { Type, type Static } from '@sinclair/typebox'
import { strict } from './schema-kit.js'

export const RedisStore = Type.Object(
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
    sentinelPassword: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Password of the sentinels themselves (their requirepass), when they require one, e.g. ${SENTINEL_PASSWORD}. ' +
          "The primary's and replicas' password stays in the URL.",
      }),
    ),
    clusterNodes: Type.Optional(
      Type.Array(Type.Object({ host: Type.String(), port: Type.Integer({ minimum: 1, maximum: 65535 }) }, strict), {
        minItems: 1,
        description: 'Redis Cluster seed nodes. Gatehouse uses single-key commands only, so any cluster works.',
      }),
    ),
    waitForReplicas: Type.Optional(
      Type.Object(
        {
          replicas: Type.Integer({ minimum: 1, default: 1, description: 'How many replicas must acknowledge each write.' }),
          timeoutMs: Type.Integer({
            minimum: 10,
            default: 200,
            description: 'How long a write waits for them (Redis WAIT); must be shorter than commandTimeoutMs.',
          }),
        },
        {
          ...strict,
          description:
            'Sentinel or Cluster: every write (grants, refresh rotation, taken codes, registered clients, signing key, ' +
            'revocations; not rate-limit counters) waits until this many replicas have it, so a failover to one of them ' +
            'keeps every answered write. A write not acknowledged in time fails with 503. Off by default: replication is asynchronous.',
        },
      ),
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

export const Store = Type.Object(
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


export type StoreConfig = Static<typeof Store>
export type RedisStoreConfig = Static<typeof RedisStore>
