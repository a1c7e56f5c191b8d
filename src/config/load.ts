/**
 * Loads the YAML configuration: parse, substitute ${ENV}, validate against the schema with
 * defaults, check what a schema cannot say, derive the published URLs, freeze.
 * Every problem is reported at once, each with its path and a hint.
 */
import { open } from 'node:fs/promises'
import { Ajv } from 'ajv'
import { parseDocument } from 'yaml'
import { cimdWarnings } from './cimd-checks.js'
import { fileProblems } from './file-checks.js'
import { schemaProblem, withoutImpliedRequired, type ConfigProblem } from './problems.js'
import { semanticProblems } from './semantic-checks.js'
import { loginWarnings } from './login-schema.js'
import { ConfigSchema, type Config, type ResourceConfig } from './schema.js'

export type { ConfigProblem } from './problems.js'

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  constructor(
    readonly source: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(
      `${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n` +
        problems.map((p) => `  - ${p.path || '(top level)'}: ${p.message}`).join('\n'),
    )
  }
}

export interface Resource extends ResourceConfig {
  /** The canonical resource identifier (RFC 8707, RFC 9728 `resource`): publicUrl + path. */
  readonly uri: string
  /** The path-inserted RFC 9728 well-known path for this resource (PRM-01). */
  readonly metadataPath: string
  /** The absolute URL of that metadata, used in WWW-Authenticate `resource_metadata`. */
  readonly metadataUrl: string
}

export interface GatewayConfig extends Omit<Config, 'resources' | 'issuer' | 'publicUrl'> {
  /** The public origin, without a trailing slash. */
  readonly publicUrl: string
  readonly issuer: string
  readonly resources: readonly Resource[]
  /** The resource used when a request names none; undefined when it would be ambiguous. */
  readonly defaultResource: Resource | undefined
  /** Development conveniences in force, each printed loudly at startup. */
  readonly warnings: readonly string[]
}

// verbose: errors carry the offending value and the schema, for "got …" and "did you mean …".
// optimize: false skips ajv's passes over the generated code: they take 40% of this compile,
// which every process pays once at start (every test file too, issue 22), and save nothing
// measurable on a validation that runs once per start.
const validate = new Ajv({ useDefaults: true, allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true, code: { optimize: false } })
  .addFormat('uri', (s: string) => URL.canParse(s))
  .compile<Config>(ConfigSchema)

/** How a configuration is loaded: strict by default; serve and check-config add the file checks, operator commands tolerate secrets they never read. */
export interface LoadOptions {
  /**
   * Paths (as problems name them, e.g. `login.oidc[0].clientSecret`) where an unset `${VAR}` is
   * tolerated: operator commands read a few sections only, and must not need every client secret
   * in their environment to list grants. The value becomes a placeholder, and problems at or
   * below such a path are dropped: the command never reads it. Nothing of it is printed.
   */
  readonly tolerateUnset?: (path: string) => boolean
  /**
   * Also check the files and key variables `serve` reads at start (keys, CA bundles, JWKS files).
   * Off for administrative commands, which need none of them.
   */
  readonly checkFiles?: boolean
  /**
   * What another layer finds in the substituted configuration, reported with the rest: the
   * keystore's reading of the key files (config/ may not import keys/). Only loadConfigFile.
   */
  readonly moreProblems?: (data: unknown) => Promise<ConfigProblem[]>
}

/** Far above any real configuration; a bound so a wrong path (/dev/zero, a disk image) fails fast. */
const MAX_CONFIG_BYTES = 1024 * 1024

/** Reads and loads a configuration file. */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Promise<GatewayConfig> {
  let text: string
  try {
    text = await readBounded(file)
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(file, [{ path: '', message: `cannot read the file (${(err as NodeJS.ErrnoException).code})` }])
  }
  const { data, problems } = collect(parseText(text, file), env, options)
  if (options.moreProblems) {
    // A key already reported (missing file, unset variable, wrong shape) is not read again.
    const more = await options.moreProblems(data)
    problems.push(...more.filter((m) => !problems.some((p) => p.path.startsWith(m.path))))
  }
  return finish(file, data, problems)
}

async function readBounded(file: string): Promise<string> {
  const handle = await open(file, 'r')
  try {
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1)
    let length = 0
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length)
      if (bytesRead === 0) break
      length += bytesRead
    }
    if (length > MAX_CONFIG_BYTES) {
      throw new ConfigError(file, [{ path: '', message: `the file is larger than ${MAX_CONFIG_BYTES / 1024} KiB` }])
    }
    return buffer.subarray(0, length).toString('utf8')
  } finally {
    await handle.close()
  }
}

/** Loads configuration from YAML text; `source` names it in error messages. */
export function loadConfigText(text: string, source: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): GatewayConfig {
  return loadConfigObject(parseText(text, source), source, env, options)
}

function parseText(text: string, source: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true })
  if (doc.errors.length > 0) {
    throw new ConfigError(source, doc.errors.map((e) => ({ path: '', message: yamlMessage(e.message) })))
  }
  let raw: unknown
  try {
    // The yaml library refuses alias expansion beyond maxAliasCount ("billion laughs") and
    // aliases without an anchor here; both are problems of the file, not crashes.
    raw = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    throw new ConfigError(source, [{ path: '', message: yamlMessage((err as Error).message) }])
  }
  return raw ?? {}
}

/**
 * A YAML error's first line, without the source text it quotes: a stray token may be a secret
 * written in the wrong place, and errors reach logs and terminals. Line and column remain.
 */
function yamlMessage(message: string): string {
  const line = message.split('\n')[0] ?? message
  return line
    .replace(/: "(?:[^"\\]|\\.)*"/g, '')
    .replace(/^(Unresolved alias \(the anchor must be set before the alias\)):.*$/, '$1')
}

