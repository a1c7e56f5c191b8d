/**
 * Loads the YAML configuration: parse, substitute ${ENV}, validate against the schema with
 * defaults, check what a schema cannot say, derive the published URLs, freeze.
 * Every problem is reported at once, each with its path and a hint.
 */
import { open } from 'node:fs/promises'
import { Ajv, type ErrorObject } from 'ajv'
import { parseDocument } from 'yaml'
import { cimdWarnings } from './cimd-checks.js'
import { semanticProblems } from './semantic-checks.js'
import { loginWarnings } from './login-schema.js'
import { ConfigSchema, type Config, type ResourceConfig } from './schema.js'

export interface ConfigProblem {
  path: string
  message: string
}

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

const validate = new Ajv({ useDefaults: true, allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true })
  .addFormat('uri', (s: string) => URL.canParse(s))
  .compile<Config>(ConfigSchema)

/** How strictly a configuration is loaded; the default is what `serve` and `check-config` need. */
export interface LoadOptions {
  /**
   * Paths (as problems name them, e.g. `login.oidc[0].clientSecret`) where an unset `${VAR}` is
   * tolerated: operator commands read a few sections only, and must not need every client secret
   * in their environment to list grants. The value becomes a placeholder, and problems at or
   * below such a path are dropped: the command never reads it. Nothing of it is printed.
   */
  tolerateUnset?: (path: string) => boolean
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
  return loadConfigText(text, file, env, options)
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
  return loadConfigObject(raw ?? {}, source, env, options)
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

/** Loads configuration from an already parsed object (tests, the embedded demo). */
export function loadConfigObject(raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): GatewayConfig {
  const problems: ConfigProblem[] = []
  const tolerated: string[] = []
  const data = substituteEnv(structuredClone(raw), '', env, problems, (path) => {
    if (!options.tolerateUnset?.(path)) return false
    tolerated.push(path)
    return true
  })
  // A placeholder may fail the schema where the real value would not: not the command's concern.
  const relevant = (p: ConfigProblem) => !tolerated.some((t) => p.path === t || p.path.startsWith(`${t}.`) || p.path.startsWith(`${t}[`))
  if (problems.length === 0 && !validate(data)) {
    problems.push(...(validate.errors ?? []).filter((e) => e.keyword !== 'if').map(schemaProblem).filter(relevant))
  }
  if (problems.length > 0) throw new ConfigError(source, problems)
  const config = data as Config
  problems.push(...semanticProblems(config).filter(relevant))
  if (problems.length > 0) throw new ConfigError(source, problems)
  return deepFreeze(derive(config))
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

function schemaProblem(e: ErrorObject): ConfigProblem {
  const path = e.instancePath
    .split('/')
    .slice(1)
    .map((seg) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg.replace(/~1/g, '/').replace(/~0/g, '~')}`))
    .join('')
    .replace(/^\./, '')
  switch (e.keyword) {
    case 'additionalProperties':
      return { path, message: `unknown key "${String(e.params.additionalProperty)}"` }
    case 'enum':
      return { path, message: `must be one of ${(e.params.allowedValues as unknown[]).join(', ')}` }
    case 'const':
      return { path, message: `must be ${JSON.stringify(e.params.allowedValue)}` }
    case 'oneOf':
      return { path, message: 'give exactly one of the alternatives (for a key: `file` or `env`)' }
    case 'anyOf':
      return { path, message: 'does not match any allowed form' }
    default:
      return { path, message: e.message ?? e.keyword }
  }
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
  return {
    ...c,
    publicUrl,
    issuer: (c.issuer ?? publicUrl).replace(/\/$/, ''),
    keys: c.keys.length === 1 ? [{ ...c.keys[0]!, active: true }] : c.keys,
    resources,
    defaultResource,
    warnings,
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
