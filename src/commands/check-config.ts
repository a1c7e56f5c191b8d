/** `gatehouse check-config FILE`: validates a configuration, listing every problem. */
import { parseArgs } from 'node:util'
import { ConfigError, loadConfigFile } from '../config/load.js'
import { configuredKeyProblems } from '../keys/keystore.js'
import { callbackUrl } from '../login/oidc.js'
import { UsageError, type CommandIo } from './command.js'

export const usage = `  gatehouse check-config FILE`

export async function run(args: string[], io: CommandIo): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true })
  const file = positionals[0]
  if (!file) throw new UsageError('check-config needs a FILE')
  const config = await loadConfigFile(file, io.env, { checkFiles: true })
  // The loader knows the key files exist; whether they hold keys is the keystore's to say.
  const keyProblems = await configuredKeyProblems(config.keys, io.env)
  if (keyProblems.length > 0) throw new ConfigError(file, keyProblems)
  io.stdout.write(`${file}: valid (${config.resources.length} resource(s))\n`)
  for (const warning of config.warnings) io.stdout.write(`  warning: ${warning}\n`)
  // What the operator registers at each identity provider.
  for (const provider of config.login.oidc) {
    io.stdout.write(`  login.oidc ${provider.id}: redirect URI ${callbackUrl(config.publicUrl, provider.id)}\n`)
  }
  return 0
}
