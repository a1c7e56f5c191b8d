import type { StoreConfig } from '../config/schema.js'
import { MemoryStore } from './memory.js'
import { RedisStore, type StoreLog } from './redis.js'
import type { Store } from './store.js'

export type { StoreLog }

/** The store the configuration asks for. Throws on a Redis configuration that cannot work. */
export function createStore(config: StoreConfig, log: StoreLog): Store {
  if (config.type === 'memory') return new MemoryStore()
  // The schema requires `redis` when type is redis; this guards hand-built configurations.
  if (!config.redis) throw new TypeError('store.redis is required when store.type is redis')
  return new RedisStore(config.redis, log)
}
