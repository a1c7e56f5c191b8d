/**
 * Runs a gateway process: config → store → keys → app → listen, and the graceful shutdown
 * that undoes it (stop accepting, let requests finish, end streams, close the store). With a
 * configuration file, SIGHUP or a change of the file reloads it live (reload/, issue 17): the
 * parts built here once (store, keys, verifier, audit sink, metrics, tracing) are shared by
 * every app generation.
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
import { ConfigReloader, type ReloadOutcome } from './reload/reloader.js'
import { AppGenerations } from './reload/generations.js'
import type { ConfigWatchOptions } from './reload/watch.js'
import { createStore } from './store/create.js'
import { InstrumentedStore } from './metrics/instrumented-store.js'
import type { Store } from './store/store.js'
import { startTracing, stopTracing } from './tracing/start.js'

export interface Gateway {
  /** The app new requests go to: after a reload, the one built from the new configuration. */
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
  /** Reloads the configuration file, as SIGHUP does; refused when the gateway was started without one. */
  reload(): Promise<ReloadOutcome>
  /** Graceful shutdown; resolves when every connection and the store are closed. */
  close(): Promise<void>
}

export interface StartOptions {
  logger?: Logger
  env?: NodeJS.ProcessEnv
  /** The file `config` was loaded from: SIGHUP and (with `watchConfig`) a change of it reload it live. */
  configFile?: string
  /** Reload when the file changes, not only on SIGHUP. Default on when configFile is given. */
  watchConfig?: boolean | ConfigWatchOptions
}

export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.log.level)
  for (const warning of config.warnings) logger.warn(`DEVELOPMENT SETTING: ${warning}`)

  // Opened first: a sink that cannot be opened stops the start before anything else is set up.
  const auditSink = createAuditSink(config.audit, logger)
  const audit = new AuditTrail(auditSink.write)
  const metrics = config.metrics.enabled ? new GatewayMetrics({ resources: config.resources }) : undefined
  if (metrics) countAuditEvents(audit, metrics)
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
  // Ready, not listening: the generations' listener hands it the requests.
  const build = async (live: GatewayConfig) => {
    // A resource a reload adds is labelled by its id in metrics, as the ones at start are.
    metrics?.addResources(live.resources)
    const built = await buildApp({ config: live, store, verifier, keystore, logger, health, audit, metrics, storeHealth, ...(revocations && { revocations }) })
    await built.ready()
    return built
  }
  let metricsListener: MetricsListener | undefined
  let generations: AppGenerations | undefined
  let reloader: ConfigReloader | undefined
  // SIGHUP (logrotate, a closed terminal, an operator) never ends the gateway: it reopens an audit
  // file logrotate moved away, and reloads the configuration file.
  const onHangup = () => {
    if (config.audit.sink === 'file') auditSink.reopen()
    if (reloader) void reloader.reload('signal')
    else logger.info('SIGHUP: no configuration file to reload')
  }
  process.on('SIGHUP', onHangup)
  try {
    generations = new AppGenerations(await build(config), logger)
    if (options.configFile) {
      reloader = new ConfigReloader({
        file: options.configFile,
        env: options.env ?? process.env,
        logger,
        audit,
        running: config,
        generations,
        build,
        watch: options.watchConfig ?? true,
      })
    }
    if (metrics) {
      metricsListener = await startMetricsListener(metrics, { ...config.metrics.listen, path: config.metrics.path })
      logger.info({ address: metricsListener.address, path: config.metrics.path }, 'metrics listener')
    }
    await generations.listen({ host: config.listen.host, port: config.listen.port })
  } catch (err) {
    reloader?.close()
    await metricsListener?.close()
    await stopTracing(tracer)
    await generations?.close()
    revocations?.close()
    storeHealth.close()
    await store.close()
    process.off('SIGHUP', onHangup)
    auditSink.close()
    throw err
  }
  const live = generations
  const server = live.server
  const bound = server.address()
  const address =
    typeof bound === 'object' && bound
      ? `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`
      : String(bound)

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      health.shuttingDown = true
      reloader?.close()
      logger.info({ graceSeconds: config.shutdown.graceSeconds }, 'shutting down')
      // Requests still running after the grace period are cut rather than holding the process.
      const deadline = setTimeout(() => server.closeAllConnections(), config.shutdown.graceSeconds * 1000)
      // Keep-alive sockets whose last request finishes during shutdown would otherwise hold
      // the server open until their idle timeout.
      const idleSweep = setInterval(() => server.closeIdleConnections(), 100)
      deadline.unref()
      idleSweep.unref()
      try {
        await live.close()
      } finally {
        clearTimeout(deadline)
        clearInterval(idleSweep)
        revocations?.close()
        storeHealth.close()
        await store.close()
        process.off('SIGHUP', onHangup)
        auditSink.close()
        // Last: a final scrape can see the drain, and the spans of the last requests are flushed.
        await metricsListener?.close()
        await stopTracing(tracer)
      }
      logger.info('stopped')
    })()
    return closing
  }
  const reload = (): Promise<ReloadOutcome> =>
    reloader
      ? reloader.reload('signal')
      : Promise.resolve({ result: 'refused', problems: [{ path: '', message: 'the gateway was started without a configuration file' }] })
  return {
    get app() {
      return live.current
    },
    store,
    keystore,
    audit,
    address,
    metricsAddress: metricsListener?.address,
    metrics,
    reload,
    close,
  }
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
