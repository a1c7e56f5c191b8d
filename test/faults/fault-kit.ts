/**
 * Parts for the fault-injection suites: a private redis-server that can persist to disk and
 * accepts DEBUG (for DEBUG SLEEP), a gateway configured with short store timeouts, a login and
 * consent flow driven like a browser, and small measuring helpers (elapsed time, open file
 * descriptors, stray errors).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { hashPassword } from '../../src/login/passwords.js'
import { FormBrowser, type Visit } from '../helpers/form-browser.js'
import { freePort } from '../helpers/gateway.js'
import { redisUnavailable } from '../helpers/redis.js'

export interface FaultRedis {
  port: number
  url: string
  /** A client without a key prefix and without the gateway's fail-fast settings, for FLUSHALL and DEBUG. */
  admin(): Redis
  /** SIGKILL: an outage, not a shutdown. With persistence, every acknowledged write is on disk (fsync always). */
  kill(): Promise<void>
  /** Starts again on the same port (and the same data directory). */
  start(): Promise<void>
  /** SIGSTOP: connections stay open, nothing is answered (a hung Redis). */
  pause(): void
  resume(): void
}

/**
 * A private redis-server on a free port. `persist` turns on the append-only file with an fsync
 * per write, so a SIGKILL loses nothing that Redis acknowledged. DEBUG is allowed from loopback.
 */
export async function faultRedis(t: Test, { persist = false }: { persist?: boolean } = {}): Promise<FaultRedis | undefined> {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-faults-'))
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--enable-debug-command', 'local']
  args.push(...(persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']))
  let child: ChildProcess | undefined
  const admins: Redis[] = []
  const kill = async (): Promise<void> => {
    const running = child
    child = undefined
    if (!running || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGKILL')
    await exited
  }
  const start = async (): Promise<void> => {
    child = await launch(args, port, dir)
  }
  t.teardown(async () => {
    for (const a of admins) a.disconnect()
    await kill()
    await rm(dir, { recursive: true, force: true })
  })
  try {
    await start()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    redisUnavailable(t, 'redis-server not found on PATH')
    return undefined
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    admin: () => {
      const a = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, lazyConnect: false })
      a.on('error', () => {})
      admins.push(a)
      return a
    },
    kill,
    start,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
  }
}

async function launch(args: string[], port: number, cwd: string): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const failed = new Promise<never>((_, reject) => {
    child.once('error', reject)
    child.once('exit', (code, signal) => reject(new Error(`redis-server exited (${code ?? signal}): ${stderr}`)))
  })
  failed.catch(() => {})
  const deadline = Date.now() + 5000
  while (!(await Promise.race([accepts(port), failed]))) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`redis-server did not listen on port ${port}: ${stderr}`)
    }
    await sleep(30)
  }
  return child
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Store settings sized for tests: a hung Redis costs a request 300 ms, not the default 2 s. */
export const FAST_STORE = { commandTimeoutMs: 300, connectTimeoutMs: 300 } as const
/** A request that needs a hung or dead store must be answered within this (a few command timeouts). */
export const BOUNDED_MS = 1500

/** Runs `fn` and returns its result with the elapsed milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now()
  const value = await fn()
  return { value, ms: Math.round(performance.now() - started) }
}

/** Polls `check` until it returns true or `withinMs` passes; returns whether it did. */
export async function eventually(check: () => Promise<boolean>, withinMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + withinMs
  for (;;) {
    try {
      if (await check()) return true
    } catch {
      // not yet
    }
    if (Date.now() > deadline) return false
    await sleep(everyMs)
  }
}

/** Open file descriptors of this process (Linux), to catch leaked sockets. */
export async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length
}

/** Collects unhandled rejections and uncaught exceptions; the returned check asserts there were none. */
export function watchStrayErrors(t: Test): () => void {
  const stray: unknown[] = []
  const record = (err: unknown): void => void stray.push(err)
  process.on('unhandledRejection', record)
  process.on('uncaughtException', record)
  t.teardown(() => {
    process.off('unhandledRejection', record)
    process.off('uncaughtException', record)
  })
  return () => t.same(stray.map(String), [], 'no unhandled rejection or uncaught exception')
}

// ---------------------------------------------------------------------------------------------
// An authorization-server configuration and a browser flow through it

export const USER = { username: 'alice', password: 'correct horse battery staple' }
export const CLIENT_ID = 'fault-app'
export const REDIRECT = 'http://127.0.0.1:43210/callback'
const passwordHash = await hashPassword(USER.password)

/** Login and one public client: enough for the authorization-code flow. */
export const AS_CONFIG = {
  login: { static: { users: [{ username: USER.username, passwordHash }] } },
  clients: [{ clientId: CLIENT_ID, name: 'Fault App', redirectUris: ['http://127.0.0.1/callback'], tokenEndpointAuthMethod: 'none' }],
}

export interface FlowStart {
  verifier: string
  /** The login page of a started authorization request. */
  page: Visit
}

/** Starts an authorization request at `origin` as a browser: the login page. */
export async function startAuthorization(browser: FormBrowser, origin: string, resource: string): Promise<FlowStart> {
  const verifier = randomBytes(32).toString('base64url')
  const url = new URL('/oauth/authorize', origin)
  const query = {
    response_type: 'code',
    client_id: CLIENT_ID,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    resource,
    scope: 'mcp',
    state: randomBytes(8).toString('hex'),
    redirect_uri: REDIRECT,
  }
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
  return { verifier, page: await browser.get(url.href) }
}

/** Logs in and consents from a login page; the final visit (a redirect with the code on success). */
export async function loginAndConsent(browser: FormBrowser, page: Visit): Promise<Visit> {
  let next = await browser.submit(page, USER)
  if (next.status === 200 && next.html.includes('decision')) next = await browser.submit(next, { decision: 'allow' })
  return next
}

export function codeOf(visit: Visit): string | undefined {
  return visit.location === undefined ? undefined : (new URL(visit.location).searchParams.get('code') ?? undefined)
}

export async function tokenRequest(origin: string, fields: Record<string, string>): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(new URL('/oauth/token', origin), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: CLIENT_ID, ...fields }).toString(),
  })
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // left as text: the assertion shows it
  }
  return { status: res.status, headers: res.headers, body }
}

export function exchangeCode(origin: string, code: string, verifier: string) {
  return tokenRequest(origin, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT })
}
