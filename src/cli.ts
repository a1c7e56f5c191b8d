#!/usr/bin/env node
/**
 * The `gatehouse` command.
 *
 *   gatehouse serve [--config FILE]       run the gateway (no file: the embedded demo)
 *   gatehouse check-config FILE           validate a configuration, listing every problem
 *   gatehouse token --config FILE ...     mint an access token (until the built-in AS issues them)
 *   gatehouse keys generate [--alg ES256] print a new private signing key (PKCS#8 PEM)
 *   gatehouse keys list|rotate ...        the configured signing keys; a new key and the steps to roll it in
 *   gatehouse hash-password               hash a password read from stdin, for login.static.users
 *   gatehouse grants list|revoke ...      what people allowed which clients; revoking stops refreshes
 *   gatehouse clients list|delete ...     dynamically registered clients of a deployment
 *   gatehouse cimd inspect|purge ...      one metadata-document client id's decision, step by step; empty the cache
 */
import { callbackUrl } from './login/oidc.js'
import { writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importPKCS8 } from 'jose'
import { AuditTrail } from './audit/events.js'
import { createAuditSink } from './audit/sink.js'
import { ConfigError, loadConfigFile, loadConfigObject, type GatewayConfig } from './config/load.js'
import { DEMO_CLIENT_ID, DEMO_USER, demoConfig } from './demo/config.js'
import { startDemoMcpServer } from './demo/mcp-server.js'
import { KeyError, loadKeystore } from './keys/keystore.js'
import { hashPassword } from './login/passwords.js'
import { inspectClientId } from './oauth/clients/cimd/inspect.js'
import { SafeFetcher } from './oauth/clients/cimd/fetch.js'
import { CimdClients } from './oauth/clients/cimd/resolve.js'
import { Grants, type Grant } from './oauth/grants/grants.js'
import { RegisteredClients } from './oauth/clients/registered.js'
import { mintAccessToken } from './keys/tokens.js'
import { createLogger } from './log.js'
import { closeOnSignals, startGateway } from './main.js'
import { createStore } from './store/create.js'
import type { Store } from './store/store.js'

const USAGE = `usage:
  gatehouse serve [--config FILE]          (or GATEHOUSE_CONFIG=FILE; no file runs the embedded demo)
  gatehouse check-config FILE
  gatehouse token --config FILE [--resource ID] [--sub SUBJECT] [--client-id ID] [--scope "A B"] [--ttl SECONDS]
  gatehouse keys generate [--alg ES256|RS256|PS256|EdDSA]
  gatehouse keys list --config FILE        (kid, algorithm and role of each configured key)
  gatehouse keys rotate --config FILE --out NEW_KEY_FILE [--alg ES256] [--kid KID]
  gatehouse hash-password                  (reads the password from standard input)
  gatehouse grants list --config FILE [--sub SUBJECT] [--client-id ID]
  gatehouse grants revoke --config FILE GRANT_ID...
  gatehouse grants revoke --config FILE --sub SUBJECT | --client-id ID   (every grant of a person or client)
  gatehouse clients list --config FILE     (dynamically registered clients)
  gatehouse clients delete --config FILE CLIENT_ID...
  gatehouse cimd inspect URL --config FILE (the decision for one client id URL, step by step; reads the cache, never writes it)
  gatehouse cimd purge [URL] --config FILE (empties the metadata document cache of a deployment, or one URL's records)`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return serve(rest)
    case 'check-config':
      return checkConfig(rest)
    case 'token':
      return token(rest)
    case 'keys':
      return keys(rest)
    case 'hash-password':
      return hashPasswordCommand()
    case 'grants':
      return grantsCommand(rest)
    case 'clients':
      return clientsCommand(rest)
    case 'cimd':
      return cimdCommand(rest)
    default:
      process.stderr.write(`${USAGE}\n`)
      return command === undefined || command === 'help' || command === '--help' ? 0 : 2
  }
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } })
  const file = values.config ?? process.env.GATEHOUSE_CONFIG
  if (file) {
    const config = await loadConfigFile(file)
    const logger = createLogger(config.log.level)
    const gateway = await startGateway(config, { logger })
    closeOnSignals(gateway, logger)
    return -1
  }

  const port = Number(process.env.PORT ?? 8080)
  const demo = await startDemoMcpServer()
  const config = loadConfigObject(
    demoConfig(port, demo.url, await hashPassword(DEMO_USER.password)),
    'embedded demo configuration',
  )
  const logger = createLogger(config.log.level)
  const gateway = await startGateway(config, { logger })
  const originalClose = gateway.close
  closeOnSignals({ ...gateway, close: async () => (await originalClose(), await demo.close()) }, logger)
  const resource = config.resources[0]!
  const devToken = await mintAccessToken(
    gateway.keystore!,
    config.issuer,
    { sub: 'developer', clientId: 'gatehouse-demo', audience: resource.uri, scopes: resource.requiredScopes },
    3600,
  )
  process.stdout.write(`
Gatehouse is running the embedded demo (development settings; see the warnings above).

  MCP endpoint      ${resource.uri}   (protected; upstream: the bundled demo MCP server)
  Resource metadata ${resource.metadataUrl}

Try it:
  curl -i ${resource.uri} -X POST -H 'content-type: application/json' -d '{}'      # 401 + challenge
  export TOKEN=${devToken}
  curl -s ${resource.uri} -X POST -H "authorization: Bearer $TOKEN" \\
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \\
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'

The token above is valid for one hour. MCP clients can also get their own through the
built-in authorization server (${config.issuer}): they may register themselves, or use the
pre-registered client id ${DEMO_CLIENT_ID} (redirect http://localhost:<any port>/callback).
Sign in as ${DEMO_USER.username} / ${DEMO_USER.password}.

Next: write your own configuration (config/gatehouse.example.yaml) and run:
  gatehouse serve --config FILE
`)
  return -1
}

