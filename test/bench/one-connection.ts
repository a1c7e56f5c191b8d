/**
 * One connection, one call at a time, for the latency a proxy adds to a call (proxy.ts; not a
 * test). Each target is called over one keep-alive connection, one call at a time, and the
 * targets take turns in short slices (direct, bare proxy, nginx, gateway, direct, …; the first
 * of each turn rotating), so the calls through a proxy and the direct calls they are compared
 * with are taken within the same second. On a VM whose speed drifts within seconds, whole rounds
 * per target put that drift into the added latency (one round that happened to run slow added
 * 300 µs to one target alone).
 *
 * Within a slice a target's calls follow each other as an agent's would (autocannon, one
 * connection, as in the main rounds), so each process is as warm as it would be serving them.
 * A slice opens its connection anew; its first call is one of some 250 and leaves the median be.
 */
import autocannon from 'autocannon'
import type { Measured } from './processes.js'
import { median } from './stats.js'

export interface OneConnectionSide {
  label: string
  url: string
  headers: Record<string, string>
  body: string
  expectBody: string
  /** The process whose CPU time is counted per call; none for direct. */
  proxy: Measured | undefined
}

export interface OneConnectionResult {
  /** Median latency of each side's calls, milliseconds. */
  p50: number[]
  /** CPU microseconds of each side's proxy per call (NaN for direct). */
  cpu: number[]
  turns: number
  /** Non-2xx answers, errors and answers that differ from the direct one. */
  problems: number
}

/** Calls the sides in turns of `sliceMs` each, one call at a time over one connection, for `seconds`. */
export async function alternatingRound(sides: OneConnectionSide[], seconds: number, sliceMs: number): Promise<OneConnectionResult> {
  const latencies: number[][] = sides.map(() => [])
  let problems = 0
  const slice = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const side = sides[i]!
      const instance = autocannon(
        { url: side.url, method: 'POST', headers: side.headers, body: side.body, connections: 1, pipelining: 1, duration: sliceMs / 1000, sampleInt: sliceMs, expectBody: side.expectBody },
        (err, res) => {
          if (err) return reject(err)
          problems += res.non2xx + res.errors + res.mismatches + res.timeouts
          resolve()
        },
      )
      // autocannon stops at its first sample after the duration: sampling once per slice ends it on time.
      instance.on('response', (_client, statusCode, _bytes, ms) => {
        if (statusCode >= 200 && statusCode < 300) latencies[i]!.push(ms)
      })
    })
  const cpuBefore = await Promise.all(sides.map((s) => s.proxy?.cpuMicros() ?? 0))
  const deadline = performance.now() + seconds * 1000
  let turns = 0
  while (performance.now() < deadline) {
    for (let k = 0; k < sides.length; k++) await slice((turns + k) % sides.length)
    turns++
  }
  const cpuAfter = await Promise.all(sides.map((s) => s.proxy?.cpuMicros() ?? 0))
  return {
    p50: latencies.map((l) => median(l)),
    cpu: sides.map((s, i) => (s.proxy ? (cpuAfter[i]! - cpuBefore[i]!) / Math.max(1, latencies[i]!.length) : NaN)),
    turns,
    problems,
  }
}
