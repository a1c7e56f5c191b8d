/** `gatehouse --version`: the version of the installed package. */
import { readFile } from 'node:fs/promises'
import { packageFile } from '../config/package-root.js'

/**
 * Read from package.json at run time rather than compiled in, so it cannot drift from what npm
 * installed.
 */
export async function packageVersion(): Promise<string> {
  const manifest = JSON.parse(await readFile(packageFile('package.json'), 'utf8')) as { version?: unknown }
  return typeof manifest.version === 'string' ? manifest.version : 'unknown'
}
