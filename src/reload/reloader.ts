/**
 * Reloads the configuration file of a running gateway (issue 17): the new file is loaded and
 * checked completely first, with the same problem collection as `gatehouse check-config`, so an
 * invalid file changes nothing and the log names every problem. A valid one is built into a new
 * app generation (./generations.ts) and swapped in; settings only a restart applies
 * (config/restart-only.ts) keep their running values and are named in the log.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { AuditTrail } from '../audit/events.js'
import { ConfigError, loadConfigFile, type ConfigProblem, type GatewayConfig } from '../config/load.js'
import { restartOnlyChanges, withRunningRestartOnly } from '../config/restart-only.js'
import type { Config } from '../config/schema.js'
import { semanticProblems } from '../config/semantic-checks.js'
import type { AppGenerations } from './generations.js'
import { watchConfigFile, type ConfigWatch, type ConfigWatchOptions } from './watch.js'

/** signal: SIGHUP, reloaded whatever the file holds; file: a change seen by the watch, reloaded only when the content differs. */
export type ReloadTrigger = 'signal' | 'file'

export type ReloadOutcome =
  | { result: 'applied'; restartRequired: string[] }
  | { result: 'refused'; problems: readonly ConfigProblem[] }
  | { result: 'unchanged' }

export interface ConfigReloaderOptions {
  file: string
  env: NodeJS.ProcessEnv
  logger: Logger
  audit: AuditTrail
  /** The configuration the gateway started with. */
  running: GatewayConfig
  generations: AppGenerations
  /** Builds a ready, not listening app from a configuration (main.ts: buildApp with the process's shared parts). */
  build(config: GatewayConfig): Promise<FastifyInstance>
  /** Watch the file and reload on a change; off: SIGHUP only. Default on. */
  watch?: boolean | ConfigWatchOptions
}

export class ConfigReloader {
  #running: GatewayConfig
  #loadedDigest: Promise<string | undefined>
  #queue: Promise<unknown> = Promise.resolve()
  #closed = false
  readonly #watch: ConfigWatch | undefined

  constructor(private readonly options: ConfigReloaderOptions) {
    this.#running = options.running
    this.#loadedDigest = this.#digest()
    const { watch = true } = options
    if (watch) {
      const watchOptions = watch === true ? {} : watch
      this.#watch = watchConfigFile(options.file, () => void this.reload('file'), options.logger, watchOptions)
    }
  }

  /** The configuration new requests are served with. */
  get running(): GatewayConfig {
    return this.#running
  }

  /** One reload at a time, in the order asked. */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const next = this.#queue.then(() => this.#reload(trigger))
    this.#queue = next.catch(() => undefined)
    return next
  }

  /** At shutdown: no reload starts any more, and one under way is not swapped in. */
  close(): void {
    this.#closed = true
    this.#watch?.close()
  }

  async #reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const { file, env, logger, audit } = this.options
    if (this.#closed) return { result: 'unchanged' }
    const digest = await this.#digest()
    // Change events also come for other files of the directory (key Secrets projected beside it).
    if (trigger === 'file' && digest === (await this.#loadedDigest)) return { result: 'unchanged' }
    this.#loadedDigest = Promise.resolve(digest)

    let next: GatewayConfig
    let app: FastifyInstance
    try {
      next = await loadConfigFile(file, env, { checkFiles: true })
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [{ path: '', message: (err as Error).message }]
      return this.#refused(trigger, problems)
    }
    const restartRequired = restartOnlyChanges(this.#running, next)
    const effective = withRunningRestartOnly(this.#running, next)
    // The file was checked with its own restart-only values; what will run mixes in the running
    // ones, so the combination checks run again on that (e.g. an upstream that is the running listener).
    const mixed = restartRequired.length > 0 ? semanticProblems(effective as unknown as Config) : []
    if (mixed.length > 0) {
      const kept = `with the running ${restartRequired.join(', ')} (they need a restart)`
      return this.#refused(trigger, mixed.map((p) => ({ path: p.path, message: `${p.message}, ${kept}` })))
    }
    try {
      app = await this.options.build(effective)
    } catch (err) {
      return this.#refused(trigger, [{ path: '', message: `the gateway could not be built from it: ${(err as Error).message}` }])
    }
    if (this.#closed) {
      await app.close()
      return { result: 'unchanged' }
    }
    this.options.generations.swap(app)
    const previous = this.#running
    this.#running = effective
    for (const warning of effective.warnings) {
      if (!previous.warnings.includes(warning)) logger.warn(`DEVELOPMENT SETTING: ${warning}`)
    }
    logger.info({ file, trigger }, 'configuration reloaded; requests and streams already running keep the previous one')
    if (restartRequired.length > 0) {
      logger.warn(
        { file, settings: restartRequired },
        `configuration reload: ${restartRequired.join(', ')} changed and apply only after a restart; their running values are kept`,
      )
    }
    audit.record({ type: 'config.reload', result: 'applied', trigger, ...(restartRequired.length > 0 && { restartRequired }) })
    return { result: 'applied', restartRequired }
  }

  #refused(trigger: ReloadTrigger, problems: readonly ConfigProblem[]): ReloadOutcome {
    const { file, logger, audit } = this.options
    logger.error(
      { file, trigger, problems },
      `configuration reload refused, nothing changed: ${new ConfigError(file, problems).message}`,
    )
    audit.record({ type: 'config.reload', result: 'refused', trigger, problems: problems.length })
    return { result: 'refused', problems }
  }

  /** The file's content digest; undefined when it cannot be read (the load then reports why). */
  async #digest(): Promise<string | undefined> {
    try {
      return createHash('sha256').update(await readFile(this.options.file)).digest('hex')
    } catch {
      return undefined
    }
  }
}
