/**
 * The MCP conformance suite (@modelcontextprotocol/conformance) as the conformance tests use
 * it: where it is, how to run it, how to read what it found, and how to compare two runs.
 *
 * The suite needs Node 22 while the project runs on Node 20, so it is an executable of its own:
 * `.ci/install-node22` installs Node 22 and the pinned suite into a cache folder and prints the
 * path of a `conformance` wrapper; GATEHOUSE_CONFORMANCE names it, else the default cache path
 * is tried. Without it the conformance tests skip with one line, unless
 * GATEHOUSE_REQUIRE_CONFORMANCE=1 (CI), where they fail.
 */
import { spawn } from 'node:child_process'
import { accessSync, appendFileSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

/** The pins of .ci/install-node22 (keep them equal). */
export const CONFORMANCE_VERSION = '0.2.0-alpha.12'
export const NODE22_VERSION = '22.23.3'

const requireSuite = process.env.GATEHOUSE_REQUIRE_CONFORMANCE === '1'

function defaultPath(): string {
  const cache = process.env.GATEHOUSE_CI_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'gatehouse-ci')
  return join(cache, `conformance-${CONFORMANCE_VERSION}-node-${NODE22_VERSION}`, 'bin', 'conformance')
}

/**
 * The `conformance` command, or undefined after skipping the test (one-line reason) or failing
 * it (when required). Call it first thing in a conformance test and return on undefined.
 */
export function conformanceForTests(t: Test): string | undefined {
  const path = process.env.GATEHOUSE_CONFORMANCE || defaultPath()
  try {
    accessSync(path, constants.X_OK)
    return path
  } catch {
    const reason = `no MCP conformance suite at ${path}`
    if (requireSuite) t.fail(`the conformance suite is required (GATEHOUSE_REQUIRE_CONFORMANCE=1) but there is ${reason}`)
    else t.plan(0, `${reason} (it needs Node 22): conformance suites skipped (install it with .ci/install-node22)`)
    return undefined
  }
}

/** One check as the suite writes it to checks.json. */
export interface Check {
  id: string
  name?: string
  description?: string
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO' | string
  errorMessage?: string
}

/** scenario name → its checks, in the order the suite emitted them. */
export type Results = Map<string, Check[]>

export interface SuiteRun {
  results: Results
  exitCode: number | null
  output: string
  ms: number
}

/**
 * Runs `conformance <args…> -o <dir>` and reads every scenario's checks.json back. The suite
 * names each result folder `<prefix>-<scenario>-<ISO time>`.
 */
export async function runSuite(
  command: string,
  args: string[],
  options: { prefix: string; timeoutMs?: number; onLine?: (line: string) => void },
): Promise<SuiteRun> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-conformance-'))
  const started = Date.now()
  try {
    const child = spawn(command, [...args, '-o', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    let partial = ''
    child.stdout.on('data', (d: Buffer) => {
      const text = d.toString('utf8')
      output += text
      const lines = (partial + text).split('\n')
      partial = lines.pop()!
      for (const line of lines) options.onLine?.(line)
    })
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code) => resolve(code))
    }).finally(() => clearTimeout(timer))
    const results: Results = new Map()
    const pattern = new RegExp(`^${options.prefix}-(.+)-\\d{4}-\\d{2}-\\d{2}T[\\d-]+Z$`)
    for (const entry of readdirSync(dir).sort()) {
      const scenario = pattern.exec(entry)?.[1]
      if (!scenario) continue
      try {
        results.set(scenario, JSON.parse(readFileSync(join(dir, entry, 'checks.json'), 'utf8')) as Check[])
      } catch {
        results.set(scenario, [{ id: scenario, status: 'FAILURE', errorMessage: 'no checks.json written' }])
      }
    }
    return { results, exitCode, output, ms: Date.now() - started }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A check of one scenario; repeated ids are told apart by their occurrence (`id#2`). */
export interface CheckDiff {
  scenario: string
  check: string
  direct: string
  gateway: string
  errorMessage?: string
}

export interface Comparison {
  /** Passes direct, does not pass through the gateway (a gateway bug, always). */
  worse: CheckDiff[]
  /** Does not pass direct, passes through the gateway (the gateway adds protection). */
  better: CheckDiff[]
  /** Scenarios run through the gateway, and how many of them had no failing check. */
  scenarios: number
  scenariosPassed: number
}

function keyed(checks: Check[]): Map<string, Check> {
  const seen = new Map<string, number>()
  const out = new Map<string, Check>()
  for (const c of checks) {
    const n = (seen.get(c.id) ?? 0) + 1
    seen.set(c.id, n)
    out.set(n === 1 ? c.id : `${c.id}#${n}`, c)
  }
  return out
}

export function compare(direct: Results, gateway: Results): Comparison {
  const worse: CheckDiff[] = []
  const better: CheckDiff[] = []
  for (const scenario of new Set([...direct.keys(), ...gateway.keys()])) {
    const d = keyed(direct.get(scenario) ?? [])
    const g = keyed(gateway.get(scenario) ?? [])
    for (const check of new Set([...d.keys(), ...g.keys()])) {
      const ds = d.get(check)?.status ?? 'ABSENT'
      const gc = g.get(check)
      const gs = gc?.status ?? 'ABSENT'
      const diff = { scenario, check, direct: ds, gateway: gs, ...(gc?.errorMessage && { errorMessage: gc.errorMessage }) }
      if (ds === 'SUCCESS' && gs !== 'SUCCESS') worse.push(diff)
      else if (ds !== 'SUCCESS' && ds !== 'ABSENT' && gs === 'SUCCESS') better.push(diff)
    }
  }
  const scenariosPassed = [...gateway.values()].filter((checks) => !checks.some((c) => c.status === 'FAILURE')).length
  return { worse, better, scenarios: gateway.size, scenariosPassed }
}

export function scenariosPassed(results: Results): number {
  return [...results.values()].filter((checks) => !checks.some((c) => c.status === 'FAILURE')).length
}

export const describeDiff = (d: CheckDiff) =>
  `${d.scenario} / ${d.check}: direct ${d.direct}, through the gateway ${d.gateway}${d.errorMessage ? ` (${d.errorMessage})` : ''}`

/**
 * Appends one line to the report .ci/run prints after the tests (GATEHOUSE_CONFORMANCE_REPORT,
 * a file path); a no-op without it.
 */
export function report(line: string): void {
  const file = process.env.GATEHOUSE_CONFORMANCE_REPORT
  if (file) appendFileSync(file, `${line}\n`)
}
