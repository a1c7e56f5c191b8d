/**
 * What `serve` reads at start besides the configuration itself: signing key files (or their
 * environment variables), CA bundles and JWKS files. Checked here so that `check-config` refuses
 * what `serve` would refuse, instead of passing and leaving `serve` to fail with ENOENT.
 * Works on the substituted data before it is known to be valid, so every access is defensive.
 */
import { accessSync, constants, statSync } from 'node:fs'
import { dirname } from 'node:path'
import type { ConfigProblem } from './problems.js'

type Entry = Record<string, unknown>

export function fileProblems(data: unknown, env: NodeJS.ProcessEnv): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const root = asObject(data)
  const readable = (path: string, file: unknown) => {
    const problem = typeof file === 'string' && !file.includes('${') ? unreadable(file) : undefined
    if (problem) problems.push({ path, message: `${JSON.stringify(file)} ${problem}` })
  }
  list(root.keys).forEach((key, i) => {
    readable(`keys[${i}].file`, key.file)
    // An unset variable here is not a `${VAR}` substitution but the key itself, read at start.
    if (typeof key.env === 'string' && !env[key.env]?.trim()) {
      problems.push({ path: `keys[${i}].env`, message: `environment variable ${key.env} is not set or empty` })
    }
  })
  readable('store.redis.tls.caFile', asObject(asObject(asObject(root.store).redis).tls).caFile)
  list(asObject(root.login).oidc).forEach((p, i) => readable(`login.oidc[${i}].caFile`, p.caFile))
  list(asObject(root.workloadIdentity).issuers).forEach((w, i) => readable(`workloadIdentity.issuers[${i}].jwksFile`, w.jwksFile))
  const audit = asObject(root.audit)
  if (audit.sink === 'file' && typeof audit.file === 'string' && !audit.file.includes('${')) {
    // The audit file is created if absent, so what must exist is its directory.
    const problem = unwritableDirectory(dirname(audit.file))
    if (problem) problems.push({ path: 'audit.file', message: `directory of ${JSON.stringify(audit.file)} ${problem}` })
  }
  return problems
}

function unreadable(file: string): string | undefined {
  try {
    if (!statSync(file).isFile()) return 'is not a file'
    accessSync(file, constants.R_OK)
    return undefined
  } catch (err) {
    return describe(err)
  }
}

function unwritableDirectory(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return 'is not a directory'
    accessSync(dir, constants.W_OK)
    return undefined
  } catch (err) {
    return describe(err)
  }
}

function describe(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'does not exist'
  if (code === 'EACCES') return 'is not accessible to this user (EACCES)'
  return `is not accessible (${code ?? 'error'})`
}

function asObject(value: unknown): Entry {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Entry) : {}
}

function list(value: unknown): Entry[] {
  return Array.isArray(value) ? value.map(asObject) : []
}
