/**
 * Liveness and readiness, which Kubernetes probes; they carry no secrets and need no token.
 *
 * Readiness reflects this replica, not what every replica shares: it fails only while this
 * process shuts down. A store outage hits all replicas at once, so failing readiness for it would
 * take every replica out of the Service together, also for the calls that need no store (a valid
 * JWT on a stateless session); those go on, and the calls that need the store answer 503 with
 * Retry-After by themselves. The store's health is reported instead: in both probes' bodies, as a
 * metric and in the log (StoreHealth). Neither probe ever waits for the store.
 */
import type { FastifyInstance } from 'fastify'
import type { StoreHealth } from './store-health.js'

export interface HealthState {
  shuttingDown: boolean
}

export function registerHealth(app: FastifyInstance, storeHealth: StoreHealth, state: HealthState): void {
  app.get('/healthz', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'ok', store: storeHealth.observe() }
  })
  app.get('/readyz', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    if (state.shuttingDown) return reply.code(503).send({ status: 'unavailable', reason: 'shutting_down' })
    return { status: 'ready', store: storeHealth.observe() }
  })
}
