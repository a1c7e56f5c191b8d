/**
 * The Dockerfile and .dockerignore, checked by reading them (no Docker engine runs here;
 * .ci/image-build-check reproduces the build itself).
 */
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { repoRoot, chartDir } from './helm.js'
import {
  copyArgs,
  execForm,
  isIgnored,
  keyValues,
  parseDockerfile,
  parseDockerignore,
  type Stage,
} from './dockerfile.js'

const dockerfileText = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8')
const df = parseDockerfile(dockerfileText)
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string
  license: string
  engines?: { node?: string }
}
const runtime = df.stages[df.stages.length - 1]!
const byName = (name: string | undefined) => df.stages.find((s) => s.name === name)
const of = (stage: Stage, cmd: string) => stage.instructions.filter((i) => i.cmd === cmd)
const runs = (stage: Stage) => of(stage, 'RUN').map((i) => i.args)

t.test('multi-stage on a pinned LTS Node base', async (t) => {
  t.ok(df.stages.length >= 2, `several stages (${df.stages.length})`)
  const nodeVersion = df.globalArgs.NODE_VERSION
  t.match(nodeVersion, /^\d+\.\d+\.\d+$/, 'NODE_VERSION is a full version (major.minor.patch), not a floating tag')
  const major = Number(nodeVersion?.split('.')[0])
  t.equal(major % 2, 0, `Node ${major} is an even-numbered release line (only those become LTS)`)
  t.ok(major >= 22, `Node ${major} is a line still supported in 2026-11 (22, 24 or later)`)
  const engines = /(\d+)/.exec(pkg.engines?.node ?? '>=0')
  t.ok(major >= Number(engines?.[1] ?? 0), `Node ${major} satisfies package.json engines ${pkg.engines?.node}`)
  for (const s of df.stages) {
    t.match(s.image, /^node:\d+\.\d+\.\d+-[a-z]+-slim$/, `stage ${s.name}: ${s.image} is node:<version>-<debian>-slim`)
    t.equal(s.image.split(':')[1]!.split('-')[0], nodeVersion, `stage ${s.name} uses NODE_VERSION`)
    t.ok(s.name, 'every stage is named')
  }
  t.notOk(dockerfileText.match(/^\s*ADD\s/im), 'no ADD (COPY only; no remote downloads)')
})

t.test('build with dev dependencies, run with production dependencies only', async (t) => {
  const build = df.stages.find((s) => runs(s).some((r) => /\bnpm run build\b/.test(r)))
  t.ok(build, 'a stage runs npm run build')
  if (!build) return
  const buildRuns = runs(build)
  const ci = buildRuns.findIndex((r) => /\bnpm ci\b/.test(r))
  t.ok(ci >= 0 && ci < buildRuns.findIndex((r) => /npm run build/.test(r)), 'the build stage runs npm ci before the build')
  t.notMatch(buildRuns[ci] ?? '', /--omit=dev|--production/, 'the build stage installs dev dependencies')

  const copies = of(runtime, 'COPY').map((c) => copyArgs(c.args))
  const modules = copies.find((c) => c.sources.some((s) => /node_modules\/?$/.test(s)))
  t.ok(modules?.flags.from, 'the runtime copies node_modules from another stage')
  const depsStage = byName(modules?.flags.from)
  t.ok(depsStage, `stage ${modules?.flags.from} exists`)
  t.not(depsStage, build, 'node_modules does not come from the build stage (it has dev dependencies)')
  t.ok(
    depsStage && runs(depsStage).some((r) => /\bnpm ci\b.*--omit=dev/.test(r)),
    'that stage installs with npm ci --omit=dev',
  )
  const dist = copies.find((c) => c.sources.some((s) => /dist\/?$/.test(s)))
  t.equal(dist?.flags.from, build.name, 'dist comes from the build stage')
  for (const c of copies.filter((c) => !c.flags.from)) {
    for (const s of c.sources) t.equal(s, 'package.json', `the runtime copies only package.json from the context (${s})`)
  }
  t.ok(
    copies.some((c) => !c.flags.from && c.sources.includes('package.json')),
    'package.json is in the runtime image ("type": "module" for dist/*.js)',
  )
  t.notOk(runs(runtime).some((r) => /(^|&&|;|\|)\s*(npm|npx|yarn|corepack)\s/.test(r)), 'the runtime stage runs no package manager')
  t.ok(runs(runtime).some((r) => /rm -rf .*\/usr\/local\/bin\/npm\b/.test(r)), 'the runtime stage removes npm')
})

