/**
 * Reads the Prometheus text exposition (format 0.0.4) the way a scraper does, for the metrics
 * suites: every sample with its labels, and lookups by exact label set.
 */

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export class Exposition {
  constructor(
    readonly text: string,
    readonly samples: readonly Sample[],
  ) {}

  /** The value of the sample with exactly these labels; 0 when there is none (a counter not yet touched). */
  value(name: string, labels: Record<string, string> = {}): number {
    const keys = Object.keys(labels)
    const hit = this.samples.find(
      (s) => s.name === name && Object.keys(s.labels).length === keys.length && keys.every((k) => s.labels[k] === labels[k]),
    )
    return hit?.value ?? 0
  }

  /** Every sample of a metric (histograms: give the _bucket/_sum/_count name). */
  all(name: string): Sample[] {
    return this.samples.filter((s) => s.name === name)
  }

  /** Names declared by # TYPE lines, with their type. */
  types(): Map<string, string> {
    const out = new Map<string, string>()
    for (const m of this.text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!)
    return out
  }
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = SAMPLE.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    if (m[2]) {
      LABEL.lastIndex = 0
      let consumed = 0
      for (let l = LABEL.exec(m[2]); l; l = LABEL.exec(m[2])) {
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
        consumed = LABEL.lastIndex
      }
      if (consumed !== m[2].length) throw new Error(`unparsable labels: ${line}`)
    }
    const raw = m[3]!
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw)
    // prom-client writes NaN as `Nan`; Prometheus (Go's ParseFloat) reads either case.
    if (Number.isNaN(value) && raw.toLowerCase() !== 'nan') throw new Error(`not a number: ${line}`)
    samples.push({ name: m[1]!, labels, value })
  }
  return new Exposition(text, samples)
}

/** GETs the exposition from a metrics listener and parses it. */
export async function scrape(metricsAddress: string, path = '/metrics'): Promise<Exposition> {
  const res = await fetch(`${metricsAddress}${path}`)
  if (res.status !== 200) throw new Error(`scrape: ${res.status}`)
  return parseExposition(await res.text())
}
