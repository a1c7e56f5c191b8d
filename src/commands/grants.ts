/** `gatehouse grants list|revoke`: what people allowed which clients; revoking stops refreshes. */
import { parseArgs } from 'node:util'
import { RevocationList, revocationKeepMs } from '../keys/revocations.js'
import { Grants, type Grant } from '../oauth/grants/grants.js'
import { UsageError, type CommandIo } from './command.js'
import { operatorName, sharedStoreConfig, withOperatorStore } from './deployment.js'

export const usage = `  gatehouse grants list --config FILE [--sub SUBJECT] [--client-id ID]
  gatehouse grants revoke --config FILE [--actor NAME] GRANT_ID...
  gatehouse grants revoke --config FILE [--actor NAME] --sub SUBJECT | --client-id ID   (every grant of a person or client)`

export async function run(args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, sub: { type: 'string' }, 'client-id': { type: 'string' }, actor: { type: 'string' } },
  })
  const [action, ...ids] = positionals
  if (action !== 'list' && action !== 'revoke') throw new UsageError('grants list|revoke --config FILE')
  const filter = { ...(values.sub && { sub: values.sub }), ...(values['client-id'] && { clientId: values['client-id'] }) }
  if (action === 'revoke' && ids.length === 0 && Object.keys(filter).length === 0) {
    throw new UsageError('grants revoke needs GRANT_IDs, or --sub and/or --client-id for all grants of a person or client')
  }
  if (action === 'revoke' && ids.length > 0 && Object.keys(filter).length > 0) {
    throw new UsageError('grants revoke takes GRANT_IDs or --sub/--client-id, not both')
  }
  const config = await sharedStoreConfig(values.config, 'grants', io)
  return withOperatorStore(config, io, async (store, audit) => {
    // Written to the revocation log that every running replica reads (REV-01 of §11.4).
    const revocations = new RevocationList(store, revocationKeepMs(config.accessTokens))
    const grants = new Grants(store, config.authorizationServer, audit, revocations)
    const actor = operatorName(values.actor)
    // Revoked without `by` (Grants would record who, not whose): the event is recorded here, naming
    // the operator and the person and client the grant belonged to.
    const revoke = async (grant: Grant) => {
      await grants.revoke(grant.grantId)
      audit.record({ type: 'grant.revoked', grantId: grant.grantId, by: 'operator', actor, sub: grant.sub, clientId: grant.clientId })
    }
    if (action === 'list') {
      // ISO dates, as `clients list` prints them; the store keeps seconds since the epoch.
      for await (const grant of grants.list(filter)) {
        io.stdout.write(`${JSON.stringify({ ...grant, createdAt: new Date(grant.createdAt * 1000).toISOString() })}\n`)
      }
      return 0
    }
    if (ids.length === 0) {
      // Collected first: revoking while walking the key space could skip keys.
      const matching: Grant[] = []
      for await (const grant of grants.list(filter)) matching.push(grant)
      for (const grant of matching) {
        await revoke(grant)
        io.stdout.write(`revoked ${grant.grantId}\n`)
      }
      io.stdout.write(`${matching.length} grant(s) revoked\n`)
      return 0
    }
    let missing = 0
    for (const id of ids) {
      const grant = await grants.get(id)
      if (grant) {
        await revoke(grant)
        io.stdout.write(`revoked ${id}\n`)
      } else {
        io.stderr.write(`gatehouse: no grant ${id}\n`)
        missing++
      }
    }
    return missing > 0 ? 1 : 0
  })
}