async function checkConfig(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true })
  const file = positionals[0]
  if (!file) throw new UsageError('check-config needs a FILE')
  const config = await loadConfigFile(file)
  process.stdout.write(`${file}: valid (${config.resources.length} resource(s))\n`)
  for (const warning of config.warnings) process.stdout.write(`  warning: ${warning}\n`)
  // What the operator registers at each identity provider.
  for (const provider of config.login.oidc) {
    process.stdout.write(`  login.oidc ${provider.id}: redirect URI ${callbackUrl(config.publicUrl, provider.id)}\n`)
  }
  return 0
}

async function token(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      resource: { type: 'string' },
      sub: { type: 'string', default: 'developer' },
      'client-id': { type: 'string', default: 'gatehouse-cli' },
      scope: { type: 'string' },
      ttl: { type: 'string' },
    },
  })
  const file = values.config ?? process.env.GATEHOUSE_CONFIG
  if (!file) throw new UsageError('token needs --config FILE')
  const config = await loadConfigFile(file)
  if (config.externalIssuer) throw new UsageError('this gateway trusts an external issuer: get tokens from it')
  if (config.keys.length === 0 && config.store.type === 'memory') {
    throw new UsageError(
      'the development key of a gateway with the memory store lives in that process only; ' +
        'configure keys or the Redis store to mint tokens from the command line',
    )
  }
  const resource = values.resource ? config.resources.find((r) => r.id === values.resource) : config.defaultResource
  if (!resource) throw new UsageError(values.resource ? `no resource with id ${values.resource}` : 'name a --resource')
  const ttl = Number(values.ttl ?? config.accessTokens.ttlSeconds)
  if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError('--ttl must be a whole number of seconds')
  const store = createStore(config.store, createLogger('error'))
  try {
    const keystore = await loadKeystore(config.keys, store)
    const scopes = values.scope !== undefined ? values.scope.split(' ').filter(Boolean) : resource.requiredScopes
    const jwt = await mintAccessToken(
      keystore,
      config.issuer,
      { sub: values.sub, clientId: values['client-id'], audience: resource.uri, scopes },
      ttl,
    )
    process.stdout.write(`${jwt}\n`)
  } finally {
    await store.close()
  }
  return 0
}

async function keys(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { alg: { type: 'string', default: 'ES256' }, config: { type: 'string' }, out: { type: 'string' }, kid: { type: 'string' } },
  })
  const action = positionals[0]
  if (action === 'list') return keysList(values.config)
  if (action !== 'generate' && action !== 'rotate') {
    throw new UsageError('keys generate [--alg ALG] | keys list --config FILE | keys rotate --config FILE --out FILE')
  }
  if (!['ES256', 'RS256', 'PS256', 'EdDSA'].includes(values.alg)) throw new UsageError(`unsupported --alg ${values.alg}`)
  const { privateKey } = await generateKeyPair(values.alg, { extractable: true, ...(values.alg !== 'ES256' && values.alg !== 'EdDSA' && { modulusLength: 3072 }) })
  const pem = await exportPKCS8(privateKey)
  if (action === 'generate') {
    process.stdout.write(pem)
    return 0
  }
  return keysRotate(values.config, values.out, values.alg, values.kid, pem)
}

