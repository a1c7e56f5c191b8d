/** `gatehouse hash-password`: hashes a password read from standard input, for login.static.users. */
import { hashPassword } from '../login/passwords.js'
import { UsageError, type CommandIo } from './command.js'

export const usage = `  gatehouse hash-password                  (reads the password from standard input)`

/** From stdin, not argv: a password on the command line would land in shell history and ps. */
export async function run(_args: string[], io: CommandIo): Promise<number> {
  const password = (await io.readStdin()).toString('utf8').replace(/\r?\n$/, '')
  if (password.length < 8) throw new UsageError('give a password of at least 8 characters on standard input')
  io.stdout.write(`${await hashPassword(password)}\n`)
  return 0
}
