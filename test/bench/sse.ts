/**
 * Event streams through the gateway (`npm run bench`; not a test). Two measurements:
 *
 * 1. Time to first event: a tools/call answered as an event stream (the SDK 1.x upstream's
 *    default, one event per answer), from the request written to the first `data:` line read,
 *    one call at a time over a keep-alive connection, direct, through the gateway (log info) and the bare proxy
 *    in interleaved rounds. Reported as medians.
 * 2. Idle streams: BENCH_SSE_STREAMS GET notification streams held open through one gateway
 *    process toward an upstream that sends nothing on them; the gateway's RSS before and with
 *    them open, and the CPU it spends per second while they idle. A proxied stream takes two
 *    descriptors in the gateway (client and upstream sockets), so the number of streams is
 *    bounded by the open-file limit, which an unprivileged process cannot raise past its hard
 *    limit: the default is 10,000 when the limit allows it, else the largest thousand that fits.
 *
 * Environment: BENCH_SSE_CALLS (calls per round, default 200), BENCH_SSE_ROUNDS (default 5),
 * BENCH_SSE_STREAMS, BENCH_SSE_IDLE_SECONDS (default 10), BENCH_PIN as in proxy.ts.
 */
import { Agent, request } from 'node:http'
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { closeAll, pinLoadGenerator, ServerProcess } from './processes.js'
import { fmtInt, median, sleep } from './stats.js'

const CALLS = Number(process.env.BENCH_SSE_CALLS ?? 200)
const ROUNDS = Number(process.env.BENCH_SSE_ROUNDS ?? 5)
const IDLE_SECONDS = Number(process.env.BENCH_SSE_IDLE_SECONDS ?? 10)
const log = (s: string) => process.stderr.write(`${s}\n`)

const CALL_BODY = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello' } } })

function openFileLimit(): number {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim())
  } catch {
    return 1024
  }
}

function streamCount(): { streams: number; why: string } {
  const limit = openFileLimit()
  if (process.env.BENCH_SSE_STREAMS) return { streams: Number(process.env.BENCH_SSE_STREAMS), why: 'BENCH_SSE_STREAMS' }
  // Two descriptors per stream in the gateway, plus a thousand for everything else.
  const fits = Math.floor((limit - 1000) / 2 / 1000) * 1000
  return fits >= 10_000
    ? { streams: 10_000, why: `open-file limit ${limit}` }
    : { streams: fits, why: `open-file limit ${limit} (hard limit; 10,000 streams need 20,000 descriptors in the gateway)` }
}

/** Milliseconds from writing one tools/call to reading the first `data:` line of its event stream. */
function firstEvent(url: URL, headers: Record<string, string>, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(CALL_BODY) } }, (res) => {
      if (res.statusCode !== 200 || !res.headers['content-type']?.startsWith('text/event-stream')) {
        reject(new Error(`${url}: HTTP ${res.statusCode} ${res.headers['content-type']}`))
        res.resume()
        return
      }
      let seen = ''
      let at: number | undefined
      res.on('data', (chunk: Buffer) => {
        if (at !== undefined) return
        seen += chunk.toString('utf8')
        if (seen.includes('data:')) at = performance.now() - started
      })
      res.on('end', () => (at === undefined ? reject(new Error(`${url}: no event`)) : resolve(at)))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(CALL_BODY)
  })
}

