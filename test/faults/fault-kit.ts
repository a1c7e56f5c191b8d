/**
 * Parts for the fault-injection suites: a gateway configured with short store timeouts on a
 * private redis-server (test/helpers/redis.ts: redisServerForTests, which can persist to disk and
 * accepts DEBUG SLEEP), a login and consent flow driven like a browser, and small measuring
 * helpers (elapsed time, open file descriptors). Stray errors: test/helpers/stray-errors.ts.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { hashPassword } from '../../src/login/passwords.js'
import { FormBrowser, type Visit } from '../helpers/form-browser.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { redisServerForTests, type TestRedisServer } from '../helpers/redis.js'
import { watchStrayErrors } from '../helpers/stray-errors.js'

/**
 * Store settings sized for tests: a hung Redis costs a request 300 ms, not the default 2 s.
 * The connect timeout stays roomy: on loopback a connection is made or refused at once (even a
 * SIGSTOPped Redis's kernel accepts it), so it only bounds how long a starting gateway waits for
 * its first connection to be ready, and 300 ms of that failed gateway starts on a busy machine.
 */
export const FAST_STORE = { commandTimeoutMs: 300, connectTimeoutMs: 2000 } as const
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

/** A gateway on `redis` with FAST_STORE timeouts, proxying `upstream`, with AS_CONFIG and `config`. */
export function faultGateway(t: Test, redis: TestRedisServer, upstream: string, config: Record<string, unknown> = {}): Promise<TestGateway> {
  return startTestGateway(t, {
    store: { type: 'redis', redis: { url: redis.url, keyPrefix: 'faults:', ...FAST_STORE } },
    resources: [{ upstream }],
    config: { ...AS_CONFIG, ...config },
  })
}

export interface FaultSetup {
  redis: TestRedisServer
  gw: TestGateway
  /** Asserts that no unhandled rejection or uncaught exception happened since the setup. */
  noStrayErrors: () => void
}

/**
 * A private redis-server (persisting with `persist`), stray errors watched from then on, and a
 * faultGateway on it. Undefined when redis-server cannot run (the test is skipped or failed).
 */
export async function faultSetup(
  t: Test,
  upstream: string,
  { persist = false, config = {} }: { persist?: boolean; config?: Record<string, unknown> } = {},
): Promise<FaultSetup | undefined> {
  const redis = await redisServerForTests(t, { persist })
  if (!redis) return undefined
  const noStrayErrors = watchStrayErrors(t)
  const gw = await faultGateway(t, redis, upstream, config)
  return { redis, gw, noStrayErrors }
}

/** The store's health as `gw` reports it on /healthz (which never waits for the store). */
export const storeState = async (gw: TestGateway): Promise<string> => ((await (await fetch(`${gw.origin}/healthz`)).json()) as { store: string }).store

/**
 * Whether `gw` serves with its store again (by itself) within 8 s: its store answers, and
 * /healthz says so (its state may lag a probe behind the store, never the other way round).
 */
export const readyAgain = (gw: TestGateway): Promise<boolean> =>
  eventually(async () => {
    await gw.gateway.store.ping()
    return (await storeState(gw)) === 'up'
  }, 8000)

/** Whether `gw` reports its store down within 5 s. */
export const storeReportedDown = (gw: TestGateway): Promise<boolean> => eventually(async () => (await storeState(gw)) === 'down', 5000)

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
