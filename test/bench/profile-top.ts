/**
 * Summarises a V8 CPU profile (from `BENCH_PROFILE=dir npm run bench`, or `node --cpu-prof`):
 * the functions with the most self time, and the share of samples under Gatehouse's own
 * source files, pino, fastify, undici and the garbage collector. Not a test.
 *
 *   node .build/test/bench/profile-top.js /tmp/prof/stateless-gateway-info.cpuprofile [top=25] [skip=8]
 *
 * `skip`: seconds left out at the start of the profile (the process loading its modules and
 * starting, before the load arrives; the bench starts its load some seconds later).
 */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const [file, topArg, skipArg] = process.argv.slice(2)
if (!file) throw new Error('usage: profile-top.ts <file.cpuprofile> [top]')
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const top = Number(topArg ?? 25)
const skipMicros = Number(skipArg ?? 0) * 1e6

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const self = new Map<number, number>()
let elapsed = 0
for (let i = 0; i < profile.samples.length; i++) {
  elapsed += profile.timeDeltas[i] ?? 0
  if (elapsed < skipMicros) continue
  const id = profile.samples[i]!
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
}
const total = [...self.values()].reduce((a, b) => a + b, 0)
const idle = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0)
const busy = total - idle

const shortUrl = (url: string) => url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|test)\//, '$1/')
const nameOf = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`

const perFunction = new Map<string, number>()
/** Self time per function, and under which caller most of it was spent. */
const callers = new Map<string, Map<string, number>>()
for (const [id, t] of self) {
  const n = byId.get(id)!
  if (n.callFrame.functionName === '(idle)') continue
  perFunction.set(nameOf(n), (perFunction.get(nameOf(n)) ?? 0) + t)
  const up = parent.get(id)
  const callerName = up === undefined ? '(root)' : nameOf(byId.get(up)!)
  const c = callers.get(nameOf(n)) ?? new Map<string, number>()
  c.set(callerName, (c.get(callerName) ?? 0) + t)
  callers.set(nameOf(n), c)
}
const mainCaller = (name: string) => [...(callers.get(name) ?? [])].sort((a, b) => b[1] - a[1])[0]?.[0] ?? ''

/** Inclusive time of every sample whose stack passes through a frame matching `test`. */
function inclusive(test: (n: ProfileNode) => boolean): number {
  let sum = 0
  for (const [id, t] of self) {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      if (test(byId.get(cur)!)) {
        sum += t
        break
      }
    }
  }
  return sum
}

const pct = (t: number) => `${((t / busy) * 100).toFixed(1)}%`
console.log(`${file}: ${(busy / 1000).toFixed(0)} ms busy of ${(total / 1000).toFixed(0)} ms sampled`)
console.log('\ninclusive share of busy time:')
const groups: [string, (n: ProfileNode) => boolean][] = [
  ['pino (logging)', (n) => n.callFrame.url.includes('node_modules/pino') || n.callFrame.url.includes('fast-redact') || n.callFrame.url.includes('sonic-boom')],
  ['gatehouse src/', (n) => n.callFrame.url.includes('/src/')],
  ['@fastify/reply-from + undici', (n) => n.callFrame.url.includes('reply-from') || n.callFrame.url.includes('node_modules/undici')],
  ['garbage collector', (n) => n.callFrame.functionName === '(garbage collector)'],
]
for (const [label, test] of groups) console.log(`  ${label.padEnd(30)} ${pct(inclusive(test))}`)
console.log(`\ntop ${top} functions by self time:`)
for (const [name, t] of [...perFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${pct(t).padStart(6)}  ${name}   ← ${mainCaller(name)}`)
}
