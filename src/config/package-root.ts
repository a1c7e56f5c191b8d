/**
 * The installed package's root folder (where package.json is), for the files that ship beside
 * the code (config/, helm/, package.json). Found by walking up rather than by a fixed relative
 * URL because this code runs from three depths: src/ (tsx), dist/ (the published build) and
 * .build/src/ (the tests' compiled copy, issue 22).
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function findPackageRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url))
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) throw new Error(`no package.json above ${start}`)
  }
}

/** A file of the package, from its root: `packageFile('config/REFERENCE.md')`. */
export const packageFile = (path: string): string => join(findPackageRoot(), path)
