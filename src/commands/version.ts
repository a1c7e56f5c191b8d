/** `gatehouse --version`: the version of the installed package. */
import { readFile } from 'node:fs/promises'

/**
 * Read from package.json at run time rather than compiled in, so it cannot drift from what npm
 * installed. This module sits one directory below the package root both as src/commands/*.ts
 * (tsx) and as dist/commands/*.js (the published build), so one relative URL serves both.
 */
export async function packageVersion(): Promise<string> {
  const manifest = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
  return typeof manifest.version === 'string' ? manifest.version : 'unknown'
}
