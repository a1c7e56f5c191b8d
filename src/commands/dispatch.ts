/**
 * From a command word to its command, and from a command's failure to the exit code and the
 * one line an operator reads. The binary (src/cli.ts) and in-process tests both come through here.
 */
import { UsageError, type Command, type CommandIo } from './command.js'
import { STORE_UNREACHABLE, StoreUnreachableError } from './store-errors.js'
import { packageVersion } from './version.js'

/**
 * In the order of the usage text. Loaded on use: `hash-password` or `keys generate` need not
 * load the gateway. A Map: a word like `constructor` must not find anything.
 */
const COMMANDS = new Map<string, () => Promise<Command>>([
  ['serve', () => import('./serve.js')],
  ['check-config', () => import('./check-config.js')],
  ['token', () => import('./token.js')],
  ['keys', () => import('./keys.js')],
  ['hash-password', () => import('./hash-password.js')],
  ['grants', () => import('./grants.js')],
  ['clients', () => import('./clients.js')],
  ['cimd', () => import('./cimd.js')],
  ['workload', () => import('./workload.js')],
])

/** The command words, for tests that go through every command. */
export const COMMAND_WORDS: readonly string[] = [...COMMANDS.keys()]

/** The top-level usage: every command's lines, in order. */
export async function usageText(): Promise<string> {
  const commands = await Promise.all([...COMMANDS.values()].map((load) => load()))
  return `usage:\n${commands.map((command) => command.usage).join('\n')}`
}

/** Asked for help: `-h`/`--help` anywhere before a `--` (after it, arguments are data). */
function asksForHelp(args: string[]): boolean {
  const end = args.indexOf('--')
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h')
}

/**
 * Runs the command named by `word` and returns the process's exit code: the command's own, 2
 * for a wrong invocation or configuration (a message, no stack trace), 3 when the store cannot be
 * reached (a script can retry that one), 1 for anything else; KEEPS_RUNNING (-1) from a serve that runs. `help`, `--help`, `-h`: the usage on stdout, exit 0
 * (asked for, so it is the answer); no word: the usage on stderr, exit 0. `--version`, `-V`: the
 * package version. `COMMAND ... --help`: that command's usage, without running it.
 */
export async function runCommand(word: string | undefined, args: string[], io: CommandIo): Promise<number> {
  if (word === '--version' || word === '-V') {
    io.stdout.write(`${await packageVersion()}\n`)
    return 0
  }
  if (word === 'help' || word === '--help' || word === '-h') {
    io.stdout.write(`${await usageText()}\n`)
    return 0
  }
  const load = word === undefined ? undefined : COMMANDS.get(word)
  if (!load) {
    io.stderr.write(`${await usageText()}\n`)
    return word === undefined ? 0 : 2
  }
  try {
    const command = await load()
    if (asksForHelp(args)) {
      io.stdout.write(`usage:\n${command.usage}\n`)
      return 0
    }
    return await command.run(args, io)
  } catch (err) {
    if (err instanceof StoreUnreachableError) {
      io.stderr.write(`gatehouse: ${err.message}\n`)
      return STORE_UNREACHABLE
    }
    if (await isOperatorError(err)) {
      io.stderr.write(`gatehouse: ${(err as Error).message}\n`)
      return 2
    }
    if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`gatehouse: ${err.message}\n${await usageText()}\n`)
      return 2
    }
    io.stderr.write(`gatehouse: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
}

/**
 * A wrong invocation, configuration or key: the operator fixes it from the message alone.
 * Imported here rather than up front (they load the configuration schema); when one of them
 * was thrown, its module is loaded already.
 */
async function isOperatorError(err: unknown): Promise<boolean> {
  if (err instanceof UsageError) return true
  const [{ ConfigError }, { KeyError }] = await Promise.all([import('../config/load.js'), import('../keys/keystore.js')])
  return err instanceof ConfigError || err instanceof KeyError
}
