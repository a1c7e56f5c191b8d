/**
 * Headers on every response the gateway writes itself: no sniffing, no referrer leaks
 * (BCP-16), never framed (BCP-14). Proxied MCP answers keep the upstream's headers.
 */
import type { FastifyInstance } from 'fastify'

const HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
} as const

export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (!request.routeOptions.config?.proxied || reply.statusCode >= 400) {
      for (const [name, value] of Object.entries(HEADERS)) if (!reply.hasHeader(name)) reply.header(name, value)
    }
    return payload
  })
}
