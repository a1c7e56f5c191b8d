/**
 * The guard rails of `gatehouse token`: a development tool that signs with the deployment's own
 * keys, so a typo must not mint a ten-year token for a person who does not exist.
 */
import type { GatewayConfig } from '../config/load.js'
import { machineSubject } from '../policy/access-rules.js'
import { UsageError } from './command.js'

/** Without --allow-long-ttl: an hour at most, long enough for a debugging session. */
export const MAX_TTL_SECONDS = 3600

/** The lifetime asked for (default: the deployment's own access-token lifetime), checked. */
export function tokenTtl(given: string | undefined, config: GatewayConfig, allowLong: boolean): number {
  const ttl = given === undefined ? Math.min(config.accessTokens.ttlSeconds, MAX_TTL_SECONDS) : Number(given)
  if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError('--ttl must be a whole number of seconds')
  if (ttl > MAX_TTL_SECONDS && !allowLong) {
    throw new UsageError(`--ttl ${ttl} is longer than ${MAX_TTL_SECONDS} s; add --allow-long-ttl if you mean it`)
  }
  return ttl
}

/**
 * Whether some configured login or client could be given `sub` by the gateway itself: a static
 * user (its `subject`, or static:<username>), a pre-registered machine client (client:<id>), or a
 * subject under an OIDC provider's prefix (<provider id>:<the IdP's subject>, which only the IdP
 * knows). Self-registered machine clients live in the store: --any-subject for those.
 */
export function checkSubject(sub: string, config: GatewayConfig): void {
  const users = config.login.static?.users ?? []
  if (users.some((u) => (u.subject ?? `static:${u.username}`) === sub)) return
  const machines = config.clients.filter((c) => c.grantTypes.includes('client_credentials'))
  if (machines.some((c) => machineSubject(c.clientId) === sub)) return
  if (config.login.oidc.some((p) => sub.startsWith(`${p.id}:`) && sub.length > p.id.length + 1)) return
  const known = [
    ...users.map((u) => u.subject ?? `static:${u.username}`),
    ...machines.map((c) => machineSubject(c.clientId)),
    ...config.login.oidc.map((p) => `${p.id}:<subject>`),
  ]
  throw new UsageError(
    `--sub ${sub} is no configured user or client (${known.length > 0 ? known.slice(0, 10).join(', ') + (known.length > 10 ? ', …' : '') : 'none configured'}); ` +
      'add --any-subject to mint for it anyway',
  )
}
