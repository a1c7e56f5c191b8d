/**
 * Statistics and text tables of the benchmarks (not a test), and the machine's CPU time, used
 * to tell the benchmark's own load from other processes on a shared machine.
 */
import { readFileSync } from 'node:fs'

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
}

/** Machine-wide CPU time from /proc/stat, in microseconds (undefined off Linux). */
export function machineCpu(): { busy: number } | undefined {
  let line: string | undefined
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]
  } catch {
    return undefined
  }
  const f = line?.trim().split(/\s+/).slice(1).map(Number) ?? []
  if (f.length < 8 || f.some((n) => !Number.isFinite(n))) return undefined
  // user nice system idle iowait irq softirq … (guest time is already inside user/nice)
  const tick = 1e6 / 100 // USER_HZ is 100 on Linux
  return { busy: (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) * tick }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export interface Spread {
  median: number
  min: number
  max: number
}

export function spread(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) }
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US')
export const fmtMs = (n: number) => n.toFixed(2)
export const fmtRatio = (n: number) => n.toFixed(2)
export const fmtPct = (n: number) => `${(n * 100).toFixed(0)}%`

export function cell(s: Spread, f: (n: number) => string): string {
  return `${f(s.median)} [${f(s.min)}–${f(s.max)}]`
}

export function table(header: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) =>
    cells.map((c, i) => (rightAligned[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}
