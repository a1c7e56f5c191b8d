/**
 * Same-moment pairs for the proxy benchmark (proxy.ts): two proxies in front of the same
 * upstream, each loaded at the same fixed rate at the same time, so that both see the same
 * machine. On a VM whose speed drifts by tens of percent within seconds (the CPU's share of the
 * host changes under it), interleaved rounds put that drift into every ratio; two proxies
 * measured in the same seconds on the same core share it, and their CPU per call compares
 * cleanly. The rate is fixed (autocannon's overallRate) and well below what the core can serve,
 * so neither proxy takes time from the other's calls by queueing.
 */
import autocannon from 'autocannon'
import type { Measured } from './processes.js'

export interface PairSide {
  label: string
  url: string
  headers: Record<string, string>
  body: string
  expectBody: string
  proxy: Measured
}

export interface PairedResult {
  /** CPU microseconds of each proxy per answered call. */
  cpu: [number, number]
  requests: [number, number]
  /** Median latency of each side, milliseconds. */
  p50: [number, number]
  problems: number
}

async function load(side: PairSide, rate: number, seconds: number, connections: number, counting: () => boolean) {
  const latencies: number[] = []
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: side.url,
        method: 'POST',
        headers: side.headers,
        body: side.body,
        connections,
        pipelining: 1,
        duration: seconds,
        overallRate: rate,
        expectBody: side.expectBody,
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    )
    instance.on('response', (_client, statusCode, _bytes, ms) => {
      if (counting() && statusCode >= 200 && statusCode < 300) latencies.push(ms)
    })
  })
  latencies.sort((x, y) => x - y)
  return {
    answered: latencies.length,
    p50: latencies[Math.floor(latencies.length / 2)] ?? NaN,
    problems: result.non2xx + result.errors + result.mismatches + result.timeouts,
  }
}

/**
 * Loads both sides at `rate` calls per second each, at once, for `seconds`, counted after a
 * lead-in of `leadInMs` (as proxy.ts's rounds: a Node server's first calls after idling cost more).
 */
export async function pairedRound(a: PairSide, b: PairSide, rate: number, seconds: number, connections: number, leadInMs: number): Promise<PairedResult> {
  let before: [number, number] = [0, 0]
  let counting = false
  const startCounting = async () => {
    before = await Promise.all([a.proxy.cpuMicros(), b.proxy.cpuMicros()])
    counting = true
  }
  if (leadInMs > 0) setTimeout(() => void startCounting(), leadInMs)
  else await startCounting()
  const total = seconds + leadInMs / 1000
  const [ra, rb] = await Promise.all([load(a, rate, total, connections, () => counting), load(b, rate, total, connections, () => counting)])
  const after = await Promise.all([a.proxy.cpuMicros(), b.proxy.cpuMicros()])
  return {
    cpu: [(after[0] - before[0]) / Math.max(1, ra.answered), (after[1] - before[1]) / Math.max(1, rb.answered)],
    requests: [ra.answered, rb.answered],
    p50: [ra.p50, rb.p50],
    problems: ra.problems + rb.problems,
  }
}
