/**
 * What the Sentinel and Cluster failover suites share: a gateway with every kind of client
 * (login + public client, a machine client, open registration), a set of records written before
 * the failover (grants and refresh tokens, a pending code, a registered client, an MCP session
 * binding, the development signing key), probes run while a master dies, and the checks that the
 * records are still there afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { connectSdk1Client, postJsonRpc } from '../fixtures/mcp-clients.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { AS_CONFIG, codeOf, exchangeCode, loginAndConsent, startAuthorization, tokenRequest } from '../faults/fault-kit.js'

const SECRET = 'failover-bot-secret-3e9a1c7b5d2f4a6e8c0b1d3f'
const basic = `Basic ${Buffer.from(`bot:${SECRET}`).toString('base64')}`
/** A request answered later than this counts as a hang (command timeout 500 ms; a flow makes a few calls). */
export const HANG_MS = 3000

export function failoverGateway(t: Test, store: Record<string, unknown>, upstream: string, publicUrl?: string): Promise<TestGateway> {
  return startTestGateway(t, {
    store: { type: 'redis', redis: store },
    resources: [{ upstream }],
    config: {
      ...AS_CONFIG,
      ...(publicUrl && { publicUrl }),
      clients: [
        ...AS_CONFIG.clients,
        { clientId: 'bot', name: 'Bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', secret: SECRET },
      ],
      registration: { enabled: true, rateLimit: { perAddress: 1000 } },
    },
  })
}

export interface Answer {
  status: number
  ms: number
  retryAfter: string | null
  body: any
}

async function answer(res: Promise<Response>, started: number): Promise<Answer> {
  const r = await res
  const text = await r.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // kept as text
  }
  return { status: r.status, ms: Date.now() - started, retryAfter: r.headers.get('retry-after'), body }
}

/** client_credentials at `gw`: store work is the rate limiter's counters. */
export function machineToken(gw: TestGateway): Promise<Answer> {
  const started = Date.now()
  return answer(
    fetch(`${gw.origin}/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
      signal: AbortSignal.timeout(HANG_MS * 3),
    }),
    started,
  )
}

/** An MCP call on an existing upstream session: the gateway reads (and renews) its binding in the store. */
export function sessionCall(gw: TestGateway, token: string, sessionId: string): Promise<Answer> {
  const started = Date.now()
  return postJsonRpc(`${gw.origin}/mcp`, { jsonrpc: '2.0', id: 7, method: 'tools/list' }, {
    authorization: `Bearer ${token}`,
    'mcp-session-id': sessionId,
    'mcp-protocol-version': '2025-11-25',
  }).then((r) => ({ status: r.status, ms: Date.now() - started, retryAfter: r.headers.get('retry-after'), body: r.text }))
}

/** Registers a public client; `name` differs per call (an identical registration returns the same client with a new token). */
export function register(gw: TestGateway, name: string): Promise<Answer> {
  const started = Date.now()
  return answer(
    fetch(`${gw.origin}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: name, redirect_uris: ['http://127.0.0.1:33333/callback'] }),
    }),
    started,
  )
}

/** A whole authorization-code flow as a browser would do it; the token answer, or the first refusal. */
export async function codeFlow(gw: TestGateway): Promise<{ tokens?: any; failed?: string }> {
  const browser = new FormBrowser(gw.origin)
  const { verifier, page } = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  if (page.status !== 200) return { failed: `authorize ${page.status}` }
  const done = await loginAndConsent(browser, page)
  const code = codeOf(done)
  if (!code) return { failed: `login/consent ${done.status}` }
  const res = await exchangeCode(gw.origin, code, verifier)
  return res.status === 200 ? { tokens: res.body } : { failed: `token ${res.status}` }
}

export interface Before {
  refreshToken: string
  /** A code issued but not exchanged, with its verifier. */
  pending: { code: string; verifier: string }
  /** A code exchanged once already. */
  redeemed: { code: string; verifier: string }
  registration: { uri: string; token: string; clientId: string }
  machine: string
  sessionId: string
  kid: string
  close: () => Promise<void>
}