/**
 * Loads configuration from an already parsed object (tests, the embedded demo).
 * One report holds every problem: unset variables, schema errors, impossible combinations and,
 * with checkFiles, unreadable files. A schema error where an unset variable stands is left out
 * (it follows from the variable), and so is any combination check that cannot run on a file
 * whose shape is wrong.
 */
export function loadConfigObject(raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): GatewayConfig {
  const { data, problems } = collect(raw, env, options)
  return finish(source, data, problems)
}

function collect(raw: unknown, env: NodeJS.ProcessEnv, options: LoadOptions): { data: unknown; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = []
  const tolerated: string[] = []
  const data = substituteEnv(structuredClone(raw), '', env, problems, (path) => {
    if (!options.tolerateUnset?.(path)) return false
    tolerated.push(path)
    return true
  })
  // What an unset variable (reported, or tolerated by an operator command) stands for: a
  // placeholder may fail the schema where the real value would not.
  const unset = [...problems.map((p) => p.path), ...tolerated]
  const follows = (p: ConfigProblem) => unset.some((u) => p.path === u || p.path.startsWith(`${u}.`) || p.path.startsWith(`${u}[`))
  const valid = validate(data)
  const errors = valid ? [] : (validate.errors ?? []).filter((e) => e.keyword !== 'if')
  const shape = withoutImpliedRequired(errors.map(schemaProblem)).filter((p) => !follows(p))
  problems.push(...shape)
  // A value the schema refused already has its problem; a combination check would repeat it.
  const refused = new Set(shape.map((p) => p.path))
  problems.push(...combinationProblems(data, valid).filter((p) => !follows(p) && !refused.has(p.path)))
  if (options.checkFiles) problems.push(...fileProblems(data, env))
  return { data, problems }
}

function finish(source: string, data: unknown, problems: readonly ConfigProblem[]): GatewayConfig {
  if (problems.length > 0) throw new ConfigError(source, problems)
  return deepFreeze(derive(data as Config))
}

/**
 * The semantic checks are written for a valid configuration; on an invalid one they still find
 * most mistakes (defaults are filled in either way), and where the shape is too wrong for them
 * to run, the schema errors already say why.
 */
function combinationProblems(data: unknown, valid: boolean): ConfigProblem[] {
  if (valid) return semanticProblems(data as Config)
  try {
    return semanticProblems(data as Config)
  } catch {
    return []
  }
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\$\{/g

/** `${NAME}` in any string value is replaced by the environment variable; `$${` escapes. */
function substituteEnv(
  value: unknown,
  path: string,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  tolerate: (path: string) => boolean = () => false,
): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (match, name: string | undefined) => {
      if (name === undefined) return '${'
      const v = env[name]
      if (v === undefined) {
        // URL-shaped, under the reserved .invalid TLD (RFC 2606): checks that parse the value as a
        // URL still run, and nothing could ever reach it.
        if (tolerate(path)) return `https://unset.invalid/${name}`
        problems.push({ path, message: `environment variable ${name} is not set` })
        return match
      }
      return v
    })
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, `${path}[${i}]`, env, problems, tolerate))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    // defineProperty, not assignment: a `__proto__` key stays a key (and is reported as unknown)
    // instead of becoming the object's prototype, whose members the validator would read as set.
    for (const [k, v] of Object.entries(value)) {
      const substituted = substituteEnv(v, path ? `${path}.${k}` : k, env, problems, tolerate)
      Object.defineProperty(out, k, { value: substituted, enumerable: true, writable: true, configurable: true })
    }
    return out
  }
  return value
}

function derive(c: Config): GatewayConfig {
  const publicUrl = c.publicUrl.replace(/\/$/, '')
  const resources: Resource[] = c.resources.map((r) => ({
    ...r,
    uri: publicUrl + r.path,
    metadataPath: '/.well-known/oauth-protected-resource' + r.path,
    metadataUrl: publicUrl + '/.well-known/oauth-protected-resource' + r.path,
  }))
  const defaultResource = resources.find((r) => r.default) ?? (resources.length === 1 ? resources[0] : undefined)
  return {
    ...c,
    publicUrl,
    issuer: (c.issuer ?? publicUrl).replace(/\/$/, ''),
    keys: c.keys.length === 1 ? [{ ...c.keys[0]!, active: true }] : c.keys,
    resources,
    defaultResource,
    warnings: developmentWarnings(c),
  }
}

/** The development conveniences a configuration has in force, each logged loudly at start (and at a reload that brings it). */
export function developmentWarnings(c: Omit<Config, 'resources'>): string[] {
  const publicUrl = c.publicUrl.replace(/\/$/, '')
  const warnings: string[] = []
  const host = new URL(publicUrl).hostname
  if (new URL(publicUrl).protocol === 'http:') warnings.push(`publicUrl is plain http (${host}): development only`)
  if (c.store.type === 'memory') {
    warnings.push('store is memory: one process only, everything is lost on restart')
  }
  if (c.keys.length === 0 && !c.externalIssuer) {
    warnings.push('no signing keys configured: a development key is generated and kept in the store')
  }
  if (c.registration.enabled && c.registration.initialAccessToken === undefined && !c.externalIssuer) {
    warnings.push('dynamic client registration is open: anyone can register a client (rate-limited and capped)')
  }
  warnings.push(...cimdWarnings(c.cimd))
  warnings.push(...loginWarnings(c.login))
  if (!c.externalIssuer && !c.login.static && c.login.oidc.length === 0) {
    warnings.push('no login provider configured: nobody can sign in to authorize a client')
  }
  return warnings
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
