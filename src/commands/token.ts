/**
 * `gatehouse token`: mints an access token with the configured keys, for development and
 * debugging. Guarded (token-guards.ts): a capped lifetime, a subject the deployment knows, an
 * audit event naming who minted what, and a grant in the store so that `gatehouse grants revoke`
 * can take the token back at every replica.
 */
import { parseArgs } from 'node:util'
import { loadKeystore } from '../keys/keystore.js'
import { revocationKeepMs } from '../keys/revocations.js'
import { mintAccessToken } from '../keys/tokens.js'
import { Grants } from '../oauth/grants/grants.js'
import { UsageError, type CommandIo } from './command.js'
import { configFile, operatorName, recordOperatorEvent, withReachableStore } from './deployment.js'
import { checkSubject, tokenTtl } from './token-guards.js'

export const usage = `  gatehouse token --config FILE --sub SUBJECT [--resource ID] [--client-id ID] [--scope "A B"] [--ttl SECONDS]
                  [--allow-long-ttl] [--any-subject] [--actor NAME]   (token on stdout, its grant id on stderr)`

export async function run(args: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      resource: { type: 'string' },
      sub: { type: 'string' },
      'client-id': { type: 'string', default: 'gatehouse-cli' },
      scope: { type: 'string' },
      ttl: { type: 'string' },
      'allow-long-ttl': { type: 'boolean', default: false },
      'any-subject': { type: 'boolean', default: false },
      actor: { type: 'string' },
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
  if (values.sub === undefined) throw new UsageError('token needs --sub SUBJECT (static:NAME, client:ID or PROVIDER:SUBJECT)')
  if (!values['any-subject']) checkSubject(values.sub, config)
  const ttl = tokenTtl(values.ttl, config, values['allow-long-ttl'])
  const scopes = values.scope !== undefined ? values.scope.split(' ').filter(Boolean) : resource.requiredScopes
  const actor = operatorName(values.actor)
  const sub = values.sub
  const clientId = values['client-id']
  return withReachableStore(config.store, async (store) => {
    const keystore = await loadKeystore(config.keys, store, io.env)
    // A memory store is this process's own: a grant there reaches no gateway, and nothing could revoke it.
    const shared = config.store.type !== 'memory'
    const grants = new Grants(store, {
      ...config.authorizationServer,
      // The grant record lives as long as its token (and the tolerance), then leaves `grants list`.
      refreshTokenTtlSeconds: ttl + config.accessTokens.clockToleranceSeconds,
    })
    const grant = grants.newGrant({ sub, clientId, resourceId: resource.id, scopes: [...scopes] })
    // No refresh token: the grant exists to be listed and revoked, the token is all there is.
    if (shared) await grants.start(grant, false)
    const jwt = await mintAccessToken(
      keystore,
      config.issuer,
      { sub, clientId, audience: resource.uri, scopes, ...(shared && { grantId: grant.grantId }) },
      ttl,
    )
    recordOperatorEvent(config, io, {
      type: 'token.minted',
      actor,
      sub,
      clientId,
      resource: resource.id,
      scopes,
      ttl,
      ...(shared && { grantId: grant.grantId }),
    })
    io.stdout.write(`${jwt}\n`)
    if (!shared) {
      io.stderr.write('gatehouse: memory store: no grant recorded, this token cannot be revoked before it expires\n')
      return 0
    }
    io.stderr.write(`grant ${grant.grantId} (revoke: gatehouse grants revoke --config FILE ${grant.grantId})\n`)
    // Revocations are remembered as long as the deployment's own tokens live (revocations.ts).
    const horizon = revocationKeepMs(config.accessTokens) / 1000
    if (ttl > horizon) {
      io.stderr.write(
        `gatehouse: warning: --ttl ${ttl} outlives the ${horizon} s a revocation is remembered ` +
          '(accessTokens.ttlSeconds + clockToleranceSeconds): revoking refuses it for that long only\n',
      )
    }
    return 0
  })
}
