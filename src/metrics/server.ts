/**
 * The metrics listener: a plain node:http server of its own, apart from the main listener, so
 * the network can keep it private (metrics.listen). It answers GET/HEAD of the configured
 * path (without a request body) with the Prometheus text exposition and 404/405/400
 * otherwise; nothing else is served, and nothing is logged.
 */
import { createServer, type Server } from 'node:http'
import type { GatewayMetrics } from './gateway-metrics.js'

export interface MetricsListener {
  /** The address actually bound, e.g. http://127.0.0.1:9464. */
  readonly address: string
  close(): Promise<void>
}

export async function startMetricsListener(
  metrics: GatewayMetrics,
  { host, port, path }: { host: string; port: number; path: string },
): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const q = req.url?.indexOf('?') ?? -1
    const target = q === -1 ? req.url : req.url!.slice(0, q)
    if (target !== path) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n')
      return
    }
    // A scrape carries no content (RFC 9110 §9.3.1 gives GET content no meaning); one that does
    // is not a scraper, and the connection is closed rather than left to read what it sent.
    const length = req.headers['content-length']
    if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
      res.writeHead(400, { connection: 'close', 'content-type': 'text/plain; charset=utf-8' }).end('a scrape has no request body\n')
      return
    }
    metrics.exposition().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' })
        res.end(req.method === 'HEAD' ? undefined : text)
      },
      () => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n')
      },
    )
  })
  // A scrape is one short request; nothing may hold the listener open at shutdown.
  server.keepAliveTimeout = 5000
  server.requestTimeout = 10_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const bound = server.address()
  const address =
    typeof bound === 'object' && bound
      ? `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`
      : String(bound)
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
