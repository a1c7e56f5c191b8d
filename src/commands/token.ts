/** `gatehouse token`: mints an access token with the configured keys (until the built-in AS issues them). */
import { parseArgs } from 'node:util'
import { loadKeystore } from '../keys/keystore.js'
import { mintAccessToken } from '../keys/tokens.js'
import { UsageError, type CommandIo } from './command.js'
import { configFile, openStore } from './deployment.js'

export const usage = `  gatehouse token --config FILE [--resource ID] [--sub SUBJECT] [--client-id ID] [--scope "A B"] [--ttl SECONDS]`

export async function run(args: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      resource: { type: 'string' },
      sub: { type: 'string', default: 'developer' },
      'client-id': { type: 'string', default: 'gatehouse-cli' },
      scope: { type: 'string' },
      ttl: { type: 'string' },
    },
  })
  const config = await configFile(values.config, 'token', io)
  if (config.externalIssuer) throw new UsageError('this gateway trusts an external issuer: get tokens from it')
  if (config.keys.length === 0 && config.store.type === 'memory') {
    throw new UsageError(
      'the development key of a gateway with the memory store lives in that process only; ' +
        'configure keys or the Redis store to mint tokens from the command line',
    )
  }
  const resource = values.resource ? config.resources.find((r) => r.id === values.resource) : config.defaultResource
  if (!resource) throw new UsageError(values.resource ? `no resource with id ${values.resource}` : 'name a --resource')
  const ttl = Number(values.ttl ?? config.accessTokens.ttlSeconds)
  if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError('--ttl must be a whole number of seconds')
  const store = openStore(config.store, io)
  try {
    const keystore = await loadKeystore(config.keys, store, io.env)
    const scopes = values.scope !== undefined ? values.scope.split(' ').filter(Boolean) : resource.requiredScopes
    const jwt = await mintAccessToken(
      keystore,
      config.issuer,
      { sub: values.sub, clientId: values['client-id'], audience: resource.uri, scopes },
      ttl,
    )
    io.stdout.write(`${jwt}\n`)
  } finally {
    await store.close()
  }
  return 0
}
