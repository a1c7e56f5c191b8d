/**
 * Proxy benchmark (`npm run bench`; not part of the test suite).
 *
 * Measures MCP `tools/call` throughput, latency and proxy CPU per call for the same real
 * upstream MCP server reached several ways, in one interleaved run:
 *
 *   direct   autocannon → upstream (SDK servers from test/fixtures/mcp-upstream.ts)
 *   bare     autocannon → minimal Fastify + @fastify/http-proxy (no auth, nothing else) → upstream
 *   nginx    autocannon → nginx (Debian's package, a plain reverse proxy, buffering off; nginx.ts)
 *   gateway  autocannon → Gatehouse (startGateway, token checks on, memory store) → upstream,
 *            at log level info (the default: access line + policy audit event per call) and warn
 *
 * Scenarios (BENCH_SCENARIOS, default all):
 *   stateless   SDK1 upstream, stateless, JSON answers: every call is one POST and one JSON
 *               body. All targets; the ratio table's headline lines come from here.
 *   stateful    SDK1 upstream with sessions: each connection initialises a session and sends its
 *               Mcp-Session-Id on every call, so the gateway checks the session binding.
 *   dpop        as stateless, with a DPoP-bound token and a fresh proof per call (dpop-proofs.ts).
 *   2026-07-28  SDK2 upstream; the gateway checks the mirrored Mcp-Method / Mcp-Name headers.
 * After the main rounds, the stateless targets are called again over one connection each, one
 * call at a time and the targets in turn (one-connection.ts): the latency each proxy adds to a
 * call, against direct calls taken in the same seconds. Then same-moment
 * pairs (paired.ts): the gateway at info and each other proxy loaded at once, at one fixed rate
 * each, so both see the same machine; their CPU per call compares without the drift between
 * rounds (BENCH_PAIRED_ROUNDS, default 6, 0 leaves them out; BENCH_PAIRED_RATE calls/s per side,
 * default a third of the bare proxy's median throughput; BENCH_PAIRED_CONNECTIONS, default 8).
 *
 * Process layout. The servers run in child processes (servers.ts, processes.ts) and autocannon
 * alone in this process. BENCH_PIN=0:1 pins autocannon to CPU 0 and every server to CPU 1
 * (taskset), so a proxy's CPU per request is not inflated by sharing its core with the load
 * generator; unpinned, the OS spreads them over the cores as a deployment would. Either way,
 * compare targets within one run: "gateway vs bare proxy" and "vs nginx" compare like with like.
 *
 * Interleaving. After a warm-up, targets run in short rounds, one round per target per cycle,
 * with the order rotated each cycle (A B C D, B C D A, ...), so drift on a shared machine and
 * position effects hit every target alike. Each figure is the median of the per-round values,
 * with the min–max over rounds as its spread; ratios are medians of per-cycle ratios.
 *
 * Environment: BENCH_DURATION (s per round, default 2), BENCH_ROUNDS (default 6),
 * BENCH_CONNECTIONS (default 32), BENCH_WARMUP (s per target, default 10), BENCH_LEAD_IN_MS
 * (load at the start of each round before counting, default 500), BENCH_SINGLE_ROUNDS
 * (one-connection rounds, default 3), BENCH_SLICE_MS (each target's turn in them, default 250),
 * BENCH_PIN, BENCH_NGINX=0 (leave nginx out), BENCH_WARN=0 (leave the warn-level gateway out); on a shared
 * machine BENCH_QUIET_WAIT (longest wait for other processes to calm down before a round,
 * default 5 s), BENCH_REDO (how often a round disturbed by other processes is re-run, default
 * 2) and BENCH_PATIENCE (total seconds for both, default 30; 0 turns both off); BENCH_JSON=file
 * also writes every round's figures; BENCH_NODE=<node binary> runs the servers on that Node
 * (processes.ts); BENCH_PROFILE=dir writes a V8 CPU profile of each Node
 * server process there (slows them down; summarise one with profile-top.ts).
 */
import autocannon from 'autocannon'
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { closeAll, NginxProcess, PIN, pinLoadGenerator, processes, ServerProcess, type Measured } from './processes.js'
import { proofSigner, type ProofSigner } from './dpop-proofs.js'
import { alternatingRound } from './one-connection.js'
import { pairedRound, type PairedResult } from './paired.js'
import { cell, fmtInt, fmtMs, fmtPct, fmtRatio, machineCpu, median, percentile, sleep, spread, table } from './stats.js'

// ---------------------------------------------------------------------------------------------
// Settings

