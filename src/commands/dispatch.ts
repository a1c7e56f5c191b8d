/**
 * From a command word to its command, and from a command's failure to the exit code and the
 * one line an operator reads. The binary (src/cli.ts) and in-process tests both come through here.
 */
import { UsageError, type Command, type CommandIo } from './command.js'

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

/** The top-level usage: every command's lines, in order. */
export async function usageText(): Promise<string> {
  const commands = await Promise.all([...COMMANDS.values()].map((load) => load()))
  return `usage:\n${commands.map((command) => command.usage).join('\n')}`
}

/**
 * Runs the command named by `word` and returns the process's exit code: the command's own, 2
 * for a wrong invocation or configuration (a message, no stack trace), 1 for anything else;
 * KEEPS_RUNNING (-1) from a serve that runs. No word, `help` or `--help`: the usage, exit 0.
 */
export async function runCommand(word: string | undefined, args: string[], io: CommandIo): Promise<number> {
  const load = word === undefined ? undefined : COMMANDS.get(word)
  if (!load) {
    io.stderr.write(`${await usageText()}\n`)
    return word === undefined || word === 'help' || word === '--help' ? 0 : 2
  }
  try {
    return await (await load()).run(args, io)
  } catch (err) {
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
