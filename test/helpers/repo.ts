/**
 * Where the repository's files are for a test, whichever way it runs: as test/x.ts through tsx
 * (`npx tap test/x.test.ts`) or compiled to .build/test/x.js (`npm test`, issue 22). Files
 * that are not compiled (config/, docs/, helm/, JSON fixtures, the .ts sources a test reads)
 * are found from the repository root; the modules a child process runs are found beside the
 * running test code, so a compiled test starts compiled children without tsx.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function nearestPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`)
  }
}

/** The repository root (its package.json's folder). */
export const REPO_ROOT = nearestPackageRoot(dirname(fileURLToPath(import.meta.url)))

/** A path in the repository, from its root: `repoPath('config/dev.yaml')`. */
export const repoPath = (...parts: string[]): string => join(REPO_ROOT, ...parts)

const compiled = import.meta.url.endsWith('.js')
/** The root of the code this run executes: the repository under tsx, .build/ compiled. */
const CODE_ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * A module as this run loads it, for a child process or a dynamic import by path:
 * `moduleFile('src/cli')` is src/cli.ts under tsx, .build/src/cli.js compiled.
 */
export const moduleFile = (path: string): string => join(CODE_ROOT, `${path}.${compiled ? 'js' : 'ts'}`)

/** What node needs before such a module's path to run it: tsx for .ts, nothing for compiled .js. */
export const NODE_LOADER: readonly string[] = compiled ? [] : ['--import=tsx']

/** node's arguments to run the `gatehouse` command: `spawn(process.execPath, [...CLI_ARGV, 'serve'])`. */
export const CLI_ARGV: readonly string[] = [...NODE_LOADER, moduleFile('src/cli')]