/** The configured signing keys as the gateway loads them: kid (given or thumbprint), algorithm, role. */
async function keysList(file: string | undefined): Promise<number> {
  const config = await configFile(file, 'keys list')
  if (config.externalIssuer) throw new UsageError('this gateway trusts an external issuer: it signs nothing')
  if (config.keys.length === 0) {
    process.stdout.write('no signing keys configured: the gateway signs with a generated development key kept in its store\n')
    return 0
  }
  // Each key is loaded on its own, which checks it and names it as the gateway does (kid or thumbprint).
  const store = createStore({ type: 'memory' }, createLogger('error'))
  try {
    for (const key of config.keys) {
      const { active } = await loadKeystore([{ ...key, active: true }], store)
      const from = key.file !== undefined ? `file ${key.file}` : `env ${key.env}`
      const role = key.active ? 'active (signs new tokens)' : 'verify only'
      process.stdout.write(`${active.kid}\t${active.alg}\t${role}\t${from}\n`)
    }
  } finally {
    await store.close()
  }
  return 0
}

/**
 * Key rotation for a deployment whose keys come from files or the environment: the gateway
 * never writes its own configuration, so this writes the new private key to a file (mode 0600,
 * never over an existing one) and prints the three configuration changes to roll it in. Every
 * replica must know a key before any replica signs with it (the resource side checks tokens
 * with its own key list), and the old key must keep verifying until the last token it signed
 * has expired.
 */
