/**
 * Headers on every response the gateway writes itself: no sniffing, no referrer leaks
 * (BCP-16), never framed (BCP-14). Proxied MCP answers keep the upstream's headers.
 *
 * `same-origin` rather than `no-referrer`: no other site ever gets a Referer (BCP-16's point),
 * and the gateway's own forms keep their Origin header. Under `no-referrer` a browser sends
 * `Origin: null` on every POST (Fetch, "append a request Origin header"), so the pages could not
 * tell their own forms from a cross-site one (src/http/origin-check.ts).
 */
import type { FastifyInstance } from 'fastify'

const HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
} as const

export function registerSecurityHeaders(app: FastifyInstance): void {
  // A callback hook: it runs on every answer, proxied ones included, and never waits.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (!request.routeOptions.config?.proxied || reply.statusCode >= 400) {
      for (const [name, value] of Object.entries(HEADERS)) if (!reply.hasHeader(name)) reply.header(name, value)
    }
    done(null, payload)
  })
}