t.test('non-root, read-only root filesystem, documented config path', async (t) => {
  const users = of(runtime, 'USER')
  const user = users[users.length - 1]?.args
  t.match(user, /^\d+(:\d+)?$/, `USER ${user} is numeric (Kubernetes can verify runAsNonRoot)`)
  t.not(Number(user?.split(':')[0]), 0, 'USER is not root')
  const last = runtime.instructions[runtime.instructions.length - 1]!
  const userIndex = runtime.instructions.findIndex((i) => i === users[users.length - 1])
  t.notOk(
    runtime.instructions.slice(userIndex).some((i) => i.cmd === 'RUN'),
    'no RUN after USER (nothing is written as the service user at build time)',
  )
  t.ok(last.cmd === 'CMD' || last.cmd === 'ENTRYPOINT', 'ENTRYPOINT/CMD close the file')
  for (const c of of(runtime, 'COPY')) t.notMatch(c.args, /--chown|--chmod/, `COPY keeps files owned by root: ${c.args}`)

  const env: Record<string, string> = {}
  for (const e of of(runtime, 'ENV')) Object.assign(env, keyValues(e.args))
  t.equal(env.GATEHOUSE_CONFIG, '/etc/gatehouse/gatehouse.yaml', 'config at /etc/gatehouse/gatehouse.yaml')
  t.equal(env.NODE_ENV, 'production')
  t.match(env.HOME, /^\/tmp(\/|$)/, 'HOME is under /tmp, the only writable place')
  t.match(env.TMPDIR, /^\/tmp(\/|$)/, 'TMPDIR is /tmp')
  t.notOk(of(runtime, 'VOLUME').length, 'no VOLUME (Kubernetes mounts /tmp and the config)')
  t.match(dockerfileText, /read-only/, 'the Dockerfile documents running with a read-only root filesystem')

  const helpers = readFileSync(join(chartDir, 'templates', '_helpers.tpl'), 'utf8')
  t.match(helpers, /"gatehouse\.configFile" -}}\/etc\/gatehouse\/gatehouse\.yaml\{\{/, 'the chart mounts the config at the same path')
  t.match(helpers, /"gatehouse\.keysDir" -}}\/etc\/gatehouse\/keys\{\{/, 'and the keys in /etc/gatehouse/keys')
  t.ok(runs(runtime).some((r) => /mkdir -p \/etc\/gatehouse\/keys/.test(r)), 'the image has /etc/gatehouse/keys')

  const values = parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as {
    containerPort: number
    securityContext: { runAsUser: number }
    podSecurityContext: { runAsUser: number; runAsGroup: number }
  }
  t.equal(user, `${values.podSecurityContext.runAsUser}:${values.podSecurityContext.runAsGroup}`, 'the chart runs as the image user')
  t.same(of(runtime, 'EXPOSE').map((e) => e.args), [String(values.containerPort)], 'EXPOSE is the chart containerPort')
})

t.test('signals reach Node: exec form, node as PID 1', async (t) => {
  const entrypoint = of(runtime, 'ENTRYPOINT')
  const cmd = of(runtime, 'CMD')
  t.equal(entrypoint.length, 1, 'one ENTRYPOINT')
  t.equal(cmd.length, 1, 'one CMD')
  const ep = execForm(entrypoint[0]?.args ?? '')
  t.ok(ep, 'ENTRYPOINT is exec form (JSON array): no /bin/sh -c in front of node')
  t.equal(ep?.[0], 'node', 'node itself is PID 1 (not npm, not a shell)')
  t.match(ep?.[1], /^\/app\/dist\/cli\.js$/, 'it runs the gatehouse CLI')
  t.same(execForm(cmd[0]?.args ?? ''), ['serve'], 'CMD is exec form: serve')
  for (const i of df.stages.flatMap((s) => s.instructions)) {
    if (i.cmd === 'ENTRYPOINT' || i.cmd === 'CMD') t.notMatch(i.args, /\bnpm\b|\bsh\b|\bbash\b/, `${i.cmd} has no npm or shell`)
  }
  t.notOk(of(runtime, 'STOPSIGNAL').length, 'STOPSIGNAL left at SIGTERM, which Gatehouse handles')
})

