/**
 * The layout keeps itself: the import rules of .dependency-cruiser.cjs hold in src/ (no circle,
 * one-way layers, see docs/architecture.md), and no source file grows past 300 lines without
 * saying at its top why it must.
 */
import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { REPO_ROOT } from '../helpers/repo.js'

const ROOT = REPO_ROOT
const DEPCRUISE = join(ROOT, 'node_modules/.bin/depcruise')
const CONFIG = join(ROOT, '.dependency-cruiser.cjs')
const MAX_LINES = 300
/** The phrase a long file's top comment uses to say why it is long. */
const LONG_FILE_REASON = /Longer than 300 lines because/

interface Violation {
  from: string
  to: string
  rule: { name: string }
}

async function violations(cwd: string): Promise<Violation[]> {
  const { stdout } = await promisify(execFile)(DEPCRUISE, ['src', '--config', CONFIG, '--output-type', 'json'], {
    cwd,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' })) // exit code 1 means "violations": read them
  return (JSON.parse(stdout) as { summary: { violations: Violation[] } }).summary.violations
}

t.test('src/ keeps the import rules: no circle, layers one way', async (t) => {
  const found = await violations(ROOT)
  t.same(
    found.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`),
    [],
    'no dependency-cruiser violation',
  )
})

t.test('the rules can fail: a circle and a policy module doing I/O are caught', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-imports-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await cp(join(ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'))
  await mkdir(join(dir, 'src/policy'), { recursive: true })
  await mkdir(join(dir, 'src/store'), { recursive: true })
  await writeFile(join(dir, 'src/policy/rule.ts'), "import { read } from '../store/reader.js'\nexport const rule = () => read()\n")
  await writeFile(join(dir, 'src/store/reader.ts'), "import type { rule } from '../policy/rule.js'\nexport const read = (): ReturnType<typeof rule> | undefined => undefined\n")
  const rules = new Set((await violations(dir)).map((v) => v.rule.name))
  t.ok(rules.has('no-circular'), 'a circle through a type-only import is reported')
  t.ok(rules.has('policy-is-pure'), 'policy/ importing store/ is reported')
  t.ok(rules.has('store-knows-nothing-above-it'), 'store/ importing policy/ is reported')
})

t.test(`no source file over ${MAX_LINES} lines without a reason at its top`, async (t) => {
  const files = (await readdir(join(ROOT, 'src'), { recursive: true })).filter((f) => f.endsWith('.ts'))
  t.ok(files.length > 50, 'the source tree was read')
  const unexplained: string[] = []
  for (const file of files) {
    const text = await readFile(join(ROOT, 'src', file), 'utf8')
    const lines = text.split('\n').length
    const top = text.slice(0, text.indexOf('*/') + 2)
    if (lines > MAX_LINES && !LONG_FILE_REASON.test(top)) unexplained.push(`${relative(ROOT, join(ROOT, 'src', file))} (${lines} lines)`)
  }
  t.same(unexplained, [], 'every long file says why')
})
