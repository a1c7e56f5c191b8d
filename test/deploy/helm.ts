/**
 * Helpers of the deployment tests: find Helm, render the chart, parse what it prints.
 *
 * Helm is looked up in $GATEHOUSE_HELM, then on PATH, then in $(go env GOPATH)/bin (where
 * .ci/install-helm puts it). Without it the chart tests skip, unless GATEHOUSE_REQUIRE_HELM=1
 * (CI), where they fail.
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants, cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { REPO_ROOT } from '../helpers/repo.js'

export const repoRoot = REPO_ROOT
export const chartDir = join(repoRoot, 'helm', 'gatehouse')
export const ciValuesDir = join(chartDir, 'ci')

/** A rendered Kubernetes object; tests read it loosely. */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; [k: string]: any }; [k: string]: any }

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function goPathHelm(): string | undefined {
  for (const go of ['go', '/usr/local/go/bin/go']) {
    const r = spawnSync(go, ['env', 'GOPATH'], { encoding: 'utf8' })
    if (r.status === 0 && r.stdout.trim()) {
      const candidate = join(r.stdout.trim().split(delimiter)[0]!, 'bin', 'helm')
      if (executable(candidate)) return candidate
    }
  }
  return undefined
}

let found: { path?: string; why: string } | undefined

/** Where Helm is, or why it was not found. */
export function findHelm(): { path?: string; why: string } {
  if (found) return found
  const fromEnv = process.env.GATEHOUSE_HELM
  if (fromEnv) {
    found = executable(fromEnv) ? { path: fromEnv, why: 'GATEHOUSE_HELM' } : { why: `GATEHOUSE_HELM=${fromEnv} is not executable` }
    return found
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'helm'))) return (found = { path: join(dir, 'helm'), why: 'PATH' })
  }
  const gopath = goPathHelm()
  if (gopath) return (found = { path: gopath, why: 'GOPATH/bin' })
  found = { why: 'helm is not on PATH, not in $(go env GOPATH)/bin and GATEHOUSE_HELM is not set' }
  return found
}

/** The part of a tap Test that helmOrSkip uses. */
export interface TestLike {
  comment(...args: unknown[]): void
  fail(message: string): boolean
  skip(name: string, cb: () => void): unknown
}

/**
 * The Helm binary, or undefined after marking the test as skipped (or failed when
 * GATEHOUSE_REQUIRE_HELM=1). Call at the top of a test file.
 */
export function helmOrSkip(t: TestLike): string | undefined {
  const helm = findHelm()
  if (helm.path) {
    const version = spawnSync(helm.path, ['version', '--template', '{{ .Version }}'], { encoding: 'utf8' }).stdout.trim()
    t.comment(`helm ${version} from ${helm.why}: ${helm.path}`)
    return helm.path
  }
  const message = `${helm.why}; run .ci/install-helm (needs Go) to install the pinned Helm`
  if (process.env.GATEHOUSE_REQUIRE_HELM === '1') {
    t.fail(`Helm is required (GATEHOUSE_REQUIRE_HELM=1): ${message}`)
  } else {
    t.skip(`Helm chart tests: ${message}`, () => {})
  }
  return undefined
}

export interface RenderOptions {
  /** Values files, relative to the chart's ci/ folder unless absolute. */
  files?: string[]
  /** Inline values, written to a temporary file given after `files`. */
  values?: unknown
  /** --set arguments. */
  set?: string[]
  release?: string
  namespace?: string
  kubeVersion?: string
  /** Extra arguments, e.g. --show-only. */
  args?: string[]
  chart?: string
}

function valueArgs(opts: RenderOptions): { args: string[]; cleanup: () => void } {
  const args: string[] = []
  for (const f of opts.files ?? []) args.push('-f', f.startsWith('/') ? f : join(ciValuesDir, f))
  let dir: string | undefined
  if (opts.values !== undefined) {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-values-'))
    const file = join(dir, 'values.json')
    writeFileSync(file, JSON.stringify(opts.values))
    args.push('-f', file)
  }
  for (const s of opts.set ?? []) args.push('--set', s)
  return { args, cleanup: () => dir && rmSync(dir, { recursive: true, force: true }) }
}

/** Runs helm; returns its exit status and output. */
export function helm(helmPath: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(helmPath, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    // No cluster: helm template never needs one, and must not find one by accident.
    env: { ...process.env, KUBECONFIG: '/nonexistent/kubeconfig', HELM_CACHE_HOME: join(tmpdir(), 'gatehouse-helm-cache') },
  })
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/** `helm template`; throws with Helm's message when the render fails. */
export function render(helmPath: string, opts: RenderOptions = {}): K8sObject[] {
  const r = renderRaw(helmPath, opts)
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}):\n${r.stderr}`)
  return parseManifests(r.stdout)
}

export function renderRaw(helmPath: string, opts: RenderOptions = {}): { status: number; stdout: string; stderr: string } {
  const { args, cleanup } = valueArgs(opts)
  try {
    return helm(helmPath, [
      'template',
      opts.release ?? 'gh',
      opts.chart ?? chartDir,
      '--namespace',
      opts.namespace ?? 'gatehouse',
      ...(opts.kubeVersion ? ['--kube-version', opts.kubeVersion] : []),
      ...args,
      ...(opts.args ?? []),
    ])
  } finally {
    cleanup()
  }
}

/** Parses helm's multi-document output; every document must be a Kubernetes object. */
export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = []
  for (const doc of parseAllDocuments(text, { uniqueKeys: true })) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML from helm: ${doc.errors[0]!.message}`)
    const value = doc.toJS() as K8sObject | null
    if (value === null) continue
    out.push(value)
  }
  return out
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject | undefined {
  return objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name))
}

export function mustFind(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const o = find(objects, kind, name)
  if (!o) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`)
  return o
}

/**
 * Renders NOTES.txt, which `helm template` leaves out: a copy of the chart gets a template that
 * runs NOTES.txt through `tpl` into a ConfigMap.
 */
export function renderNotes(helmPath: string, opts: RenderOptions = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-notes-'))
  try {
    const chart = join(dir, 'gatehouse')
    cpSync(chartDir, chart, { recursive: true })
    cpSync(join(chart, 'templates', 'NOTES.txt'), join(chart, 'notes-under-test.txt'))
    writeFileSync(
      join(chart, 'templates', 'zz-notes-under-test.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n' +
        '  notes: {{ tpl (.Files.Get "notes-under-test.txt") . | toJson }}\n',
    )
    const objects = render(helmPath, { ...opts, chart, args: ['--show-only', 'templates/zz-notes-under-test.yaml'] })
    return String(objects[0]?.data?.notes ?? '')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The values files of ci/. */
export function ciValuesFiles(): string[] {
  return readdirSync(ciValuesDir)
    .filter((f) => f.endsWith('-values.yaml'))
    .sort()
}
