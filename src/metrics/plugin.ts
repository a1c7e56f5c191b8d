/**
 * Counts and times every request of the main listener: one onResponse hook on the root
 * instance, labelled by route class, resource and status (bounded; see route-class.ts).
 * Registered before any route plugin, so every route inherits it.
 */
import type { FastifyInstance } from 'fastify'
import type { GatewayMetrics } from './gateway-metrics.js'
import type { RouteClassifier } from './route-class.js'

export function registerHttpMetrics(app: FastifyInstance, metrics: GatewayMetrics, routes: RouteClassifier): void {
  // A callback hook, not an async one: no promise per request on the hot path.
  app.addHook('onResponse', (request, reply, done) => {
    const { route, resource } = routes.classify(request.routeOptions.url)
    const labels = { route, resource, status: reply.statusCode }
    metrics.httpRequests.inc(labels)
    // An event stream's duration is how long someone listened, not latency (the upstream
    // histogram has its time to first byte).
    const type = reply.getHeader('content-type')
    if (!(typeof type === 'string' && type.startsWith('text/event-stream'))) {
      metrics.httpDuration.observe(labels, reply.elapsedTime / 1000)
    }
    done()
  })
}