function intEnv(name: string, fallback: number, min = 1): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min} (got ${raw})`)
  return n
}

const DURATION = intEnv('BENCH_DURATION', 2)
const ROUNDS = intEnv('BENCH_ROUNDS', 6)
/** Interleaved rounds with one connection (the added latency of one call); 0 leaves them out. */
const SINGLE_ROUNDS = intEnv('BENCH_SINGLE_ROUNDS', 3, 0)
/** How long each target's turn lasts in those rounds (one-connection.ts). */
const SLICE_MS = intEnv('BENCH_SLICE_MS', 250, 50)
/**
 * BENCH_BASELINE=<directory of another checkout>: its gateway (log info) joins the stateless
 * scenario as one more target, so a change is compared with its baseline in one interleaved run.
 */
const BASELINE = process.env.BENCH_BASELINE || undefined
/** Proofs signed per second of a DPoP round: more than any gateway answers on this machine kind. */
const PROOFS_PER_SECOND = intEnv('BENCH_DPOP_PROOFS_PER_SECOND', 3000)
/** Same-moment pairs (paired.ts) after the interleaved rounds; 0 leaves them out. */
const PAIRED_ROUNDS = intEnv('BENCH_PAIRED_ROUNDS', 6, 0)
/** Calls per second for each side of a pair; default a third of the bare proxy's median throughput. */
const PAIRED_RATE = process.env.BENCH_PAIRED_RATE ? intEnv('BENCH_PAIRED_RATE', 200) : undefined
const PAIRED_CONNECTIONS = intEnv('BENCH_PAIRED_CONNECTIONS', 8)
/** BENCH_NGINX=0 leaves nginx out (otherwise installed with apt-get when missing, see nginx.ts). */
const NGINX = process.env.BENCH_NGINX !== '0'
/** BENCH_WARN=0 leaves the warn-level gateway out (a shorter before/after run with BENCH_BASELINE). */
const WARN = process.env.BENCH_WARN !== '0'
let nginxVersion = 'nginx (not measured)'
/** The CPUs /proc/stat counts: availableParallelism() shrinks to the pinned core once this process is pinned. */
const MACHINE_CPUS = os.cpus().length
const CONNECTIONS = intEnv('BENCH_CONNECTIONS', 32)
/**
 * Seconds of load per target before the rounds. A new Node server needs some 5,000 calls before
 * V8 has optimised its path (measured: 1,000 µs of proxy CPU per call in its first two seconds,
 * 660 in the next two, 280 by the fifth); with two seconds, the first rounds of every Node target
 * were still warming up while nginx, which has nothing to warm, was not.
 */
const WARMUP = intEnv('BENCH_WARMUP', 10, 0)
/**
 * Milliseconds of load at the start of each round before anything is counted. Between its rounds
 * a target idles while the others run, and a Node server's first calls after idling cost more
 * (measured: 358 µs a call in the first round after 8 s of idling, 270 in the rounds around it):
 * the lead-in lets each round measure the server as it runs under load.
 */
const LEAD_IN_MS = intEnv('BENCH_LEAD_IN_MS', 500, 0)
/** Longest wait for a quiet machine before one round, in seconds. */
const QUIET_WAIT = intEnv('BENCH_QUIET_WAIT', 5, 0)
/** How often one disturbed round may be run again. */
const REDO_LIMIT = intEnv('BENCH_REDO', 2, 0)
/** Total seconds the run may spend waiting for quiet and re-running rounds; bounds the runtime. */
const PATIENCE = intEnv('BENCH_PATIENCE', 30, 0)
const QUIET_THRESHOLD = 0.15
const ALL_SCENARIOS = ['stateless', 'stateful', 'dpop', '2026-07-28'] as const
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? ALL_SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean)
for (const s of SCENARIOS) if (!(ALL_SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}`)

const PROTOCOL_VERSION = '2025-11-25'
/** 2026-07-28: the body carries the _meta envelope and the headers mirror method and name (MCPT-11). */
const MODERN_VERSION = '2026-07-28'
const MODERN_CALL_BODY = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: {
    name: 'echo',
    arguments: { text: 'hello' },
    _meta: {
      'io.modelcontextprotocol/protocolVersion': MODERN_VERSION,
      'io.modelcontextprotocol/clientInfo': { name: 'gatehouse-bench', version: '1.0.0' },
      'io.modelcontextprotocol/clientCapabilities': {},
    },
  },
})
const MODERN_HEADERS: Record<string, string> = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': MODERN_VERSION,
  'mcp-method': 'tools/call',
  'mcp-name': 'echo',
}
const CALL_BODY = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'echo', arguments: { text: 'hello' } },
})
const BASE_HEADERS: Record<string, string> = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': PROTOCOL_VERSION,
}

// ---------------------------------------------------------------------------------------------
// Targets and their pre-flight checks

type Scenario = (typeof ALL_SCENARIOS)[number]

interface Target {
  scenario: Scenario
  label: string
  kind: 'direct' | 'bare' | 'nginx' | 'gateway' | 'baseline'
  url: string
  headers: Record<string, string>
  /** The tools/call every request sends. */
  body: string
  /** DPoP scenario, gateways: signs the proofs, one per request. */
  dpop?: { signer: ProofSigner; token: string }
  /** Stateful scenario: one session id per connection. */
  sessions?: string[]
  /** The exact answer every measured call must return. */
  expectBody: string
  /** The process in front of the upstream (bare proxy, nginx or gateway); none for direct. */
  proxy: Measured | undefined
  upstream: Measured
  rounds: RoundResult[]
  /** One-connection rounds (one-connection.ts), for the latency a proxy adds to a call. */
  single: SingleResult[]
}