/** Writes one of everything through `gw`; `sessionIds` lists the upstream's sessions. */
export async function writeEverything(t: Test, gw: TestGateway, sessionIds: () => string[]): Promise<Before> {
  const first = await codeFlow(gw)
  if (!first.tokens) throw new Error(`flow before the failover: ${first.failed}`)
  const rotated = await tokenRequest(gw.origin, { grant_type: 'refresh_token', refresh_token: first.tokens.refresh_token })
  if (rotated.status !== 200) throw new Error(`refresh before the failover: ${rotated.status}`)
  const browser = new FormBrowser(gw.origin)
  const redeemedStart = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  const redeemedCode = codeOf(await loginAndConsent(browser, redeemedStart.page))!
  if ((await exchangeCode(gw.origin, redeemedCode, redeemedStart.verifier)).status !== 200) throw new Error('exchange before the failover')
  const pendingStart = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  const pendingCode = codeOf(pendingStart.page)! // logged in with consent: straight back with a code
  const reg = await register(gw, 'written before the failover')
  if (reg.status !== 201) throw new Error(`registration before the failover: ${reg.status}`)
  const machine = await machineToken(gw)
  const client = await connectSdk1Client(`${gw.origin}/mcp`, { token: machine.body.access_token })
  await client.listTools()
  t.teardown(() => client.close().catch(() => {}))
  return {
    refreshToken: rotated.body.refresh_token,
    pending: { code: pendingCode, verifier: pendingStart.verifier },
    redeemed: { code: redeemedCode, verifier: redeemedStart.verifier },
    registration: { uri: reg.body.registration_client_uri, token: reg.body.registration_access_token, clientId: reg.body.client_id },
    machine: machine.body.access_token,
    sessionId: sessionIds().at(-1)!,
    kid: gw.gateway.keystore!.active.kid,
    close: () => client.close(),
  }
}

export interface ProbeRun {
  answers: Answer[]
  /** ms from `since` to the first round of the last unbroken run of all-200 rounds. */
  recoveredAfterMs: number | undefined
  unavailable: number
}

/**
 * Probes `gw` every 100 ms (a machine token and a session call in parallel) from `since` until
 * `okRounds` rounds in a row were all 200, or `withinMs` passed.
 */
export async function probeUntilRecovered(gw: TestGateway, before: Before, since: number, withinMs = 30_000, okRounds = 10): Promise<ProbeRun> {
  const answers: Answer[] = []
  let streak = 0
  let streakStart: number | undefined
  while (Date.now() - since < withinMs && streak < okRounds) {
    const roundStart = Date.now()
    const round = await Promise.all([machineToken(gw), sessionCall(gw, before.machine, before.sessionId)])
    answers.push(...round)
    if (round.every((a) => a.status === 200)) {
      streakStart ??= roundStart
      streak += 1
    } else {
      streak = 0
      streakStart = undefined
    }
    await sleep(100)
  }
  return {
    answers,
    recoveredAfterMs: streak >= okRounds && streakStart !== undefined ? streakStart - since : undefined,
    unavailable: answers.filter((a) => a.status === 503).length,
  }
}

/** Every probe answered 200 or 503 with Retry-After, none of them late. */
export function checkProbes(t: Test, run: ProbeRun, what: string): void {
  const odd = run.answers.filter((a) => a.status !== 200 && a.status !== 503)
  t.same(odd.map((a) => `${a.status} ${String(typeof a.body === 'string' ? a.body : JSON.stringify(a.body)).slice(0, 120)}`), [], `${what}: only 200 or 503, never a 500 or a wrong answer`)
  t.ok(run.answers.filter((a) => a.status === 503).every((a) => a.retryAfter !== null && Number(a.retryAfter) > 0), `${what}: every 503 has Retry-After`)
  const slowest = Math.max(...run.answers.map((a) => a.ms))
  t.ok(slowest < HANG_MS, `${what}: no hang (slowest answer ${slowest} ms)`)
  t.ok(run.recoveredAfterMs !== undefined, `${what}: recovered (${run.recoveredAfterMs} ms after the kill)`)
}

