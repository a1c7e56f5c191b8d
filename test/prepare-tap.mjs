// tap rebuilds its plugin set when the configured one differs, but only after the runner has
// started with the old set, so the first run after `npm ci` would still load every default
// plugin into every test process: ts-node through @tapjs/typescript, and @tapjs/mock's module
// loader, which sits in front of every import (about 0.3 s of CPU per test file, issue 22).
// Rebuild up front when the built set still holds a plugin package.json's "tap.plugin" removes
// ("!name") or lacks one it adds.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const built = readFileSync(new URL('../node_modules/@tapjs/test/test-built/dist/esm/index.js', import.meta.url), 'utf8')
const configured = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).tap.plugin
const importsPlugin = (name) => built.includes(`from "${name}"`)
const stale = configured.some((entry) => (entry.startsWith('!') ? importsPlugin(entry.slice(1)) : !importsPlugin(entry)))
if (stale) execFileSync('npx', ['tap', 'build'], { stdio: 'inherit' })