interface SingleResult {
  cycle: number
  /** Median latency, milliseconds. */
  p50: number
  proxyCpu: number | undefined
}

interface Pair {
  first: Target
  second: Target
  rate: number
  rounds: PairedResult[]
}

interface RoundResult {
  cycle: number
  requests: number
  seconds: number
  rps: number
  p50: number
  p99: number
  non2xx: number
  errors: number
  mismatches: number
  /** CPU microseconds per completed request, per process. */
  proxyCpu: number | undefined
  upstreamCpu: number
  loadgenCpu: number
  /** Share of the machine's CPU capacity used by processes outside the benchmark during the round. */
  others: number | undefined
}

async function post(url: string, headers: Record<string, string>, body: string) {
  const res = await fetch(url, { method: 'POST', headers, body })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

function fail(target: string, what: string, res: { status: number; text: string }): never {
  throw new Error(`${target}: ${what} (got HTTP ${res.status}: ${res.text.slice(0, 300)})`)
}

/** One tools/call must answer 200 with the echo result; returns the exact body. */
async function checkEcho(label: string, url: string, headers: Record<string, string>, body = CALL_BODY): Promise<string> {
  const res = await post(url, headers, body)
  if (res.status !== 200) fail(label, 'tools/call did not answer 200', res)
  if (!res.headers.get('content-type')?.startsWith('application/json')) fail(label, 'tools/call did not answer JSON', res)
  const parsed = JSON.parse(res.text) as { id?: unknown; result?: { content?: { type?: string; text?: string }[] } }
  const text = parsed.result?.content?.[0]?.text
  if (parsed.id !== 1 || text !== 'hello') fail(label, 'tools/call did not return the echo result', res)
  return res.text
}

/** The gateway must refuse a call without a token: its checks are really on. */
async function checkRefusesAnonymous(label: string, url: string, headers: Record<string, string>, body = CALL_BODY): Promise<void> {
  const { authorization: _drop, ...anonymous } = headers
  const res = await post(url, anonymous, body)
  if (res.status !== 401 || !res.headers.get('www-authenticate')?.startsWith('Bearer')) {
    fail(label, 'a call without a token was not refused with 401 + WWW-Authenticate: Bearer', res)
  }
}

/** initialize + notifications/initialized; returns the session id. */
async function openSession(label: string, url: string, headers: Record<string, string>): Promise<string> {
  const init = await post(
    url,
    headers,
    JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'gatehouse-bench', version: '1.0.0' } },
    }),
  )
  const sessionId = init.headers.get('mcp-session-id')
  if (init.status !== 200 || !sessionId) fail(label, 'initialize did not answer 200 with an Mcp-Session-Id', init)
  const withSession = { ...headers, 'mcp-session-id': sessionId }
  const initialized = await post(url, withSession, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))
  if (initialized.status !== 202) fail(label, 'notifications/initialized did not answer 202', initialized)
  return sessionId
}

async function makeTarget(
  scenario: Scenario,
  kind: Target['kind'],
  label: string,
  front: Measured,
  upstream: Measured,
  signer?: ProofSigner,
): Promise<Target> {
  const modern = scenario === '2026-07-28'
  const body = modern ? MODERN_CALL_BODY : CALL_BODY
  const dpop = signer && front.token ? { signer, token: front.token } : undefined
  const scheme = dpop ? 'DPoP' : 'Bearer'
  const headers = { ...(modern ? MODERN_HEADERS : BASE_HEADERS), ...(front.token && { authorization: `${scheme} ${front.token}` }) }
  // The pre-flight calls need proofs of their own.
  const checked = async () => (dpop ? { ...headers, dpop: (await dpop.signer.sign(1, front.url, dpop.token))[0]! } : headers)
  const name = `${scenario}/${label}`
  let sessions: string[] | undefined
  let expectBody: string
  if (scenario === 'stateful') {
    sessions = []
    for (let i = 0; i < CONNECTIONS; i++) sessions.push(await openSession(name, front.url, headers))
    expectBody = await checkEcho(name, front.url, { ...headers, 'mcp-session-id': sessions[0]! })
    if (kind === 'gateway') {
      await checkRefusesAnonymous(name, front.url, { ...headers, 'mcp-session-id': sessions[0]! })
    }
  } else {
    expectBody = await checkEcho(name, front.url, await checked(), body)
    if (kind === 'gateway' || kind === 'baseline') await checkRefusesAnonymous(name, front.url, await checked(), body)
  }
  return {
    scenario,
    label,
    kind,
    url: front.url,
    headers,
    body,
    ...(dpop && { dpop }),
    ...(sessions && { sessions }),
    expectBody,
    proxy: kind === 'direct' ? undefined : front,
    upstream,
    rounds: [],
    single: [],
  }
}

