/**
 * Parts of the scale-out soak (issue 16): agents that run whole OAuth + MCP flows spread over
 * gateway replicas, watchers that hold notification streams open at each replica, and the
 * figures (flows/s, calls/s, p99 latency per step) printed as TAP comments.
 *
 * A flow of agent i, k-th time round: authorization (authorization code + PKCE, login and consent
 * as a browser) at one replica, the code exchange at the next, then two concurrent refreshes of
 * the new refresh token at two replicas (REF-03: one rotation, both answered with the same
 * successor), then an MCP session with tool calls (answers streamed as SSE) at the third. Every
 * fourth flow races its code exchange at two replicas instead: at most one may win (both lose
 * when the replay revokes the grant before the first answer), and the replay revokes the grant
 * (RFC 9700 §4.1.3) everywhere.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { Agent, fetch as undiciFetch } from 'undici'
import { connectSdk1Client, postJsonRpc, readSseEvents } from '../fixtures/mcp-clients.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { codeOf, exchangeCode, loginAndConsent, startAuthorization, tokenRequest } from '../faults/fault-kit.js'

/** Seconds of soak per topology (GATEHOUSE_SOAK_SECONDS for longer runs). */
export const SOAK_SECONDS = Number(process.env.GATEHOUSE_SOAK_SECONDS ?? 12)
/** Concurrent agents (GATEHOUSE_SOAK_AGENTS). */
export const SOAK_AGENTS = Number(process.env.GATEHOUSE_SOAK_AGENTS ?? 6)
const CALLS_PER_FLOW = 3

export interface Replica {
  name: string
  origin: string
}

/** Where requests go: round-robin over the replicas still in the pool (a load balancer's view). */
export class Pool {
  readonly #live: Replica[]
  constructor(replicas: Replica[]) {
    this.#live = [...replicas]
  }
  pick(n: number): Replica {
    return this.#live[n % this.#live.length]!
  }
  remove(r: Replica): void {
    this.#live.splice(this.#live.indexOf(r), 1)
  }
}

export interface Failure {
  op: string
  /** The replicas the step talked to. */
  replicas: string[]
  startedAt: number
  message: string
}

class StepFailed extends Error {}

/** What the agents did, for the assertions and the figures. */
export class Tally {
  readonly latencies = new Map<string, number[]>()
  readonly failures: Failure[] = []
  /** Flows that ended with working tokens, per replica that did the authorization. */
  readonly flowsAt = new Map<string, number>()
  flows = 0
  calls = 0
  races = 0
  /** Raced exchanges where the replay revoked the grant before either answer: both refused. */
  racesBothRefused = 0
  codesIssuedTwice = 0
  refreshesRotatedTwice = 0
  /** Raced codes whose winner's refresh token still worked after the replay: what happened. */
  readonly replaysNotRevoked: string[] = []
  /** The newest refresh token of every completed flow: each must still work at the end. */
  readonly grants: string[] = []
  /** Flows that completed after the kill, per replica that did the authorization. */
  readonly afterKillAt = new Map<string, number>()
  killedAt = Infinity

  async step<T>(op: string, at: Replica | Replica[], run: () => Promise<T>, ok: (v: T) => boolean, show: (v: T) => string): Promise<T> {
    const startedAt = Date.now()
    const replicas = [at].flat().map((r) => r.name)
    let value: T
    try {
      value = await run()
    } catch (err) {
      this.failures.push({ op, replicas, startedAt, message: String((err as Error).cause ?? err) })
      throw new StepFailed(op)
    }
    if (!ok(value)) {
      this.failures.push({ op, replicas, startedAt, message: show(value) })
      throw new StepFailed(op)
    }
    const list = this.latencies.get(op) ?? []
    list.push(Date.now() - startedAt)
    this.latencies.set(op, list)
    return value
  }

  p99(op: string): number {
    const sorted = [...(this.latencies.get(op) ?? [])].sort((a, b) => a - b)
    return sorted[Math.max(0, Math.ceil(sorted.length * 0.99) - 1)] ?? NaN
  }

