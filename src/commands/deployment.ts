/**
 * How commands reach a deployment: its configuration file (--config, or GATEHOUSE_CONFIG) and
 * its store, and for the operator commands the audit trail their changes are recorded in.
 */
import { AuditTrail } from '../audit/events.js'
import { createAuditSink } from '../audit/sink.js'
import { loadConfigFile, type GatewayConfig } from '../config/load.js'
import type { StoreConfig } from '../config/schema.js'
import { createLogger } from '../log.js'
import { createStore } from '../store/create.js'
import type { Store } from '../store/store.js'
import { UsageError, type CommandIo } from './command.js'

/** The configuration named by --config FILE or GATEHOUSE_CONFIG; `${VAR}` references read io.env. */
export async function configFile(file: string | undefined, command: string, io: CommandIo): Promise<GatewayConfig> {
  const path = file ?? io.env.GATEHOUSE_CONFIG
  if (!path) throw new UsageError(`${command} needs --config FILE`)
  return loadConfigFile(path, io.env)
}

/** Operator commands reach a running deployment through its store; a memory store is out of reach. */
export async function sharedStoreConfig(file: string | undefined, command: string, io: CommandIo): Promise<GatewayConfig> {
  const config = await configFile(file, command, io)
  if (config.store.type === 'memory') {
    throw new UsageError(`${command} works on the Redis store of a deployment; a memory store lives inside its process`)
  }
  return config
}

/** A command's store. It logs errors only, on standard output like the gateway's own log. */
export function openStore(config: StoreConfig, io: CommandIo): Store {
  return createStore(config, createLogger('error', io.stdout))
}

/**
 * An operator command's store and audit trail. Its events go to the configured file, or to
 * standard error with the log and stdout sinks (standard output is the command's answer).
 */
export async function withOperatorStore(
  config: GatewayConfig,
  io: CommandIo,
  work: (store: Store, audit: AuditTrail) => Promise<number>,
): Promise<number> {
  const sink = createAuditSink(config.audit, createLogger(config.log.level, io.stderr), { stdout: io.stderr })
  const store = openStore(config.store, io)
  try {
    return await work(store, new AuditTrail(sink.write))
  } finally {
    await store.close()
    sink.close()
  }
}
