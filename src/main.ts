/**
 * Runs a gateway process: config → store → keys → app → listen, and the graceful shutdown
 * that undoes it (stop accepting, let requests finish, end streams, close the store).
 */
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { buildApp } from './app.js'
import { AuditTrail } from './audit/events.js'
import { createAuditSink } from './audit/sink.js'
import type { GatewayConfig } from './config/load.js'
import type { HealthState } from './http/health.js'
import { StoreHealth } from './http/store-health.js'
import { loadKeystore, type Keystore } from './keys/keystore.js'
import { RevocationList, revocationKeepMs } from './keys/revocations.js'
import { AccessTokenVerifier } from './keys/tokens.js'
import { createLogger } from './log.js'
import { countAuditEvents } from './metrics/audit-counters.js'
import { GatewayMetrics } from './metrics/gateway-metrics.js'
import { startMetricsListener, type MetricsListener } from './metrics/server.js'
import { createStore } from './store/create.js'
import { InstrumentedStore } from './metrics/instrumented-store.js'
import type { Store } from './store/store.js'
import { startTracing, stopTracing } from './tracing/start.js'

export interface Gateway {
  readonly app: FastifyInstance
  readonly store: Store
  /** Undefined in external-issuer mode, where the gateway signs nothing. */
  readonly keystore: Keystore | undefined
  /** The audit trail: listeners (metrics, tests) may observe every event. */
  readonly audit: AuditTrail
  /** The address actually bound, e.g. http://127.0.0.1:8080. */
  readonly address: string
  /** The metrics listener's address (e.g. http://0.0.0.0:9464), when `metrics.enabled`. */
  readonly metricsAddress: string | undefined
  readonly metrics: GatewayMetrics | undefined
  /** Graceful shutdown; resolves when every connection and the store are closed. */
  close(): Promise<void>
}

export interface StartOptions {
  logger?: Logger
  env?: NodeJS.ProcessEnv
}

export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.log.level)
  for (const warning of config.warnings) logger.warn(`DEVELOPMENT SETTING: ${warning}`)

  // Opened first: a sink that cannot be opened stops the start before anything else is set up.
  const auditSink = createAuditSink(config.audit, logger)
  const audit = new AuditTrail(auditSink.write)
  const metrics = config.metrics.enabled ? new GatewayMetrics({ resourceIds: config.resources.map((r) => r.id) }) : undefined
  if (metrics) countAuditEvents(audit, metrics, { resources: config.resources })
  const store = metrics ? new InstrumentedStore(createStore(config.store, logger), metrics) : createStore(config.store, logger)
  let keystore: Keystore | undefined
  let verifier: AccessTokenVerifier
  let revocations: RevocationList | undefined
  try {
    if (config.externalIssuer) {
      verifier = AccessTokenVerifier.forRemoteIssuer({
        ...config.externalIssuer,
        clockToleranceSeconds: config.accessTokens.clockToleranceSeconds,
      })
    } else {
      keystore = await loadKeystore(config.keys, store, options.env)
      revocations = new RevocationList(store, revocationKeepMs(config.accessTokens), logger)
      // Before the first request: a token revoked before this replica started is refused from the start.
      await revocations.start()
      verifier = AccessTokenVerifier.forKeystore(keystore, config.issuer, config.accessTokens.clockToleranceSeconds, revocations)
    }
  } catch (err) {
    revocations?.close()
    await store.close()
    auditSink.close()
    throw err
  }

  const health: HealthState = { shuttingDown: false }
  const storeHealth = new StoreHealth(store, logger, metrics?.storeUp)
  storeHealth.start()
  // Before the app is built: its hooks and the proxy are instrumented only when a tracer is installed.
  const tracer = await startTracing(config.tracing, logger)
  const app = await buildApp({ config, store, verifier, keystore, logger, health, audit, metrics, storeHealth, ...(revocations && { revocations }) })
  let metricsListener: MetricsListener | undefined
  // logrotate moves the file away and sends SIGHUP: the sink opens the path again.
  const reopenAudit = () => auditSink.reopen()
  if (config.audit.sink === 'file') process.on('SIGHUP', reopenAudit)
  try {
    if (metrics) {
      metricsListener = await startMetricsListener(metrics, { ...config.metrics.listen, path: config.metrics.path })
      logger.info({ address: metricsListener.address, path: config.metrics.path }, 'metrics listener')
    }
    await app.listen({ host: config.listen.host, port: config.listen.port })
  } catch (err) {
    await metricsListener?.close()
    await stopTracing(tracer)
    await app.close()
    revocations?.close()
    storeHealth.close()
    await store.close()
    process.off('SIGHUP', reopenAudit)
    auditSink.close()
    throw err
  }
  const bound = app.server.address()
  const address =
    typeof bound === 'object' && bound
      ? `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`
      : String(bound)

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      health.shuttingDown = true
      logger.info({ graceSeconds: config.shutdown.graceSeconds }, 'shutting down')
      // Requests still running after the grace period are cut rather than holding the process.
      const deadline = setTimeout(() => app.server.closeAllConnections(), config.shutdown.graceSeconds * 1000)
      // Keep-alive sockets whose last request finishes during shutdown would otherwise hold
      // the server open until their idle timeout.
      const idleSweep = setInterval(() => app.server.closeIdleConnections(), 100)
      deadline.unref()
      idleSweep.unref()
      try {
        await app.close()
      } finally {
        clearTimeout(deadline)
        clearInterval(idleSweep)
        revocations?.close()
        storeHealth.close()
        await store.close()
        process.off('SIGHUP', reopenAudit)
        auditSink.close()
        // Last: a final scrape can see the drain, and the spans of the last requests are flushed.
        await metricsListener?.close()
        await stopTracing(tracer)
      }
      logger.info('stopped')
    })()
    return closing
  }
  return { app, store, keystore, audit, address, metricsAddress: metricsListener?.address, metrics, close }
}

/** Ends the process gracefully on SIGTERM/SIGINT; a second signal ends it at once. */
export function closeOnSignals(gateway: Gateway, logger: Logger): void {
  let received = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) process.exit(1)
    received = true
    logger.info({ signal }, 'signal received')
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}
