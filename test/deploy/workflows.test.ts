/**
 * The release workflow cannot run here (no Docker engine, no GitHub), so it is checked as far as
 * a machine can without running it: actionlint (workflow syntax, expressions, action inputs,
 * shell in `run:`), and what a release must do: on a version tag, after the same checks as every
 * change, a multi-architecture image with SBOM and provenance, and the chart pushed as OCI.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { repoRoot } from './helm.js'

const WORKFLOW = join(repoRoot, '.github', 'workflows', 'release.yml')

function findActionlint(): { path?: string; why: string } {
  if (process.env.GATEHOUSE_ACTIONLINT) return { path: process.env.GATEHOUSE_ACTIONLINT, why: '' }
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'actionlint'))) return { path: join(dir, 'actionlint'), why: '' }
  try {
    const gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim()
    if (existsSync(join(gopath, 'bin', 'actionlint'))) return { path: join(gopath, 'bin', 'actionlint'), why: '' }
  } catch {
    // no Go either
  }
  return { why: 'actionlint is not on PATH, not in $(go env GOPATH)/bin and GATEHOUSE_ACTIONLINT is not set; run .ci/install-actionlint (needs Go)' }
}

const workflow = parse(readFileSync(WORKFLOW, 'utf8')) as {
  on: { push: { tags: string[] } }
  jobs: Record<string, { needs?: string | string[]; steps: { uses?: string; run?: string; with?: Record<string, unknown> }[] }>
}

t.test('what a release does', async (t) => {
  t.same(workflow.on.push.tags, ['v*.*.*'], 'on a version tag only')
  const check = workflow.jobs.check!
  t.ok(check.steps.some((s) => s.run?.includes('.ci/run')), 'first the checks every change passes')
  const image = workflow.jobs.image!
  t.equal(image.needs, 'check')
  const build = image.steps.find((s) => s.uses?.startsWith('docker/build-push-action'))!
  t.match(build.with, { platforms: 'linux/amd64,linux/arm64', push: true, sbom: true }, 'two architectures, pushed, with an SBOM')
  t.match(String(build.with!.provenance), /^mode=max$/, 'and full provenance')
  t.ok(image.steps.some((s) => s.uses?.startsWith('anchore/sbom-action')), 'the SBOM as a release file too')
  const chart = workflow.jobs.chart!
  t.equal(chart.needs, 'image')
  const push = chart.steps.map((s) => s.run ?? '').join('\n')
  t.match(push, /helm push .*"\$CHARTS"/, 'the chart goes to the OCI registry')
  t.match(push, /repository: \$\{IMAGE\}/, 'pointing at the published image')
  t.match(push, /digest: \\"\$\{DIGEST\}\\"/, 'by digest')
})

const actionlint = findActionlint()
if (!actionlint.path) {
  if (process.env.GATEHOUSE_REQUIRE_ACTIONLINT === '1') t.fail(`actionlint is required here: ${actionlint.why}`)
  else t.test('actionlint', { skip: `workflow lint skipped: ${actionlint.why}` }, async () => {})
} else {
  const lint = (file: string) => spawnSync(actionlint.path!, ['-no-color', file], { encoding: 'utf8' })
  t.test('actionlint accepts the workflows', async (t) => {
    const r = lint(WORKFLOW)
    t.equal(r.status, 0, r.stdout + r.stderr)
  })
  t.test('and can fail: a broken copy is refused with its line', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-workflow-'))
    const broken = join(dir, 'release.yml')
    writeFileSync(broken, readFileSync(WORKFLOW, 'utf8').replace('needs: image', 'needs: imgae').replace('${{ steps.build.outputs.digest }}', '${{ steps.biuld.outputs.digest }}'))
    const r = lint(broken)
    t.not(r.status, 0)
    t.match(r.stdout, /imgae/, 'an unknown job in needs')
    t.match(r.stdout, /biuld/, 'an unknown step in an expression')
  })
}
