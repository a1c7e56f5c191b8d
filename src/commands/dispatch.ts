/**
 * From a command word to its command, and from a command's failure to the exit code and the
 * one line an operator reads. The binary (src/cli.ts) and in-process tests both come through here.
 */
import { ConfigError } from '../config/load.js'
import { KeyError } from '../keys/keystore.js'
import * as checkConfig from './check-config.js'
import * as cimd from './cimd.js'
import * as clients from './clients.js'
import { UsageError, type Command, type CommandIo } from './command.js'
import * as grants from './grants.js'
import * as hashPassword from './hash-password.js'
import * as keys from './keys.js'
import * as serve from './serve.js'
import * as token from './token.js'

/** In the order of the usage text. A Map: a word like `constructor` must not find anything. */
const COMMANDS = new Map<string, Command>([
  ['serve', serve],
  ['check-config', checkConfig],
  ['token', token],
  ['keys', keys],
  ['hash-password', hashPassword],
  ['grants', grants],
  ['clients', clients],
  ['cimd', cimd],
])

export const USAGE = `usage:\n${[...COMMANDS.values()].map((command) => command.usage).join('\n')}`

/**
 * Runs the command named by `word` and returns the process's exit code: the command's own, 2
 * for a wrong invocation or configuration (a message, no stack trace), 1 for anything else;
 * KEEPS_RUNNING (-1) from a serve that runs. No word, `help` or `--help`: the usage, exit 0.
 */
export async function runCommand(word: string | undefined, args: string[], io: CommandIo): Promise<number> {
  const command = word === undefined ? undefined : COMMANDS.get(word)
  if (!command) {
    io.stderr.write(`${USAGE}\n`)
    return word === undefined || word === 'help' || word === '--help' ? 0 : 2
  }
  try {
    return await command.run(args, io)
  } catch (err) {
    if (err instanceof ConfigError || err instanceof KeyError || err instanceof UsageError) {
      io.stderr.write(`gatehouse: ${err.message}\n`)
      return 2
    }
    if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`gatehouse: ${err.message}\n${USAGE}\n`)
      return 2
    }
    io.stderr.write(`gatehouse: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
}
