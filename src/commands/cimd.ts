/**
 * `gatehouse cimd inspect|purge`: one metadata-document client id's decision, step by step;
 * emptying the metadata document cache.
 *
 * `cimd inspect` works with any store: with Redis it shows the deployment's cache state, with a
 * memory store (empty in a new process) what a freshly started gateway would decide; it never
 * writes the cache. `cimd purge` changes a deployment, so like `grants` it needs a shared store.
 */
import { parseArgs } from 'node:util'
import { SafeFetcher } from '../oauth/clients/cimd/fetch.js'
import { inspectClientId } from '../oauth/clients/cimd/inspect.js'
import { CimdClients } from '../oauth/clients/cimd/resolve.js'
import { UsageError, type CommandIo } from './command.js'
import { configFile, openStore, sharedStoreConfig, withReachableStore } from './deployment.js'

export const usage = `  gatehouse cimd inspect URL --config FILE (the decision for one client id URL, step by step; reads the cache, never writes it)
  gatehouse cimd purge [URL] --config FILE (empties the metadata document cache of a deployment, or one URL's records)`

export async function run(args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string' } } })
  const [action, ...ids] = positionals
  if (action === 'inspect') {
    if (ids.length !== 1) throw new UsageError('cimd inspect needs exactly one client id URL')
    const config = await configFile(values.config, 'cimd inspect', io)
    if (config.externalIssuer) throw new UsageError('this gateway trusts an external issuer: it resolves no client ids')
    const store = openStore(config.store, io)
    const fetcher = new SafeFetcher({
      ...config.cimd.fetch,
      allowPrivateAddresses: config.cimd.allowPrivateAddresses,
      ...(io.extraCaCertificates !== undefined && { ca: io.extraCaCertificates }),
    })
    try {
      const { accepted, lines } = await inspectClientId(ids[0]!, { config, store, fetcher })
      io.stdout.write(`${lines.join('\n')}\n`)
      return accepted ? 0 : 1
    } finally {
      await fetcher.close()
      await store.close()
    }
  }
  if (action === 'purge') {
    if (ids.length > 1) throw new UsageError('cimd purge takes at most one client id URL')
    const config = await sharedStoreConfig(values.config, 'cimd purge', io)
    return withReachableStore(config.store, async (store) => {
      const noFetch = { fetchJson: () => Promise.reject(new Error('purge does not fetch')) }
      const clients = new CimdClients({ config: config.cimd, store, fetcher: noFetch, selfOrigin: new URL(config.issuer).origin })
      const n = await clients.purge(ids[0])
      io.stdout.write(`purged ${n} cache record(s)${ids[0] !== undefined ? ` for ${ids[0]}` : ''}\n`)
      return 0
    })
  }
  throw new UsageError('cimd inspect URL --config FILE | cimd purge [URL] --config FILE')
}
