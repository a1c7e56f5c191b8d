// `npm run typecheck` also compiles src/ and test/ into .build/, which `npm test` runs with plain
// node (issue 22). tsc never removes what it emitted for a .ts file that has since been deleted
// or renamed, and tap would still run a stale .build/test/**/*.test.js: remove every compiled
// file whose source is gone.
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
for (const top of ['src', 'test']) {
  const compiled = join(root, '.build', top)
  if (!existsSync(compiled)) continue
  for (const file of readdirSync(compiled, { recursive: true })) {
    const source = /^(.*)\.js(?:\.map)?$/.exec(file)?.[1]
    if (source !== undefined && !existsSync(join(root, top, `${source}.ts`))) rmSync(join(compiled, file))
  }
}