  figures(what: string, seconds: number): string[] {
    const ops = [...this.latencies.keys()]
    return [
      `soak ${what}: ${seconds.toFixed(1)} s, ${SOAK_AGENTS} agents: ${this.flows} flows (${(this.flows / seconds).toFixed(1)}/s), ` +
        `${this.calls} tool calls (${(this.calls / seconds).toFixed(1)}/s), ${this.races} raced code exchanges (${this.racesBothRefused} of them both refused)`,
      `soak ${what}: p99 latency ms: ${ops.map((op) => `${op} ${this.p99(op)}`).join(', ')}`,
      `soak ${what}: flows per authorizing replica: ${show(this.flowsAt)}; completed after the kill: ${show(this.afterKillAt)}`,
    ]
  }
}

const show = (m: Map<string, number>) => [...m].map(([r, n]) => `${r} ${n}`).join(', ')
const isJson = (r: { status: number }) => r.status === 200
const showStatus = (r: { status: number; body?: unknown }) => `${r.status} ${JSON.stringify(r.body ?? '').slice(0, 160)}`

/** One agent: flows back to back until `until`, each step at the replica the pool names. */
export async function runAgent(index: number, pool: Pool, tally: Tally, until: number, resource: string): Promise<void> {
  const browsers = new Map<string, FormBrowser>()
  for (let k = 0; Date.now() < until; k++) {
    try {
      await flow(index * 7 + k, k % 4 === 3)
    } catch (err) {
      if (!(err instanceof StepFailed)) throw err
      await sleep(50) // a client backs off before it starts again
    }
  }

  async function flow(n: number, race: boolean): Promise<void> {
    const [auth, token, mcp] = [pool.pick(n), pool.pick(n + 1), pool.pick(n + 2)]
    const browser = browsers.get(auth.origin) ?? new FormBrowser(auth.origin)
    browsers.set(auth.origin, browser)
    const { code, verifier } = await tally.step(
      'authorize',
      auth,
      async () => {
        const start = await startAuthorization(browser, auth.origin, resource)
        // Signed in and consented at this replica before: straight back with a code.
        const done = start.page.status === 200 ? await loginAndConsent(browser, start.page) : start.page
        return { code: codeOf(done), verifier: start.verifier, status: done.status }
      },
      (v) => v.code !== undefined,
      (v) => `no code (${v.status})`,
    )
    if (race) {
      tally.races += 1
      const both = await tally.step(
        'raced exchange',
        [token, mcp],
        () => Promise.all([exchangeCode(token.origin, code!, verifier), exchangeCode(mcp.origin, code!, verifier)]),
        (v) => v.every((r) => r.status === 200 || r.body?.error === 'invalid_grant'),
        (v) => v.map(showStatus).join(' / '),
      )
      const winners = both.filter((r) => r.status === 200)
      if (winners.length > 1) tally.codesIssuedTwice += 1
      // Both refused: the replay revoked the grant before the first exchange answered (grants.ts).
      if (winners.length === 0) return void (tally.racesBothRefused += 1)
      // The loser was a replay: the grant it came from is revoked at every replica.
      const after = await tally.step(
        'refresh after replay',
        auth,
        () => tokenRequest(auth.origin, { grant_type: 'refresh_token', refresh_token: winners[0]!.body.refresh_token }),
        () => true,
        () => '',
      )
      if (after.status !== 400) tally.replaysNotRevoked.push(`${both.map(showStatus).join(' / ')}; then ${showStatus(after)}`)
      return
    }
    const first = await tally.step('token', token, () => exchangeCode(token.origin, code!, verifier), isJson, showStatus)
    const refresh = (at: Replica) => tokenRequest(at.origin, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token })
    const rotated = await tally.step(
      'refresh',
      [token, auth],
      () => Promise.all([refresh(token), refresh(auth)]),
      (v) => v.every(isJson),
      (v) => v.map(showStatus).join(' / '),
    )
    if (new Set(rotated.map((r) => r.body.refresh_token)).size > 1) tally.refreshesRotatedTwice += 1

    const client = await tally.step(
      'mcp connect',
      mcp,
      () =>
        connectSdk1Client(`${mcp.origin}/mcp`, {
          token: rotated[0]!.body.access_token,
          transport: { reconnectionOptions: { initialReconnectionDelay: 100, maxReconnectionDelay: 100, reconnectionDelayGrowFactor: 1, maxRetries: 0 } },
        }),
      () => true,
      () => '',
    )
    client.onerror = () => {} // its GET stream cut by a crash: the next call says so
    try {
      for (let c = 0; c < CALLS_PER_FLOW; c++) {
        const text = `agent ${index} flow ${n} call ${c}`
        await tally.step(
          'tool call',
          mcp,
          () => client.callTool({ name: 'echo', arguments: { text } }, undefined, { timeout: 5000 }),
          (v) => JSON.stringify(v.content).includes(text),
          (v) => JSON.stringify(v).slice(0, 160),
        )
        tally.calls += 1
      }
      await (client.transport as StreamableHTTPClientTransport).terminateSession().catch(() => {})
    } finally {
      await client.close().catch(() => {})
    }
    tally.flows += 1
    tally.flowsAt.set(auth.name, (tally.flowsAt.get(auth.name) ?? 0) + 1)
    if (Date.now() > tally.killedAt) tally.afterKillAt.set(auth.name, (tally.afterKillAt.get(auth.name) ?? 0) + 1)
    tally.grants.push(rotated[0]!.body.refresh_token)
  }
}