t.test('OCI labels', async (t) => {
  const labels: Record<string, string> = {}
  for (const l of of(runtime, 'LABEL')) Object.assign(labels, keyValues(l.args))
  for (const k of ['title', 'description', 'licenses', 'version', 'revision', 'created', 'source', 'base.name']) {
    t.ok(`org.opencontainers.image.${k}` in labels, `org.opencontainers.image.${k}`)
  }
  t.equal(labels['org.opencontainers.image.licenses'], pkg.license, 'licenses is the package license')
  t.equal(labels['org.opencontainers.image.version'], '${VERSION}', 'version comes from a build argument')
})

t.test('.dockerignore keeps the context to what the Dockerfile copies', async (t) => {
  const rules = parseDockerignore(readFileSync(join(repoRoot, '.dockerignore'), 'utf8'))
  const sources = df.stages
    .flatMap((s) => of(s, 'COPY'))
    .map((c) => copyArgs(c.args))
    .filter((c) => !c.flags.from)
    .flatMap((c) => c.sources.map((s) => s.replace(/\/$/, '')))
  for (const s of sources) t.notOk(isIgnored(s, rules), `COPY source ${s} is in the context`)
  for (const p of ['node_modules/x/index.js', 'dist/cli.js', '.git/HEAD', 'test/smoke.test.ts', 'helm/gatehouse/Chart.yaml', '.ci/run', '.env', 'src/x.test.ts', 'src/keys/dev.pem', 'README.md', '.tap/x']) {
    t.ok(isIgnored(p, rules), `${p} is left out`)
  }
  for (const p of ['src/cli.ts', 'src/config/schema.ts', 'package.json', 'package-lock.json']) {
    t.notOk(isIgnored(p, rules), `${p} is in the context`)
  }
  // Every file that would be sent lies under a COPY source: nothing else leaks into the context.
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const full = join(dir, name)
      const rel = relative(repoRoot, full)
      if (['node_modules', '.git', 'dist', '.tap'].includes(rel)) return []
      return statSync(full).isDirectory() ? walk(full) : [rel]
    })
  const context = walk(repoRoot).filter((p) => !isIgnored(p, rules))
  const stray = context.filter((p) => !sources.some((s) => p === s || p.startsWith(`${s}/`)))
  t.same(stray, [], 'every file in the context is copied by the Dockerfile')
})

t.test('.ci/image-build-check reproduces the same steps', async (t) => {
  const script = readFileSync(join(repoRoot, '.ci', 'image-build-check'), 'utf8')
  const npmRuns = df.stages.flatMap(runs).flatMap((r) => r.split(/&&|;/)).map((s) => s.trim()).filter((s) => /^npm\b/.test(s))
  t.ok(npmRuns.length >= 3, `the Dockerfile runs npm ci, npm run build, npm ci --omit=dev (${npmRuns.length})`)
  for (const cmd of npmRuns) t.ok(script.includes(cmd), `the script runs "${cmd}" as the Dockerfile does`)
  const list = /^CONTEXT_FILES=\(([^)]*)\)/m.exec(script)?.[1]?.split(/\s+/).filter(Boolean)
  const sources = df.stages
    .flatMap((s) => of(s, 'COPY'))
    .map((c) => copyArgs(c.args))
    .filter((c) => !c.flags.from)
    .flatMap((c) => c.sources.map((s) => s.replace(/\/$/, '')))
  t.same([...new Set(list)].sort(), [...new Set(sources)].sort(), 'the script copies the same context files')
  t.match(script, /ARG NODE_VERSION/, 'the script takes the Node version from the Dockerfile')
})
