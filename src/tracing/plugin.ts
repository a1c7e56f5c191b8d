/**
 * Route-level spans: `authorize` (the authorization endpoint and its login and consent forms)
 * and `token`. Registered only when tracing is on. The handler runs inside the span, so steps
 * it calls (the metadata-document fetch) become its children.
 */
import type { FastifyInstance, RouteHandlerMethod } from 'fastify'
import type { RouteClassifier } from '../metrics/route-class.js'
import { startSpan, type SpanHandle } from './span.js'

declare module 'fastify' {
  interface FastifyRequest {
    routeSpan?: SpanHandle
  }
}

const TRACED = new Set(['authorize', 'token'])

export function registerRouteSpans(app: FastifyInstance, routes: RouteClassifier): void {
  app.addHook('onRoute', (route) => {
    if (!TRACED.has(routes.classify(route.url).route)) return
    const handler = route.handler as RouteHandlerMethod
    route.handler = function traced(request, reply) {
      const span = request.routeSpan
      return span ? span.run(() => handler.call(this, request, reply)) : handler.call(this, request, reply)
    }
  })
  app.addHook('onRequest', (request, _reply, done) => {
    const { route } = routes.classify(request.routeOptions.url)
    if (TRACED.has(route)) {
      request.routeSpan = startSpan(route, { 'http.request.method': request.method, 'http.route': request.routeOptions.url! }, 'server')
    }
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    const span = request.routeSpan
    if (span) {
      span.setAttribute('http.response.status_code', reply.statusCode)
      span.end(reply.statusCode >= 500 ? 'server_error' : undefined)
    }
    done()
  })
}