async function keysRotate(file: string | undefined, out: string | undefined, alg: string, kidOption: string | undefined, pem: string): Promise<number> {
  const config = await configFile(file, 'keys rotate')
  if (config.externalIssuer) throw new UsageError('this gateway trusts an external issuer: it signs nothing')
  if (!out) throw new UsageError('keys rotate needs --out FILE for the new private key')
  const store = createStore({ type: 'memory' }, createLogger('error'))
  let kids: string[]
  try {
    kids = config.keys.length === 0 ? [] : (await loadKeystore(config.keys, store)).jwks.keys.map((k) => k.kid!)
  } finally {
    await store.close()
  }
  const today = new Date().toISOString().slice(0, 10)
  let kid = kidOption ?? `${alg.toLowerCase()}-${today}`
  for (let n = 2; kidOption === undefined && kids.includes(kid); n++) kid = `${alg.toLowerCase()}-${today}-${n}`
  if (kids.includes(kid)) throw new UsageError(`a configured key already has kid ${kid}`)
  try {
    await writeFile(out, pem, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    throw new UsageError(`cannot write ${out} (${(err as NodeJS.ErrnoException).code}); it must not exist yet`)
  }
  // The thumbprint reads only the public members (RFC 7638 §3.2).
  const thumbprint = await calculateJwkThumbprint(await exportJWK(await importPKCS8(pem, alg, { extractable: true })), 'sha256')
  const waitSeconds = config.accessTokens.ttlSeconds + config.accessTokens.clockToleranceSeconds
  // Values double-quoted (JSON strings are valid YAML): a path with spaces, commas or braces
  // must still read back as one value.
  const q = (value: string) => JSON.stringify(value)
  const yamlKey = (k: { file?: string; env?: string; kid?: string; alg: string }, active: boolean) =>
    `  - { ${k.file !== undefined ? `file: ${q(k.file)}` : `env: ${q(k.env ?? '')}`}${k.kid !== undefined ? `, kid: ${q(k.kid)}` : ''}, alg: ${k.alg}, active: ${active} }`
  const current = config.keys.map((k) => ({ ...k }))
  const activeNow = current.findIndex((k) => k.active)
  const fresh = { file: out, kid, alg }
  const keysYaml = (newActive: boolean, keepOld: boolean) =>
    ['keys:', ...(keepOld ? current.map((k, i) => yamlKey(k, !newActive && i === activeNow)) : []), yamlKey(fresh, newActive)].join('\n')
  process.stdout.write(`wrote the new ${alg} private key to ${out} (kid ${kid}, thumbprint ${thumbprint})
Put it where every replica reads its keys (the file path above, a mounted Secret, or an
environment variable with env: instead of file:), then change the configuration in three steps,
rolling every replica out after each one:

1. Publish the new key, still signing with the current one (replicas that have not restarted yet
   must already know the key before anyone signs with it):

${keysYaml(false, true)}

2. Once every replica runs step 1, sign with the new key; the old one only verifies:

${keysYaml(true, true)}

3. After step 2 has run everywhere for at least ${waitSeconds} s (accessTokens.ttlSeconds +
   clockToleranceSeconds: the last token the old key signed has expired), remove the old key:

${keysYaml(true, false)}
`)
  if (config.keys.length === 0) {
    process.stdout.write(
      '\n(The gateway signs with a generated development key today, which no configuration names: step 2 is the ' +
        'whole change. Tokens the development key signed stop verifying; clients refresh or sign in again.)\n',
    )
  }
  return 0
}

async function grantsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, sub: { type: 'string' }, 'client-id': { type: 'string' } },
  })
  const [action, ...ids] = positionals
  if (action !== 'list' && action !== 'revoke') throw new UsageError('grants list|revoke --config FILE')
  const filter = { ...(values.sub && { sub: values.sub }), ...(values['client-id'] && { clientId: values['client-id'] }) }
  if (action === 'revoke' && ids.length === 0 && Object.keys(filter).length === 0) {
    throw new UsageError('grants revoke needs GRANT_IDs, or --sub and/or --client-id for all grants of a person or client')
  }
  if (action === 'revoke' && ids.length > 0 && Object.keys(filter).length > 0) {
    throw new UsageError('grants revoke takes GRANT_IDs or --sub/--client-id, not both')
  }
  const config = await sharedStoreConfig(values.config, 'grants')
  return withOperatorStore(config, async (store, audit) => {
    const grants = new Grants(store, config.authorizationServer, audit)
    if (action === 'list') {
      for await (const grant of grants.list(filter)) process.stdout.write(`${JSON.stringify(grant)}\n`)
      return 0
    }
    if (ids.length === 0) {
      // Collected first: revoking while walking the key space could skip keys.
      const matching: Grant[] = []
      for await (const grant of grants.list(filter)) matching.push(grant)
      for (const grant of matching) {
        await grants.revoke(grant.grantId, 'operator')
        process.stdout.write(`revoked ${grant.grantId}\n`)
      }
      process.stdout.write(`${matching.length} grant(s) revoked\n`)
      return 0
    }
    let missing = 0
    for (const id of ids) {
      if (await grants.get(id)) {
        await grants.revoke(id, 'operator')
        process.stdout.write(`revoked ${id}\n`)
      } else {
        process.stderr.write(`gatehouse: no grant ${id}\n`)
        missing++
      }
    }
    return missing > 0 ? 1 : 0
  })
}

/**
 * Dynamically registered clients (pre-registered ones live in the YAML, metadata-document ones
 * in their owners' hands). Deleting one stops it at /authorize and /token at once; its grants
 * stay until revoked (`grants revoke --client-id`) and can no longer be refreshed by it.
 */
async function clientsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string' } } })
  const [action, ...ids] = positionals
  if (action !== 'list' && action !== 'delete') throw new UsageError('clients list|delete --config FILE')
  if (action === 'delete' && ids.length === 0) throw new UsageError('clients delete needs at least one CLIENT_ID')
  const config = await sharedStoreConfig(values.config, 'clients')
  return withOperatorStore(config, async (store, audit) => {
    const registered = new RegisteredClients(store, config.registration)
    if (action === 'list') {
      for await (const record of registered.list()) {
        const line = {
          clientId: record.clientId,
          name: record.metadata.client_name ?? null,
          createdAt: new Date(record.issuedAt * 1000).toISOString(),
          // Renewed by use at most once per tenth of registration.unusedTtlSeconds: a lower bound.
          lastUsedAt: new Date(record.touchedAt).toISOString(),
          authMethod: record.metadata.token_endpoint_auth_method,
          applicationType: record.metadata.application_type,
          redirectUris: record.metadata.redirect_uris,
        }
        process.stdout.write(`${JSON.stringify(line)}\n`)
      }
      return 0
    }
    let missing = 0
    for (const id of ids) {
      const record = await registered.get(id)
      if (!record) {
        process.stderr.write(`gatehouse: no registered client ${id}\n`)
        missing++
        continue
      }
      await registered.delete(record)
      audit.record({ type: 'client.deleted', clientId: id, by: 'operator' })
      process.stdout.write(`deleted ${id}\n`)
    }
    return missing > 0 ? 1 : 0
  })
}

