/**
 * The resource-server role: for every configured resource, its RFC 9728 metadata and the
 * guarded proxy to its upstream MCP server. Never imports the authorization server: in
 * external-issuer mode this plugin is all there is.
 */
import httpProxy from '@fastify/http-proxy'
import type { FastifyInstance } from 'fastify'
import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { AuditTrail, contextOf } from '../audit/events.js'
import type { GatewayConfig, Resource } from '../config/load.js'
import { ForbiddenError, NotFoundError } from '../errors.js'
import { limitMcpCall, RateLimiter } from '../http/rate-limit.js'
import { DpopProofs } from '../keys/dpop.js'
import { DpopNonces } from '../keys/dpop-nonce.js'
import type { SigningKey } from '../keys/keystore.js'
import type { AccessTokenVerifier } from '../keys/tokens.js'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import { UpstreamObserver } from '../metrics/upstream-hop.js'
import { tracingActive } from '../tracing/span.js'
import type { Store } from '../store/store.js'
import { corsHeaders, preflightHeaders } from './cors.js'
import { createGuard } from './guard.js'
import { createPolicyStep } from './policy-step.js'
import { protectedResourceMetadata } from './prm.js'
import { SessionBindings } from './sessions.js'
import { upstreamReplyOptions } from './upstream.js'
import { UpstreamClient } from './upstream-client.js'
import type { Pool } from 'undici'
import { createUpstreamCredentials } from './upstream-credentials.js'

export interface ResourcePluginOptions {
  config: GatewayConfig
  /** The issuer named in the metadata: the built-in AS or the external one. */
  issuer: string
  store: Store
  verifier: AccessTokenVerifier
  /** Records bearer refusals, policy decisions and rate-limit refusals. Default: recorded nowhere. */
  audit?: AuditTrail
  /** Upstream outcomes, latency and open streams, when metrics are on. */
  metrics?: GatewayMetrics
  /** The gateway's active signing key, for upstreamAuth.jwt and .exchange (absent in external-issuer mode). */
  upstreamSigner?: SigningKey
}

const PRM_ROOT = '/.well-known/oauth-protected-resource'
const MCP_METHODS = ['GET', 'POST', 'DELETE'] as const

export async function resourcePlugin(app: FastifyInstance, opts: ResourcePluginOptions): Promise<void> {
  const { config, issuer } = opts
  const metadataRoute = (path: string, resource: Resource) => {
    const body = JSON.stringify(protectedResourceMetadata(resource, issuer, config.dpop.algorithms))
    app.get(path, async (_request, reply) => {
      // Public and cacheable (PRM-12); readable by browser-based clients.
      reply.type('application/json').header('cache-control', 'public, max-age=300')
      reply.header('access-control-allow-origin', '*')
      return body
    })
  }
  for (const resource of config.resources) metadataRoute(resource.metadataPath, resource)
  // The root well-known URL serves the default resource (OQ-07), when there is one.
  const rootResource = config.defaultResource
  if (rootResource && rootResource.metadataPath !== PRM_ROOT) metadataRoute(PRM_ROOT, rootResource)

  const streams = new Map<Readable, ServerResponse>()
  app.addHook('preClose', async () => {
    // Notification streams never end by themselves: end them now so clients reconnect to another
    // replica. Calls in flight keep their streams until they finish or the grace period ends.
    for (const [upstreamBody, client] of streams) {
      client.end()
      upstreamBody.destroy()
    }
  })

  for (const resource of config.resources) {
    await app.register(async (scope) => guardedProxy(scope, resource, opts, streams))
  }
}

