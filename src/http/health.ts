/**
 * Liveness (the process answers) and readiness (it can serve: the store answers and shutdown
 * has not begun). Kubernetes probes these; they carry no secrets and need no token.
 */
import type { FastifyInstance } from 'fastify'
import type { Store } from '../store/store.js'

export interface HealthState {
  shuttingDown: boolean
}

export function registerHealth(app: FastifyInstance, store: Store, state: HealthState): void {
  app.get('/healthz', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'ok' }
  })
  app.get('/readyz', async (request, reply) => {
    reply.header('cache-control', 'no-store')
    if (state.shuttingDown) return reply.code(503).send({ status: 'unavailable', reason: 'shutting_down' })
    try {
      await store.ping()
    } catch (err) {
      request.log.warn({ err: (err as Error).message }, 'readiness: store unavailable')
      return reply.code(503).send({ status: 'unavailable', reason: 'store' })
    }
    return { status: 'ready' }
  })
}
