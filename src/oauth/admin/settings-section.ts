/**
 * The console's read-only pages: the signing keys from the keystore (rotation stays with
 * `gatehouse keys rotate`: keys are configuration files or Secrets the gateway never writes, and
 * every replica must know a key before any signs with it), the resources and the configuration in
 * effect with credentials masked, and the health of the store and the rate-limit settings.
 */
import { stringify } from 'yaml'
import type { GatewayConfig } from '../../config/load.js'
import { maskedSecrets } from '../../config/masked.js'
import { withoutUrlPassword } from '../../config/problems.js'
import type { Keystore } from '../../keys/keystore.js'
import type { Store } from '../../store/store.js'
import type { AdminRoutes } from './routes.js'
import { configPage, healthPage, keysPage, type KeyRow } from './views/settings.js'

/** A store that does not answer within this is shown as down; the page does not hang on it. */
const PING_WAIT_MS = 2_000

export function registerSettingsSection(routes: AdminRoutes, deps: { config: GatewayConfig; store: Store; keystore: Keystore }): void {
  const { config, store, keystore } = deps

  routes.page('/admin/keys', async (admin) => {
    // The keystore publishes the active key first, then the others in configuration order.
    const others = config.keys.filter((k) => !k.active)
    const activeConfig = config.keys.find((k) => k.active) ?? config.keys[0]
    const keys: KeyRow[] = (keystore.jwks.keys ?? []).map((jwk, i) => {
      const from = i === 0 ? activeConfig : config.keys.length > 1 ? others[i - 1] : undefined
      return {
        kid: jwk.kid ?? '',
        alg: jwk.alg ?? (i === 0 ? keystore.active.alg : ''),
        active: jwk.kid === keystore.active.kid,
        source: keystore.generated || from === undefined ? undefined : from.file !== undefined ? `file ${from.file}` : `env ${from.env}`,
      }
    })
    return keysPage(admin, { keys, generated: keystore.generated, waitSeconds: config.accessTokens.ttlSeconds + config.accessTokens.clockToleranceSeconds })
  })

  routes.page('/admin/config', async (admin) => {
    const { defaultResource: _default, warnings, ...inEffect } = config
    const resources = config.resources.map((r) => ({
      id: r.id,
      name: r.name,
      uri: r.uri,
      upstream: withoutUrlPassword(r.upstream),
      access: accessText(r.access),
      rules: r.policy.rules.length,
    }))
    return configPage(admin, { resources, yaml: stringify(maskedSecrets(inEffect)), warnings })
  })

  routes.page('/admin/health', async (admin) => {
    const started = performance.now()
    let error: string | undefined
    try {
      await Promise.race([store.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${PING_WAIT_MS} ms`)), PING_WAIT_MS).unref())])
    } catch (err) {
      error = (err as Error).message
    }
    const pingMs = Math.round(performance.now() - started)
    return healthPage(admin, {
      store: storeText(config),
      up: error === undefined,
      pingMs,
      ...(error !== undefined && { error }),
      rateLimits: stringify(config.rateLimits),
    })
  })
}

function accessText(access: GatewayConfig['resources'][number]['access']): string {
  if (access === undefined) return 'every configured user (static login only)'
  if (access.allowAnyUser) return 'anyone the login providers accept'
  const parts = Object.entries(access).filter(([k, v]) => k !== 'allowAnyUser' && Array.isArray(v)).map(([k, v]) => `${k}: ${(v as string[]).join(', ')}`)
  return parts.join('; ')
}

function storeText(config: GatewayConfig): string {
  const redis = config.store.redis
  if (config.store.type !== 'redis' || redis === undefined) return `${config.store.type} (this replica only)`
  if (redis.clusterNodes) return `Redis Cluster (${redis.clusterNodes.length} seed nodes)`
  if (redis.sentinels) return `Redis with Sentinel (master ${redis.sentinelMasterName ?? '?'}, ${redis.sentinels.length} sentinels)`
  return `Redis ${redis.url !== undefined ? withoutUrlPassword(redis.url) : ''}`.trim()
}