// ---------------------------------------------------------------------------------------------
// One round


/**
 * Waits (at most maxSeconds) until processes outside the benchmark use less than
 * QUIET_THRESHOLD of the machine, sampled over half a second; returns the seconds waited.
 * On a shared machine this keeps other people's bursts (a build, a test run) out of most rounds.
 */
async function waitForQuiet(maxSeconds: number): Promise<number> {
  if (maxSeconds <= 0 || machineCpu() === undefined) return 0
  const started = performance.now()
  for (;;) {
    const all = [...processes]
    const before = await Promise.all(all.map((p) => p.cpuMicros()))
    const own = process.cpuUsage()
    const m0 = machineCpu()!
    const t0 = performance.now()
    await sleep(500)
    const m1 = machineCpu()!
    const ownDelta = process.cpuUsage(own)
    const after = await Promise.all(all.map((p) => p.cpuMicros()))
    const ours = ownDelta.user + ownDelta.system + after.reduce((a, v, i) => a + v - before[i]!, 0)
    const share = (m1.busy - m0.busy - ours) / ((performance.now() - t0) * 1e3 * MACHINE_CPUS)
    const waited = (performance.now() - started) / 1000
    if (share < QUIET_THRESHOLD || waited >= maxSeconds) return waited
  }
}

async function runRound(target: Target, seconds: number, cycle: number, connections = CONNECTIONS, warmUp = false): Promise<RoundResult> {
  await target.upstream.clear()
  const leadIn = warmUp ? 0 : LEAD_IN_MS
  // Signed before the round and its CPU samples: every request carries a proof never used before.
  const proofs = target.dpop ? await target.dpop.signer.sign(Math.ceil(PROOFS_PER_SECOND * (seconds + leadIn / 1000)), target.url, target.dpop.token) : undefined
  const procs = [target.upstream, ...(target.proxy ? [target.proxy] : [])]
  // Every benchmark process is sampled, idle ones included, so the rest of the machine's
  // CPU time can be attributed to other processes.
  const all = [...processes]
  let cpuBefore: number[] = []
  let ownBefore = process.cpuUsage()
  let machineBefore = machineCpu()
  let measuring = false
  let started = performance.now()
  const startMeasuring = async () => {
    cpuBefore = await Promise.all(all.map((p) => p.cpuMicros()))
    ownBefore = process.cpuUsage()
    machineBefore = machineCpu()
    started = performance.now()
    measuring = true
  }
  if (leadIn === 0) await startMeasuring()

  let nextProof = 0
  let ownMismatches = 0

  let latencies = new Float64Array(65_536)
  let count = 0
  let responses = 0
  let sessionIndex = 0
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.url,
        method: 'POST',
        headers: target.headers,
        body: target.body,
        connections,
        pipelining: 1,
        duration: seconds + leadIn / 1000,
        // autocannon compares bodies itself unless requests are set up one by one (DPoP); then here.
        ...(proofs
          ? {
              requests: [
                {
                  setupRequest: (req: { headers?: Record<string, string> }) => ({ ...req, headers: { ...req.headers, dpop: proofs[nextProof++ % proofs.length]! } }),
                  onResponse: (status: number, body: string) => {
                    if (status >= 200 && status < 300 && body !== target.expectBody) ownMismatches++
                  },
                },
              ],
            }
          : { expectBody: target.expectBody }),
        ...(target.sessions && {
          setupClient: (client: autocannon.Client) => {
            const sessions = target.sessions!
            client.setHeaders({ ...target.headers, 'mcp-session-id': sessions[sessionIndex++ % sessions.length]! })
          },
        }),
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    )
    if (leadIn > 0) setTimeout(() => void startMeasuring(), leadIn)
    instance.on('response', (_client, statusCode, _bytes, ms) => {
      if (!measuring) return
      responses++
      if (statusCode < 200 || statusCode >= 300) return
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2)
        grown.set(latencies)
        latencies = grown
      }
      latencies[count++] = ms
    })
  })
  const elapsed = (performance.now() - started) / 1000

  const own = process.cpuUsage(ownBefore)
  const machineAfter = machineCpu()
  const cpuAfter = await Promise.all(all.map((p) => p.cpuMicros()))
  const delta = (p: Measured) => cpuAfter[all.indexOf(p)]! - cpuBefore[all.indexOf(p)]!
  const perRequest = (i: number) => delta(procs[i]!) / Math.max(1, responses)
  const ours = own.user + own.system + all.reduce((a, p) => a + delta(p), 0)
  const capacity = elapsed * 1e6 * MACHINE_CPUS
  const others =
    machineBefore && machineAfter ? Math.max(0, machineAfter.busy - machineBefore.busy - ours) / capacity : undefined
  const sorted = latencies.subarray(0, count).sort()
  return {
    cycle,
    requests: responses,
    seconds: elapsed,
    rps: responses / elapsed,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    non2xx: result.non2xx,
    errors: result.errors,
    mismatches: result.mismatches + ownMismatches,
    upstreamCpu: perRequest(0),
    proxyCpu: target.proxy ? perRequest(1) : undefined,
    loadgenCpu: (own.user + own.system) / Math.max(1, responses),
    others,
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics and printing

function describeScenario(scenario: Scenario): string {
  switch (scenario) {
    case 'stateless':
      return 'stateless — SDK1 upstream stateless + enableJsonResponse: every tools/call is one POST answered by one JSON body'
    case 'stateful':
      return 'stateful — SDK1 upstream with sessions + enableJsonResponse: one session per connection, Mcp-Session-Id on every call (gateway checks the session binding)'
    case 'dpop':
      return 'dpop — as stateless, with a DPoP-bound token (cnf.jkt) and a fresh ES256 proof on every call: the gateway checks the proof and records its jti (RFC 9449 §7, §11.1)'
    case '2026-07-28':
      return '2026-07-28 — SDK2 upstream (createMcpHandler, JSON answers): _meta envelope in the body, Mcp-Method and Mcp-Name headers (gateway checks they agree, MCPT-12)'
  }
}

function report(targets: Target[], pairs: Pair[], meta: { startLoad: number[]; wallSeconds: number; quietWaited: number; redone: number }): string {
  const out: string[] = []
  const cpus = os.cpus()
  out.push('Gatehouse proxy benchmark — MCP tools/call (echo) over HTTP/1.1 keep-alive, 127.0.0.1')
  out.push(
    `machine:  ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores (availableParallelism ${os.availableParallelism()}), ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.platform()} ${os.arch()}, Node ${process.version}; ` +
      `load average before start ${meta.startLoad.map((l) => l.toFixed(2)).join(' ')}`,
  )
  out.push(
    `settings: autocannon ${CONNECTIONS} connections, pipelining 1, ${ROUNDS} rounds × ${DURATION} s per target after a ` +
      `${WARMUP} s warm-up each, each round counted after a ${LEAD_IN_MS} ms lead-in; interleaved (one round per target per cycle, order rotated each cycle); ` +
      `mcp-protocol-version ${PROTOCOL_VERSION}; total wall time ${meta.wallSeconds.toFixed(0)} s`,
  )
  const rounds = targets.flatMap((t) => t.rounds)
  const noisy = rounds.filter((r) => r.others !== undefined && r.others >= QUIET_THRESHOLD).length
  out.push(
    `shared machine: each round first waits (≤ ${QUIET_WAIT} s) until other processes use < ${fmtPct(QUIET_THRESHOLD)} of the ` +
      `CPU, and a round they disturbed anyway is run again (≤ ${REDO_LIMIT}×, least disturbed attempt kept), within ` +
      `${PATIENCE} s in all; waited ` +
      `${meta.quietWaited.toFixed(0)} s, ran ${meta.redone} rounds again; ${noisy} of ${rounds.length} kept rounds had ≥ ` +
      `${fmtPct(QUIET_THRESHOLD)} other load (column "others")`,
  )
  out.push(
    `processes: autocannon in the parent; upstream, bare proxy, nginx and each gateway in their own process; ` +
      (PIN ? `pinned (taskset): autocannon on CPU ${PIN.loadgen}, every server on CPU ${PIN.servers}. ` : 'not pinned (BENCH_PIN=0:1 pins them). ') +
      'Gateway: startGateway, memory store, token checks on (ES256 JWT from its generated key, audience, scope; one token, so the ' +
      'verifier cache is hit after the first call), MCP policy step with no rules (body parsed, required scope checked), ' +
      'identity headers X-User/X-Client/X-Scopes, pino logs to stdout → /dev/null; at level info that is 2 JSON lines ' +
      'per call (the mcp.decision audit event, the access line), at warn none. Bare proxy: Fastify() + ' +
      `@fastify/http-proxy { upstream }, defaults, no logger. ${nginxVersion}: Debian's package, 1 worker, keep-alive ` +
      'upstream, proxy_buffering and proxy_request_buffering off, access log to /dev/null. ' +
      'Every measured answer is compared byte for byte with the ' +
      'direct answer (mismatches).',
  )
  out.push(
    'figures: median over rounds [min–max]; spread = (max − min) / median of req/s; latency percentiles over every 2xx ' +
      'response of a round; µs/req = CPU time (user + system) of that process per completed request; others = CPU ' +
      'used by processes outside the benchmark during the round, as a share of the whole machine (from /proc/stat).',
  )

  for (const scenario of ALL_SCENARIOS) {
    const group = targets.filter((t) => t.scenario === scenario)
    if (group.length === 0) continue
    out.push('')
    out.push(`scenario ${describeScenario(scenario)}`)
    const rows = group.map((t) => {
      const r = t.rounds
      const rps = spread(r.map((x) => x.rps))
      return [
        t.label,
        cell(rps, fmtInt),
        `${(((rps.max - rps.min) / rps.median) * 100).toFixed(1)}%`,
        cell(spread(r.map((x) => x.p50)), fmtMs),
        cell(spread(r.map((x) => x.p99)), fmtMs),
        t.proxy ? fmtInt(median(r.map((x) => x.proxyCpu!))) : '—',
        fmtInt(median(r.map((x) => x.upstreamCpu))),
        fmtInt(median(r.map((x) => x.loadgenCpu))),
        fmtInt(r.reduce((a, x) => a + x.requests, 0)),
        String(r.reduce((a, x) => a + x.non2xx, 0)),
        String(r.reduce((a, x) => a + x.errors + x.mismatches, 0)),
        r.every((x) => x.others !== undefined) ? fmtPct(median(r.map((x) => x.others!))) : 'n/a',
      ]
    })
    out.push(
      table(
        ['target', 'req/s', 'spread', 'p50 ms', 'p99 ms', 'proxy µs/req', 'upstream µs/req', 'loadgen µs/req', 'requests', 'non-2xx', 'errors+mismatches', 'others'],
        rows,
        [false, true, true, true, true, true, true, true, true, true, true, true],
      ),
    )

    const bare = group.find((t) => t.kind === 'bare')
    const nginx = group.find((t) => t.kind === 'nginx')
    const direct = group.find((t) => t.kind === 'direct')
    const ratioRows: string[][] = []
    const compare = (a: Target, base: Target) => {
      const perCycle = a.rounds.map((r) => {
        const b = base.rounds.find((x) => x.cycle === r.cycle)!
        return { rps: r.rps / b.rps, p50: r.p50 / b.p50, p99: r.p99 / b.p99, cpu: r.proxyCpu! / (b.proxyCpu ?? NaN) }
      })
      const cpu = base.proxy !== undefined ? cell(spread(perCycle.map((x) => x.cpu)), fmtRatio) : '—'
      ratioRows.push([
        `${a.label} vs ${base.label}`,
        cell(spread(perCycle.map((x) => x.rps)), fmtRatio),
        cell(spread(perCycle.map((x) => x.p50)), fmtRatio),
        cell(spread(perCycle.map((x) => x.p99)), fmtRatio),
        cpu,
      ])
    }
    for (const gw of group.filter((t) => t.kind === 'gateway')) {
      for (const base of [bare, nginx, direct]) if (base) compare(gw, base)
    }
    if (bare && nginx) compare(bare, nginx)
    const baseline = group.find((t) => t.kind === 'baseline')
    const gatewayInfo = group.find((t) => t.label === 'gateway (log info)')
    if (baseline && gatewayInfo) compare(gatewayInfo, baseline)
    if (baseline && bare) compare(baseline, bare)
    if (ratioRows.length > 0) {
      out.push('')
      out.push(
        table(
          ['ratio (median of per-cycle ratios)', 'throughput', 'p50 latency', 'p99 latency', 'proxy CPU/req'],
          ratioRows,
          [false, true, true, true, true],
        ),
      )
    }
    const singleDirect = direct?.single ?? []
    if (singleDirect.length > 0) {
      // Added latency: the target's p50 minus direct's in the same cycle, one call at a time.
      const rows = group
        .filter((t) => t.kind !== 'direct')
        .map((t) => {
          const added = t.single.map((r) => (r.p50 - singleDirect.find((d) => d.cycle === r.cycle)!.p50) * 1000)
          return [t.label, cell(spread(t.single.map((r) => r.p50 * 1000)), fmtInt), cell(spread(added), (n) => `${n >= 0 ? '+' : ''}${fmtInt(n)}`), fmtInt(median(t.single.map((r) => r.proxyCpu!)))]
        })
      out.push('')
      out.push(
        `one connection per target, one call at a time, the targets in turns of ${SLICE_MS} ms (${singleDirect.length} rounds × ` +
          `${DURATION * group.filter((t) => t.single.length > 0).length} s, one-connection.ts); direct p50 ${cell(spread(singleDirect.map((r) => r.p50 * 1000)), fmtInt)} µs`,
      )
      out.push(table(['target', 'p50 µs', 'added p50 µs (vs direct)', 'proxy µs/req'], rows, [false, true, true, true]))
    }
    const scenarioPairs = pairs.filter((p) => p.first.scenario === scenario && p.rounds.length > 0)
    if (scenarioPairs.length > 0) {
      const p0 = scenarioPairs[0]!
      out.push('')
      out.push(
        `same-moment pairs: both proxies of a pair loaded at once, ${fmtInt(p0.rate)} calls/s each over ${PAIRED_CONNECTIONS} connections, ` +
          `${p0.rounds.length} rounds × ${DURATION} s (paired.ts); the machine's drift hits both sides alike`,
      )
      out.push(
        table(
          ['pair', 'proxy CPU/call ratio', 'µs/call (first)', 'µs/call (second)', 'p50 ratio'],
          scenarioPairs.map((p) => [
            `paired: ${p.first.label} vs ${p.second.label}`,
            cell(spread(p.rounds.map((r) => r.cpu[0] / r.cpu[1])), fmtRatio),
            fmtInt(median(p.rounds.map((r) => r.cpu[0]))),
            fmtInt(median(p.rounds.map((r) => r.cpu[1]))),
            fmtRatio(median(p.rounds.map((r) => r.p50[0] / r.p50[1]))),
          ]),
          [false, true, true, true, true],
        ),
      )
    }
  }
  return out.join('\n')
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const startLoad = os.loadavg()
  const wallStart = performance.now()
  const log = (s: string) => process.stderr.write(`${s}\n`)
  log(`starting servers (scenarios: ${SCENARIOS.join(', ')})…`)

  pinLoadGenerator()
  const targets: Target[] = []
  for (const scenario of SCENARIOS as Scenario[]) {
    const stateful = scenario === 'stateful'
    const upstream = await ServerProcess.start(
      `${scenario} upstream`,
      scenario === '2026-07-28' ? { role: 'upstream-2026' } : { role: 'upstream', stateful },
    )
    // nginx and the warn-level gateway in the headline scenario (and the session-bound one for
    // warn); the other scenarios compare the default gateway with the bare proxy, to keep the run short.
    const headline = scenario === 'stateless'
    const signer = scenario === 'dpop' ? await proofSigner() : undefined
    const gateway = (logLevel: string) =>
      ServerProcess.start(`${scenario} gateway (${logLevel})`, { role: 'gateway', upstream: upstream.url, logLevel, ...(signer && { jkt: signer.jkt }) })
    const [bare, nginx, gwInfo, gwWarn] = await Promise.all([
      ServerProcess.start(`${scenario} bare proxy`, { role: 'bare', upstream: upstream.url }),
      NGINX && headline ? NginxProcess.start(`${scenario} nginx`, upstream.url, log) : undefined,
      gateway('info'),
      WARN && (headline || stateful) ? gateway('warn') : undefined,
    ])
    if (nginx) nginxVersion = nginx.handle.version
    targets.push(await makeTarget(scenario, 'direct', 'direct', upstream, upstream))
    targets.push(await makeTarget(scenario, 'bare', 'bare proxy', bare, upstream))
    if (nginx) targets.push(await makeTarget(scenario, 'nginx', 'nginx', nginx, upstream))
    targets.push(await makeTarget(scenario, 'gateway', 'gateway (log info)', gwInfo, upstream, signer))
    if (gwWarn) targets.push(await makeTarget(scenario, 'gateway', 'gateway (log warn)', gwWarn, upstream, signer))
    if (BASELINE && headline) {
      const baseline = await ServerProcess.start(`${scenario} baseline gateway (info)`, { role: 'gateway', upstream: upstream.url, logLevel: 'info' }, BASELINE)
      targets.push(await makeTarget(scenario, 'baseline', 'baseline gateway (log info)', baseline, upstream))
    }
  }
  for (const t of targets) {
    if (t.expectBody !== targets.find((x) => x.scenario === t.scenario)!.expectBody) {
      throw new Error(`${t.scenario}/${t.label}: answer differs from the direct answer:\n${t.expectBody}`)
    }
  }
  log(`checked: every target answers tools/call with the echo result; the gateways refuse a call without a token (401)`)

  if (WARMUP > 0) {
    log(`warm-up: ${WARMUP} s per target…`)
    for (const t of targets) {
      const r = await runRound(t, WARMUP, -1, CONNECTIONS, true)
      if (r.non2xx + r.errors + r.mismatches > 0) {
        throw new Error(`${t.scenario}/${t.label}: warm-up had ${r.non2xx} non-2xx, ${r.errors} errors, ${r.mismatches} mismatches`)
      }
    }
  }

  let quietWaited = 0
  let redone = 0
  /** Non-2xx answers, errors and mismatched bodies over every measured attempt, re-runs included. */
  let problems = 0
  /** Seconds spent on quiet waits and re-runs, against PATIENCE. */
  let extraSeconds = 0
  const runCycles = async (cycles: number, connections: number, group: Target[]) => {
    for (let cycle = 0; cycle < cycles; cycle++) {
      const order = group.map((_, i) => group[(i + cycle) % group.length]!)
      for (const t of order) {
        // A round disturbed by other processes is run again (up to REDO_LIMIT times); the
        // least disturbed attempt counts. The choice depends on the other load only, never on the
        // figures measured.
        let best: RoundResult | undefined
        for (let attempt = 0; ; attempt++) {
          const waited = await waitForQuiet(Math.min(QUIET_WAIT, PATIENCE - extraSeconds))
          quietWaited += waited
          extraSeconds += waited
          const r = await runRound(t, DURATION, cycle, connections)
          problems += r.non2xx + r.errors + r.mismatches
          if (attempt > 0) extraSeconds += r.seconds
          const noisy = r.others !== undefined && r.others >= QUIET_THRESHOLD
          const again = noisy && attempt < REDO_LIMIT && PATIENCE - extraSeconds >= DURATION
          log(
            `cycle ${cycle + 1}/${cycles}  ${`${t.scenario}/${t.label}`.padEnd(30)} ${fmtInt(r.rps).padStart(7)} req/s  ` +
              `p50 ${fmtMs(r.p50)} ms  p99 ${fmtMs(r.p99)} ms  non-2xx ${r.non2xx}  errors ${r.errors}  mismatches ${r.mismatches}` +
              (r.others !== undefined ? `  other processes ${fmtPct(r.others)} of CPU` : '') +
              (again ? '  → again' : ''),
          )
          if (best === undefined || (r.others ?? 0) < (best.others ?? 0)) best = r
          if (!again) break
          redone++
        }
        t.rounds.push(best!)
      }
    }
  }
  await runCycles(ROUNDS, CONNECTIONS, targets)
  // One connection, one call at a time, the targets in turn: the latency each proxy adds to a
  // call (stateless only). Each round lasts as long as one round per target would.
  const singles = targets.filter((t) => t.scenario === 'stateless')
  for (let cycle = 0; cycle < SINGLE_ROUNDS; cycle++) {
    await waitForQuiet(Math.min(QUIET_WAIT, Math.max(0, PATIENCE - extraSeconds)))
    const r = await alternatingRound(singles, DURATION * singles.length, SLICE_MS)
    problems += r.problems
    singles.forEach((t, i) => t.single.push({ cycle, p50: r.p50[i]!, proxyCpu: t.proxy ? r.cpu[i] : undefined }))
    log(`1 conn round ${cycle + 1}/${SINGLE_ROUNDS}  ${r.turns} turns of ${SLICE_MS} ms  ` + singles.map((t, i) => `${t.label} ${fmtInt(r.p50[i]! * 1000)} µs`).join('  ') + `  problems ${r.problems}`)
  }

  // Same-moment pairs (stateless): the gateway at info against each other proxy.
  const pairs: Pair[] = []
  const stateless = targets.filter((t) => t.scenario === 'stateless')
  const gatewayInfo = stateless.find((t) => t.label === 'gateway (log info)')
  const bareStateless = stateless.find((t) => t.kind === 'bare')
  if (PAIRED_ROUNDS > 0 && gatewayInfo && bareStateless) {
    const rate = PAIRED_RATE ?? Math.max(50, Math.round(median(bareStateless.rounds.map((r) => r.rps)) / 3))
    for (const other of stateless.filter((t) => t !== gatewayInfo && t.proxy !== undefined)) pairs.push({ first: gatewayInfo, second: other, rate, rounds: [] })
    for (let round = 0; round < PAIRED_ROUNDS; round++) {
      for (const pair of pairs) {
        // Which side autocannon starts first alternates.
        const [a, b] = round % 2 === 0 ? [pair.first, pair.second] : [pair.second, pair.first]
        const side = (t: Target) => ({ label: t.label, url: t.url, headers: t.headers, body: t.body, expectBody: t.expectBody, proxy: t.proxy! })
        await waitForQuiet(Math.min(QUIET_WAIT, Math.max(0, PATIENCE - extraSeconds)))
        const r = await pairedRound(side(a), side(b), rate, DURATION, PAIRED_CONNECTIONS, LEAD_IN_MS)
        const result: PairedResult = a === pair.first ? r : { cpu: [r.cpu[1], r.cpu[0]], requests: [r.requests[1], r.requests[0]], p50: [r.p50[1], r.p50[0]], problems: r.problems }
        problems += result.problems
        pair.rounds.push(result)
        log(
          `paired ${round + 1}/${PAIRED_ROUNDS}  ${pair.first.label} ${fmtInt(result.cpu[0])} µs/call vs ${pair.second.label} ${fmtInt(result.cpu[1])} µs/call ` +
            `(${fmtRatio(result.cpu[0] / result.cpu[1])}; ${result.requests[0]} and ${result.requests[1]} calls)`,
        )
      }
    }
  }

  const text = report(targets, pairs, { startLoad, wallSeconds: (performance.now() - wallStart) / 1000, quietWaited, redone })
  process.stdout.write(`\n${text}\n`)
  if (process.env.BENCH_JSON) {
    const rows = targets.map(({ scenario, label, kind, url, rounds, single }) => ({ scenario, label, kind, url, rounds, single }))
    writeFileSync(process.env.BENCH_JSON, `${JSON.stringify({ settings: { DURATION, ROUNDS, CONNECTIONS, WARMUP, LEAD_IN_MS }, targets: rows }, null, 2)}\n`)
    log(`per-round figures written to ${process.env.BENCH_JSON}`)
  }
  if (problems > 0) {
    process.stderr.write(`\nFAILED: ${problems} non-2xx responses, errors or mismatched bodies during the measured rounds\n`)
    return 1
  }
  return 0
}

let exitCode = 1
try {
  exitCode = await main()
} catch (err) {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
} finally {
  await closeAll()
}
process.exit(exitCode)
