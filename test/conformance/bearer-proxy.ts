/**
 * A bearer-adding client-side proxy on loopback, for running the conformance suite's server
 * scenarios through the gateway: the suite has no option to add a header to its requests, so it
 * talks to this proxy, which adds `Authorization: Bearer <token>` (what any MCP client does after
 * its OAuth flow) and forwards the request to the gateway byte for byte, streaming both ways.
 *
 * The proxy stands in for "the client talks to the gateway's own URL": a Host or Origin header
 * naming the proxy's authority is rewritten to the gateway's, so the suite's valid-Host /
 * valid-Origin probes (dns-rebinding-protection) mean the same through the proxy as direct.
 * Every other header, a foreign Host or Origin included, passes untouched.
 */
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface BearerProxy {
  /** The URL to give the suite: the gateway's MCP path on the proxy's origin. */
  url: string
  close(): Promise<void>
}

export async function startBearerProxy(gatewayMcpUrl: string, token: () => string | Promise<string>): Promise<BearerProxy> {
  const target = new URL(gatewayMcpUrl)
  let self = ''
  const server: Server = createServer((req, res) => {
    void (async () => {
      const headers: IncomingHttpHeaders = { ...req.headers }
      if (headers.host === self) headers.host = target.host
      if (headers.origin === `http://${self}`) headers.origin = target.origin
      headers.authorization = `Bearer ${await token()}`
      const out = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
        (upstream) => {
          res.writeHead(upstream.statusCode ?? 502, upstream.rawHeaders)
          res.flushHeaders()
          upstream.pipe(res)
        },
      )
      out.on('error', () => res.destroy())
      res.on('close', () => {
        if (!res.writableFinished) out.destroy()
      })
      req.pipe(out)
    })()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  self = `127.0.0.1:${port}`
  return {
    url: `http://${self}${target.pathname}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
