/**
 * How commands reach a deployment: its configuration file (--config, or GATEHOUSE_CONFIG) and
 * its store, and for the operator commands the audit trail their changes are recorded in and
 * the name of the operator who made them.
 */
import { userInfo } from 'node:os'
import { AuditTrail, type AuditEvent } from '../audit/events.js'
import { createAuditSink } from '../audit/sink.js'
import { loadConfigFile, type GatewayConfig } from '../config/load.js'
import type { StoreConfig } from '../config/schema.js'
import { createLogger } from '../log.js'
import { createStore } from '../store/create.js'
import { StoreUnavailableError, type Store } from '../store/store.js'
import { UsageError, type CommandIo } from './command.js'
import { connectionWatcher, describeStore, StoreUnreachableError } from './store-errors.js'

/**
 * The sections operator commands read (grants, clients, keys): where the store is, how long
 * tokens and grants live, where audit events and logs go, the signing keys, the issuer. An unset
 * `${VAR}` anywhere else (a client secret, an IdP secret, an upstream credential) is no concern
 * of theirs, so an operator need not hold every secret of the deployment to list its grants.
 */
const OPERATOR_SECTIONS = new Set([
  'publicUrl',
  'issuer',
  'store',
  'authorizationServer',
  'accessTokens',
  'audit',
  'log',
  'keys',
  'registration',
  'externalIssuer',
  'cimd',
])

/** The configuration named by --config FILE or GATEHOUSE_CONFIG; `${VAR}` references read io.env. */
export async function configFile(
  file: string | undefined,
  command: string,
  io: CommandIo,
  mode: 'strict' | 'operator' = 'strict',
): Promise<GatewayConfig> {
  const path = file ?? io.env.GATEHOUSE_CONFIG
  if (!path) throw new UsageError(`${command} needs --config FILE`)
  if (mode === 'strict') return loadConfigFile(path, io.env)
  return loadConfigFile(path, io.env, { tolerateUnset: (at) => !OPERATOR_SECTIONS.has(at.split(/[.[]/)[0] ?? '') })
}

/** Operator commands reach a running deployment through its store; a memory store is out of reach. */
export async function sharedStoreConfig(file: string | undefined, command: string, io: CommandIo): Promise<GatewayConfig> {
  const config = await configFile(file, command, io, 'operator')
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
 * A command's store that has answered once. Its connection errors are not logged (a command
 * reports one plain line, not a reconnect log); an unreachable store is a StoreUnreachableError
 * naming the store and the cause, and so is any store failure while the store is used.
 */
export async function withReachableStore<T>(config: StoreConfig, work: (store: Store) => Promise<T>): Promise<T> {
  const watcher = connectionWatcher()
  const store = createStore(config, watcher.log)
  const unreachable = (err: unknown) =>
    err instanceof StoreUnavailableError ? new StoreUnreachableError(`cannot reach the store (${describeStore(config)}): ${watcher.cause(err)}`) : err
  try {
    await store.ping().catch((err: unknown) => Promise.reject(unreachable(err)))
    return await work(store).catch((err: unknown) => Promise.reject(unreachable(err)))
  } finally {
    await store.close()
  }
}

/**
 * Who did it, for the audit trail: `--actor NAME` when given (a shared admin host, a CI job),
 * else the operating-system user running the command. The OS may know no name for the uid (a
 * container's arbitrary uid without a passwd entry): then `unknown`, and --actor is the way to say.
 */
export function operatorName(given: string | undefined): string {
  if (given !== undefined && given.trim() !== '') return given.trim()
  try {
    return userInfo().username
  } catch {
    return 'unknown'
  }
}

/** One audit event of an operator command that needs no store, to the same place withOperatorStore's go. */
export function recordOperatorEvent(config: GatewayConfig, io: CommandIo, event: AuditEvent): void {
  const sink = createAuditSink(config.audit, createLogger(config.log.level, io.stderr), { stdout: io.stderr })
  try {
    new AuditTrail(sink.write).record(event)
  } finally {
    sink.close()
  }
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
  return withReachableStore(config.store, async (store) => {
    const sink = createAuditSink(config.audit, createLogger(config.log.level, io.stderr), { stdout: io.stderr })
    try {
      return await work(store, new AuditTrail(sink.write))
    } finally {
      sink.close()
    }
  })
}
