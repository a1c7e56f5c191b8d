/**
 * Builds the Fastify application from its parts, in a fixed, visible order. Knows nothing
 * of processes, signals or ports (main.ts does).
 */
import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { AuditTrail } from './audit/events.js'
import type { GatewayConfig } from './config/load.js'
import { registerErrorHandling } from './http/error-handler.js'
import { registerHealth, type HealthState } from './http/health.js'
import { StoreHealth } from './http/store-health.js'
import { registerSecurityHeaders } from './http/security-headers.js'
import type { Keystore } from './keys/keystore.js'
import type { RevocationList } from './keys/revocations.js'
import type { AccessTokenVerifier } from './keys/tokens.js'
import type { GatewayMetrics } from './metrics/gateway-metrics.js'
import { registerHttpMetrics } from './metrics/plugin.js'
import { RouteClassifier } from './metrics/route-class.js'
import { oauthPlugin } from './oauth/plugin.js'
import { resourcePlugin } from './resource/plugin.js'
import type { Store } from './store/store.js'
import { registerRouteSpans } from './tracing/plugin.js'
import { tracingActive } from './tracing/span.js'
import { requestLogger, writeAccessLine } from './log.js'

export interface AppDeps {
  config: GatewayConfig
  store: Store
  verifier: AccessTokenVerifier
  /** The built-in authorization server's keys; absent in external-issuer mode. */
  keystore: Keystore | undefined
  logger: Logger
  health?: HealthState
  /** Where security decisions are recorded; main.ts builds it from `audit`. Default: recorded nowhere. */
  audit?: AuditTrail
  /** The gateway's metrics, when `metrics.enabled`; main.ts serves them on their own listener. */
  metrics?: GatewayMetrics
  /** Revoked grants, read by `verifier` and written by the authorization server (§11.4 REV-01). */
  revocations?: RevocationList
  /** The store's health as the probes report it; main.ts starts its periodic check. */
  storeHealth?: StoreHealth
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export async function buildApp({ config, store, verifier, keystore, logger, health, audit = new AuditTrail(), metrics, revocations, storeHealth }: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Fastify takes a hop count too, though its type declaration omits it.
    trustProxy: config.trustProxy as boolean | string[],
    // A caller's request id is kept for correlation when it is harmless, otherwise replaced.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    // One access line per request (below) instead of Fastify's two: logging is most of the
    // gateway's own CPU per call at info level.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (parent, bindings, options) => requestLogger(parent as Logger, bindings, options),
    return503OnClosing: true,
    bodyLimit: 64 * 1024,
  })
  // Callback hooks, not async ones: no promise per request for work that never waits.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    writeAccessLine(logger, {
      reqId: request.id,
      method: request.method,
      url: request.url,
      remoteAddress: request.ip,
      statusCode: reply.statusCode,
      responseTime: reply.elapsedTime,
    })
    done()
  })

  // Before every route plugin, so each route inherits the hooks. Both cost nothing when off.
  if (metrics || tracingActive()) {
    const routes = new RouteClassifier(config.resources, config.defaultResource?.id)
    if (metrics) registerHttpMetrics(app, metrics, routes)
    if (tracingActive()) registerRouteSpans(app, routes)
  }

  registerErrorHandling(app)
  registerSecurityHeaders(app)
  registerHealth(app, storeHealth ?? new StoreHealth(store, logger), health ?? { shuttingDown: false })
  const issuer = config.externalIssuer?.issuer ?? config.issuer
  await app.register(resourcePlugin, { config, issuer, store, verifier, audit, metrics, ...(keystore && { upstreamSigner: keystore.active }) })
  if (keystore) await app.register(oauthPlugin, { config, store, keystore, verifier, revocations, audit })
  return app
}
