/** `gatehouse check-config FILE`: validates a configuration, listing every problem. */
import { parseArgs } from 'node:util'
import { loadConfigFile } from '../config/load.js'
import type { SigningKeyConfig } from '../config/schema.js'
import { configuredKeyProblems } from '../keys/keystore.js'
import { callbackUrl } from '../login/oidc.js'
import { UsageError, type CommandIo } from './command.js'

export const usage = `  gatehouse check-config FILE`

export async function run(args: string[], io: CommandIo): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true })
  const file = positionals[0]
  if (!file) throw new UsageError('check-config needs a FILE')
  // The loader checks that key files exist; whether they hold keys is the keystore's to say,
  // in the same report.
  const config = await loadConfigFile(file, io.env, {
    checkFiles: true,
    moreProblems: (data) => configuredKeyProblems(keysIn(data), io.env),
  })
  io.stdout.write(`${file}: valid (${config.resources.length} resource(s))\n`)
  for (const warning of config.warnings) io.stdout.write(`  warning: ${warning}\n`)
  // What the operator registers at each identity provider.
  for (const provider of config.login.oidc) {
    io.stdout.write(`  login.oidc ${provider.id}: redirect URI ${callbackUrl(config.publicUrl, provider.id)}\n`)
  }
  return 0
}

/** The keys of a configuration not yet known to be valid; configuredKeyProblems reads each defensively. */
function keysIn(data: unknown): SigningKeyConfig[] {
  const keys = (data as { keys?: unknown } | null)?.keys
  return Array.isArray(keys) ? (keys as SigningKeyConfig[]) : []
}
