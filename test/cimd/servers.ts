/** Loopback document servers for the CIMD tests (plain HTTP and HTTPS with a test CA). */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttp, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import { createServer as createHttps } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export type Handler = (req: IncomingMessage, res: ServerResponse) => void

export interface DocServer {
  origin: string
  port: number
  /** Connections accepted so far. */
  connections: number
  /** Requests per path. */
  hits: Map<string, number>
  routes: Map<string, Handler>
  close(): Promise<void>
}

async function listen(server: Server, scheme: string, host: string): Promise<DocServer> {
  const state: DocServer = {
    origin: '',
    port: 0,
    connections: 0,
    hits: new Map(),
    routes: new Map(),
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
  server.on(scheme === 'https' ? 'secureConnection' : 'connection', () => state.connections++)
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!
    state.hits.set(path, (state.hits.get(path) ?? 0) + 1)
    const handler = state.routes.get(path)
    if (handler) handler(req, res)
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  state.port = (server.address() as { port: number }).port
  state.origin = `${scheme}://${host}:${state.port}`
  return state
}

export function startHttpDocServer(): Promise<DocServer> {
  return listen(createHttp(), 'http', '127.0.0.1')
}

export interface TestCa {
  caPem: string
  keyPem: string
  certPem: string
  caFile: string
  cleanup(): void
}

let made: Pick<TestCa, 'caPem' | 'keyPem' | 'certPem'> | undefined

/** The certificates, made with openssl once per process: four openssl runs per call added up to seconds of CPU per login file, through tap's spawn hooks (issue 22). */
function certificates(): Pick<TestCa, 'caPem' | 'keyPem' | 'certPem'> {
  if (made) return made
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cimd-tls-'))
  try {
    const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
    run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Gatehouse test CA')
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost')
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n')
    run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf')
    made = {
      caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
      keyPem: readFileSync(join(dir, 'server.key'), 'utf8'),
      certPem: readFileSync(join(dir, 'server.pem'), 'utf8'),
    }
    return made
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A CA and a server certificate for localhost and 127.0.0.1, with the CA in a directory of the
 * caller's own (removed by cleanup). Every call in a process gets the same CA: no test here tells
 * two test servers apart by the CA that signed them.
 */
export function makeTestCertificates(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cimd-tls-'))
  const pems = certificates()
  writeFileSync(join(dir, 'ca.pem'), pems.caPem)
  return { ...pems, caFile: join(dir, 'ca.pem'), cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export function startHttpsDocServer(tls: TestCa, host = 'localhost'): Promise<DocServer> {
  return listen(createHttps({ key: tls.keyPem, cert: tls.certPem }) as unknown as Server, 'https', host)
}

export const json = (body: unknown, headers: Record<string, string> = {}): Handler => (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(typeof body === 'string' ? body : JSON.stringify(body))
}
