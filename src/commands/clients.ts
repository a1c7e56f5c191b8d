/**
 * `gatehouse clients list|delete`: dynamically registered clients (pre-registered ones live in
 * the YAML, metadata-document ones in their owners' hands). Deleting one stops it at /authorize
 * and /token at once; its grants stay until revoked (`grants revoke --client-id`) and can no
 * longer be refreshed by it.
 */
import { parseArgs } from 'node:util'
import { RegisteredClients } from '../oauth/clients/registered.js'
import { UsageError, type CommandIo } from './command.js'
import { operatorName, sharedStoreConfig, withOperatorStore } from './deployment.js'

export const usage = `  gatehouse clients list --config FILE     (dynamically registered clients)
  gatehouse clients delete --config FILE [--actor NAME] CLIENT_ID...`

export async function run(args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string' }, actor: { type: 'string' } } })
  const [action, ...ids] = positionals
  if (action !== 'list' && action !== 'delete') throw new UsageError('clients list|delete --config FILE')
  if (action === 'delete' && ids.length === 0) throw new UsageError('clients delete needs at least one CLIENT_ID')
  const config = await sharedStoreConfig(values.config, 'clients', io)
  return withOperatorStore(config, io, async (store, audit) => {
    const registered = new RegisteredClients(store, config.registration)
    if (action === 'list') {
      for await (const record of registered.list()) {
        const line = {
          clientId: record.clientId,
          name: record.metadata.client_name ?? null,
          createdAt: new Date(record.issuedAt * 1000).toISOString(),
          // Renewed by use at most once per tenth of registration.unusedTtlSeconds: a lower bound.
          lastUsedAt: new Date(record.touchedAt).toISOString(),
          authMethod: record.metadata.token_endpoint_auth_method,
          applicationType: record.metadata.application_type,
          redirectUris: record.metadata.redirect_uris,
        }
        io.stdout.write(`${JSON.stringify(line)}\n`)
      }
      return 0
    }
    let missing = 0
    for (const id of ids) {
      const record = await registered.get(id)
      if (!record) {
        io.stderr.write(`gatehouse: no registered client ${id}\n`)
        missing++
        continue
      }
      await registered.delete(record)
      audit.record({ type: 'client.deleted', clientId: id, by: 'operator', actor: operatorName(values.actor) })
      io.stdout.write(`deleted ${id}\n`)
    }
    return missing > 0 ? 1 : 0
  })
}