/**
 * An operator command's store and audit trail. Its events go to the configured file, or to
 * standard error with the log and stdout sinks (standard output is the command's answer).
 */
async function withOperatorStore(config: GatewayConfig, work: (store: Store, audit: AuditTrail) => Promise<number>): Promise<number> {
  const sink = createAuditSink(config.audit, createLogger(config.log.level, process.stderr), { stdout: process.stderr })
  const store = createStore(config.store, createLogger('error'))
  try {
    return await work(store, new AuditTrail(sink.write))
  } finally {
    await store.close()
    sink.close()
  }
}

/**
 * `cimd inspect` works with any store: with Redis it shows the deployment's cache state, with a
 * memory store (empty in a new process) what a freshly started gateway would decide; it never
 * writes the cache. `cimd purge` changes a deployment, so like `grants` it needs a shared store.
 */
async function cimdCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string' } } })
  const [action, ...ids] = positionals
  if (action === 'inspect') {
    if (ids.length !== 1) throw new UsageError('cimd inspect needs exactly one client id URL')
    const file = values.config ?? process.env.GATEHOUSE_CONFIG
    if (!file) throw new UsageError('cimd inspect needs --config FILE')
    const config = await loadConfigFile(file)
    if (config.externalIssuer) throw new UsageError('this gateway trusts an external issuer: it resolves no client ids')
    const store = createStore(config.store, createLogger('error'))
    const fetcher = new SafeFetcher({ ...config.cimd.fetch, allowPrivateAddresses: config.cimd.allowPrivateAddresses })
    try {
      const { accepted, lines } = await inspectClientId(ids[0]!, { config, store, fetcher })
      process.stdout.write(`${lines.join('\n')}\n`)
      return accepted ? 0 : 1
    } finally {
      await fetcher.close()
      await store.close()
    }
  }
  if (action === 'purge') {
    if (ids.length > 1) throw new UsageError('cimd purge takes at most one client id URL')
    const config = await sharedStoreConfig(values.config, 'cimd purge')
    const store = createStore(config.store, createLogger('error'))
    try {
      const noFetch = { fetchJson: () => Promise.reject(new Error('purge does not fetch')) }
      const clients = new CimdClients({ config: config.cimd, store, fetcher: noFetch, selfOrigin: new URL(config.issuer).origin })
      const n = await clients.purge(ids[0])
      process.stdout.write(`purged ${n} cache record(s)${ids[0] !== undefined ? ` for ${ids[0]}` : ''}\n`)
      return 0
    } finally {
      await store.close()
    }
  }
  throw new UsageError('cimd inspect URL --config FILE | cimd purge [URL] --config FILE')
}

async function configFile(file: string | undefined, command: string): Promise<GatewayConfig> {
  const path = file ?? process.env.GATEHOUSE_CONFIG
  if (!path) throw new UsageError(`${command} needs --config FILE`)
  return loadConfigFile(path)
}

/** Operator commands reach a running deployment through its store; a memory store is out of reach. */
async function sharedStoreConfig(file: string | undefined, command: string): Promise<GatewayConfig> {
  const config = await configFile(file, command)
  if (config.store.type === 'memory') {
    throw new UsageError(`${command} works on the Redis store of a deployment; a memory store lives inside its process`)
  }
  return config
}

/** From stdin, not argv: a password on the command line would land in shell history and ps. */
async function hashPasswordCommand(): Promise<number> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  if (password.length < 8) throw new UsageError('give a password of at least 8 characters on standard input')
  process.stdout.write(`${await hashPassword(password)}\n`)
  return 0
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof KeyError || err instanceof UsageError) {
      process.stderr.write(`gatehouse: ${err.message}\n`)
      process.exitCode = 2
    } else if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`gatehouse: ${err.message}\n${USAGE}\n`)
      process.exitCode = 2
    } else {
      process.stderr.write(`gatehouse: ${err instanceof Error ? err.message : String(err)}\n`)
      process.exitCode = 1
    }
  },
)