/** What was written before the failover still works afterwards, at `gw`. */
export async function checkEverything(t: Test, gw: TestGateway, before: Before): Promise<void> {
  const refreshed = await tokenRequest(gw.origin, { grant_type: 'refresh_token', refresh_token: before.refreshToken })
  t.equal(refreshed.status, 200, 'the refresh token issued before the failover rotates after it')
  t.not(refreshed.body.refresh_token, before.refreshToken)
  const pending = await exchangeCode(gw.origin, before.pending.code, before.pending.verifier)
  t.equal(pending.status, 200, 'a code issued before the failover is exchanged after it')
  const replay = await exchangeCode(gw.origin, before.redeemed.code, before.redeemed.verifier)
  t.equal(replay.status, 400, 'a code redeemed before the failover stays redeemed: no second issue')
  const reg = await fetch(before.registration.uri, { headers: { authorization: `Bearer ${before.registration.token}` } })
  t.equal(reg.status, 200, 'the client registered before the failover is still there (RFC 7592 read)')
  t.equal((await sessionCall(gw, before.machine, before.sessionId)).status, 200, 'the MCP session binding survived')
}

/** Error-level log lines other than the store's connection reports and 503s (which a failover must cause). */
export function unexpectedErrors(gw: TestGateway): string[] {
  const expected = new Set(['Redis connection failed; reconnecting', 'store unavailable'])
  return gw.logs.filter((l) => Number(l.level) >= 50 && !expected.has(String(l.msg))).map((l) => JSON.stringify(l).slice(0, 300))
}

export interface Races {
  /** Sends, all at once, two exchanges of each prepared code and two refreshes of one token. */
  fire(): Promise<void>
  /** After recovery: no code issued twice (retries included), no refresh token rotated into two successors. */
  check(t: Test): Promise<void>
}

/** Codes and a refresh token to race with while a master dies. */
export async function prepareRaces(gw: TestGateway, codes = 3): Promise<Races> {
  const browser = new FormBrowser(gw.origin)
  const racing: { code: string; verifier: string }[] = []
  for (let i = 0; i < codes; i++) {
    const start = await startAuthorization(browser, gw.origin, gw.mcpUrl())
    const code = codeOf(start.page.status === 200 ? await loginAndConsent(browser, start.page) : start.page)!
    racing.push({ code, verifier: start.verifier })
  }
  const flow = await codeFlow(gw)
  if (!flow.tokens) throw new Error(`race setup: ${flow.failed}`)
  const refreshToken = flow.tokens.refresh_token as string
  let exchanged: Awaited<ReturnType<typeof exchangeCode>>[] = []
  let refreshed: Awaited<ReturnType<typeof tokenRequest>>[] = []
  return {
    fire: async () => {
      const exchanges = racing.flatMap((c) => [exchangeCode(gw.origin, c.code, c.verifier), exchangeCode(gw.origin, c.code, c.verifier)])
      const refreshes = [0, 1].map(() => tokenRequest(gw.origin, { grant_type: 'refresh_token', refresh_token: refreshToken }))
      ;[exchanged, refreshed] = await Promise.all([Promise.all(exchanges), Promise.all(refreshes)])
    },
    check: async (t) => {
      t.ok(exchanged.every((r) => [200, 400, 503].includes(r.status)), `exchanges during the failover: ${exchanged.map((r) => r.status).join(' ')}`)
      for (let i = 0; i < racing.length; i++) {
        const pair = exchanged.slice(2 * i, 2 * i + 2)
        const retry = await exchangeCode(gw.origin, racing[i]!.code, racing[i]!.verifier)
        t.ok([...pair, retry].filter((r) => r.status === 200).length <= 1, `code ${i}: issued at most once, a retry after the failover included (${[...pair, retry].map((r) => r.status).join(' ')})`)
      }
      t.ok(refreshed.every((r) => [200, 400, 503].includes(r.status)), `refreshes during the failover: ${refreshed.map((r) => r.status).join(' ')}`)
      const successors = new Set(refreshed.filter((r) => r.status === 200).map((r) => r.body.refresh_token))
      t.ok(successors.size <= 1, 'one successor refresh token at most')
      const again = await tokenRequest(gw.origin, { grant_type: 'refresh_token', refresh_token: refreshToken })
      if (successors.size === 1) t.equal(again.body.refresh_token, [...successors][0], 'a retry after the failover gets that same successor (REF-01)')
    },
  }
}