async function timeToFirstEvent(): Promise<string[]> {
  const upstream = await ServerProcess.start('sse upstream', { role: 'upstream', stateful: false, json: false })
  const gateway = await ServerProcess.start('sse gateway (info)', { role: 'gateway', upstream: upstream.url, logLevel: 'info' })
  const bare = await ServerProcess.start('sse bare proxy', { role: 'bare', upstream: upstream.url })
  const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' }
  const targets: { label: string; url: URL; headers: Record<string, string>; agent: Agent; ms: number[] }[] = [
    { label: 'direct', url: new URL(upstream.url), headers: base, agent: new Agent({ keepAlive: true, maxSockets: 1 }), ms: [] },
    { label: 'gateway (log info)', url: new URL(gateway.url), headers: { ...base, authorization: `Bearer ${gateway.token}` }, agent: new Agent({ keepAlive: true, maxSockets: 1 }), ms: [] },
    { label: 'bare proxy', url: new URL(bare.url), headers: base, agent: new Agent({ keepAlive: true, maxSockets: 1 }), ms: [] },
  ]
  for (const t of targets) for (let i = 0; i < 50; i++) await firstEvent(t.url, t.headers, t.agent)
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of targets.map((_, i) => targets[(i + round) % targets.length]!)) {
      const times: number[] = []
      for (let i = 0; i < CALLS; i++) times.push(await firstEvent(t.url, t.headers, t.agent))
      t.ms.push(median(times))
    }
  }
  for (const t of targets) t.agent.destroy()
  await gateway.close()
  await bare.close()
  await upstream.close()
  const direct = median(targets[0]!.ms)
  const via = median(targets[1]!.ms)
  const viaBare = median(targets[2]!.ms)
  return [
    `time to first event (tools/call answered as an event stream, one call at a time, ${ROUNDS} interleaved rounds × ${CALLS} calls, median of round medians):`,
    `  direct ${direct.toFixed(2)} ms, gateway (log info) ${via.toFixed(2)} ms (+${((via - direct) * 1000).toFixed(0)} µs), ` +
      `bare proxy ${viaBare.toFixed(2)} ms (+${((viaBare - direct) * 1000).toFixed(0)} µs)`,
  ]
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024
}

async function idleStreams(): Promise<string[]> {
  const { streams, why } = streamCount()
  const upstream = await ServerProcess.start('idle upstream', { role: 'idle-sse-upstream' })
  const gateway = await ServerProcess.start('idle gateway (info)', { role: 'gateway', upstream: upstream.url, logLevel: 'info' })
  const pid = gateway.pid
  const url = new URL(gateway.url)
  const headers = { accept: 'text/event-stream', 'mcp-protocol-version': '2025-11-25', authorization: `Bearer ${gateway.token}` }
  await sleep(2000)
  const rssBefore = rssMiB(pid)
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity })
  const open: { destroy(): void }[] = []
  const openOne = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(url, { method: 'GET', agent, headers }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`GET stream: HTTP ${res.statusCode}`))
        res.once('data', () => resolve())
      })
      req.on('error', reject)
      req.end()
      open.push(req)
    })
  log(`opening ${fmtInt(streams)} idle streams through the gateway…`)
  const started = performance.now()
  for (let i = 0; i < streams; i += 200) {
    await Promise.all(Array.from({ length: Math.min(200, streams - i) }, openOne))
  }
  const openSeconds = (performance.now() - started) / 1000
  await sleep(3000)
  const cpu0 = await gateway.cpuMicros()
  const t0 = performance.now()
  await sleep(IDLE_SECONDS * 1000)
  const idleCpuMsPerSecond = (await gateway.cpuMicros() - cpu0) / 1000 / ((performance.now() - t0) / 1000)
  const rssOpen = rssMiB(pid)
  for (const r of open) r.destroy()
  agent.destroy()
  await sleep(1000)
  await gateway.close()
  await upstream.close()
  return [
    `idle streams: ${fmtInt(streams)} GET event streams held open through one gateway process (${why}), opened in ${openSeconds.toFixed(1)} s:`,
    `  gateway RSS ${rssBefore.toFixed(0)} MiB before, ${rssOpen.toFixed(0)} MiB with them open (${(((rssOpen - rssBefore) * 1024) / streams).toFixed(1)} KiB per stream); ` +
      `CPU while they idle ${idleCpuMsPerSecond.toFixed(1)} ms per second (over ${IDLE_SECONDS} s)`,
  ]
}

let exitCode = 1
try {
  pinLoadGenerator()
  const lines = [...(await timeToFirstEvent()), ...(await idleStreams())]
  process.stdout.write(`\nGatehouse event streams benchmark\n${lines.join('\n')}\n`)
  exitCode = 0
} catch (err) {
  process.stderr.write(`sse benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
} finally {
  await closeAll()
}
process.exit(exitCode)