async function guardedProxy(
  scope: FastifyInstance,
  resource: Resource,
  { config, issuer, store, verifier, upstreamSigner, audit = new AuditTrail(), metrics }: ResourcePluginOptions,
  streams: Map<Readable, ServerResponse>,
): Promise<void> {
  const sessions = new SessionBindings(store, resource.id, resource.sessionIdleSeconds * 1000)
  const ownOrigin = new URL(config.publicUrl).origin
  const dpop = new DpopProofs(
    { ...config.dpop, clockToleranceSeconds: config.accessTokens.clockToleranceSeconds },
    store,
    config.dpop.requireNonce ? new DpopNonces(store) : undefined,
  )
  const guard = createGuard({ resource, verifier, sessions, ownOrigin, audit, dpop, dpopAlgorithms: config.dpop.algorithms })
  const limiter = new RateLimiter(store, audit)
  const mcpLimited = config.rateLimits.enabled && config.rateLimits.mcp.perSubject.requests > 0
  const allowedOrigins = new Set([ownOrigin, ...resource.allowedOrigins])
  const upstream = new URL(resource.upstream)

  // Bodies are read once, bounded, and forwarded as the exact bytes received.
  scope.removeAllContentTypeParsers()
  const asBuffer = { parseAs: 'buffer', bodyLimit: resource.maxBodyBytes } as const
  const keepBytes = (_req: unknown, body: Buffer | string, done: (err: null, body: Buffer | string) => void) => done(null, body)
  // application/json by name as well: Fastify caches the parser it finds for a named type, while
  // a type only the catch-all takes has its header parsed again on every call.
  scope.addContentTypeParser('application/json', asBuffer, keepBytes)
  scope.addContentTypeParser('*', asBuffer, keepBytes)

  // Callback hooks that go on at once when nothing needs waiting for (a known token, no session,
  // no upstream token to sign): a call then makes no promise of its own on the way upstream.
  scope.addHook('onRequest', (request, reply, done) => {
    if (pathOf(request.url) !== resource.path) return done(new NotFoundError('no such endpoint'))
    const cors = corsHeaders(request.headers.origin, allowedOrigins)
    if (cors) reply.headers(cors)
    if (request.method === 'OPTIONS') return done()
    const checked = settle(() => guard(request.raw, contextOf(request)), (principal) => {
      request.principal = principal
      // After the bearer check, so the subject is known; before the body is read.
      if (mcpLimited) return limitMcpCall(request, limiter, config.rateLimits, principal.sub)
    })
    if (checked instanceof Promise) checked.then(() => done(), done)
    else done(checked)
  })

  const policyStep = createPolicyStep(resource, audit)
  const credentials = createUpstreamCredentials(resource, issuer, upstreamSigner, audit)
  scope.addHook('onClose', async () => credentials.close())
  scope.addHook('preHandler', (request, _reply, done) => {
    if (request.method === 'OPTIONS') return done()
    const ready = settle(
      () => {
        policyStep(request)
        // After the policy step: nothing is signed or exchanged for a call the policy refuses.
        return credentials(request.principal!, contextOf(request))
      },
      (credential) => void (request.upstreamCredential = credential),
    )
    if (ready instanceof Promise) ready.then(() => done(), done)
    else done(ready)
  })

  scope.options(resource.path, async (request, reply) => {
    const headers = preflightHeaders(request.headers, allowedOrigins)
    if (!headers) throw new ForbiddenError('this origin may not call the MCP endpoint')
    reply.code(204).headers(headers)
  })

  const client = new UpstreamClient(upstream.origin, { connectTimeoutMs: resource.timeouts.connectMs, headersTimeoutMs: resource.timeouts.responseHeadersMs })
  scope.addHook('onClose', async () => client.close())

  // Observed only when metrics or tracing is on; otherwise the proxy path has no hop object.
  const hops = metrics || tracingActive() ? new UpstreamObserver(metrics, resource.id) : undefined

  const trackStream = (upstreamBody: Readable, client: ServerResponse) => {
    streams.set(upstreamBody, client)
    upstreamBody.once('close', () => streams.delete(upstreamBody))
  }

  await scope.register(httpProxy, {
    upstream: upstream.origin,
    prefix: resource.path,
    rewritePrefix: upstream.pathname,
    routes: ['/'],
    httpMethods: [...MCP_METHODS],
    proxyPayloads: false,
    // reply-from calls only `request(options, callback)` of what it is given (its lib/request.js).
    undici: client as unknown as Pool,
    disableRequestLogging: true,
    config: { errorFormat: 'jsonrpc', proxied: true },
    replyOptions: upstreamReplyOptions({ resource, sessions, publicUrl: config.publicUrl, trackStream, mayCall: policyStep.mayCall }),
    // The checked bytes go upstream as they are: reply-from would re-encode a JSON body itself.
    // Only a POST body was read by the policy; a DELETE's body (no meaning, RFC 9110 §9.3.5)
    // is not passed on for a server to act on unchecked.
    // Object.assign, not a spread: V8 spreads these options (functions, from http-proxy's own
    // Object.assign) on a slow path, 1.6 µs per call against 0.1 µs.
    handler: (request, reply, dest, options) => {
      if (hops) request.upstreamHop = hops.begin(request.method)
      if (request.method !== 'POST') return reply.from(dest, request.body === undefined ? options : Object.assign({}, options, { body: null }))
      return Buffer.isBuffer(request.body)
        ? reply.from(dest, Object.assign({}, options, { body: request.body, contentType: request.headers['content-type'] ?? 'application/octet-stream' }))
        : reply.from(dest, options)
    },
  })
}

/**
 * Runs `step`, then `then` with its result, waiting only for what returns a promise. Returns
 * undefined when all went through at once, the error when one was thrown, or a promise of both.
 */
function settle<T>(step: () => T | Promise<T>, then: (value: T) => void | Promise<void>): Error | undefined | Promise<void> {
  let value: T | Promise<T>
  try {
    value = step()
    if (!(value instanceof Promise)) {
      const next = then(value)
      if (next instanceof Promise) return next
      return undefined
    }
  } catch (err) {
    return err as Error
  }
  return value.then(then)
}

function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