/** A notification stream held open at one replica for the whole soak. */
export interface Watcher {
  replica: string
  /** receivedAt (Date.now()) of every event. */
  events: number[]
  /** When the stream ended (undefined: still open). */
  endedAt?: number
  close(): void
}

/**
 * An MCP session opened at `replica` by hand (initialize, then notifications/initialized): no GET
 * stream of its own, which would hold the session's one stream slot at the upstream.
 */
export async function openSession(replica: Replica, token: string): Promise<string> {
  const headers = { authorization: `Bearer ${token}`, 'mcp-protocol-version': '2025-11-25' }
  const init = await postJsonRpc(`${replica.origin}/mcp`, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'soak-watcher', version: '1.0.0' } } }, headers)
  const sessionId = init.headers.get('mcp-session-id')
  if (init.status !== 200 || !sessionId) throw new Error(`initialize at ${replica.name}: ${init.status} ${init.text.slice(0, 200)}`)
  const ready = await postJsonRpc(`${replica.origin}/mcp`, { jsonrpc: '2.0', method: 'notifications/initialized' }, { ...headers, 'mcp-session-id': sessionId })
  if (ready.status !== 202) throw new Error(`initialized at ${replica.name}: ${ready.status}`)
  return sessionId
}

/**
 * Holds a raw GET stream on `sessionId` at `replica`; resolves with the first event (the
 * upstream sends an idle stream's headers with its first event), then counts the rest.
 */
export async function holdStream(replica: Replica, token: string, sessionId: string): Promise<Watcher> {
  const dispatcher = new Agent()
  const watcher: Watcher = { replica: replica.name, events: [], close: () => void dispatcher.destroy().catch(() => {}) }
  const res = await undiciFetch(`${replica.origin}/mcp`, {
    dispatcher,
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
  })
  if (res.status !== 200) throw new Error(`stream at ${replica.name}: ${res.status}`)
  const events = readSseEvents(res as unknown as Response)
  const first = await events.next()
  if (!first.done) watcher.events.push(Date.now())
  void (async () => {
    try {
      for await (const _ of events) watcher.events.push(Date.now())
    } catch {
      // cut: the end is what counts
    }
    watcher.endedAt = Date.now()
  })()
  return watcher
}
