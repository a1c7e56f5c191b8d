// tap rebuilds its plugin set when the configured one differs, but only after the runner has
// started with the old set, so the first run after `npm ci` would still load the TypeScript
// plugin (ts-node) into every test process. Rebuild up front when that would happen.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const built = readFileSync(new URL('../node_modules/@tapjs/test/test-built/dist/esm/index.js', import.meta.url), 'utf8')
if (built.includes('@tapjs/typescript')) execFileSync('npx', ['tap', 'build'], { stdio: 'inherit' })
