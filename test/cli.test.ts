/**
 * The `gatehouse` commands, run in-process through the dispatcher the binary uses; the embedded
 * demo runs as a real child process, for its signal handling and exit status.
 */
import { mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { connectSdk1Client } from './fixtures/mcp-clients.js'
import { usageText } from '../src/commands/dispatch.js'
import { loadConfigFile } from '../src/config/load.js'
import { createLogger } from '../src/log.js'
import { startGateway } from '../src/main.js'
import { Grants } from '../src/oauth/grants/grants.js'
import { RegisteredClients } from '../src/oauth/clients/registered.js'
import { RedisStore } from '../src/store/redis.js'
import { runInProcess, startDemo } from './helpers/cli.js'
import { redisForTests } from './helpers/redis.js'
import { repoPath } from './helpers/repo.js'

const run = runInProcess

const dir = await mkdtemp(join(tmpdir(), 'gatehouse-cli-'))

t.test('check-config: valid files pass, invalid ones list every problem and exit 2', async (t) => {
  const ok = await run(['check-config', repoPath('config/dev.yaml')])
  t.equal(ok.code, 0)
  t.match(ok.stdout, /valid \(1 resource/)
  t.match(ok.stdout, /warning: store is memory/)
  const bad = join(dir, 'bad.yaml')
  await writeFile(bad, 'publicUrl: http://example.com\nresources:\n  - { id: a, name: A, path: mcp, upstream: x, colour: red }\n')
  const res = await run(['check-config', bad])
  t.equal(res.code, 2)
  t.match(res.stderr, /resources\[0\]: unknown key "colour"/)
  t.match(res.stderr, /resources\[0\]\.path/)
  t.match(res.stderr, /resources\[0\]\.upstream/)
  t.notMatch(res.stderr, /at .*\.[jt]s:\d+/, 'no stack trace for a user error')
})

t.test('check-config prints the redirect URI to register at each identity provider', async (t) => {
  const file = join(dir, 'oidc.yaml')
  await writeFile(
    file,
    [
      'publicUrl: https://gw.example.com',
      'login:',
      '  oidc:',
      '    - { id: corp, name: Corp SSO, issuer: "https://sso.example.com/realms/main", clientId: gatehouse, clientSecret: s3cret }',
      'resources:',
      '  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:3000/mcp", access: { emailDomains: [example.com] } }',
      '',
    ].join('\n'),
  )
  const res = await run(['check-config', file])
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /login\.oidc corp: redirect URI https:\/\/gw\.example\.com\/oauth\/callback\/corp/)
  t.notMatch(res.stdout, /s3cret/, 'the client secret is not printed')
})

t.test('usage errors exit 2 with the usage text', async (t) => {
  const res = await run(['frobnicate'])
  t.equal(res.code, 2)
  t.match(res.stderr, /usage:/)
  const missing = await run(['token'])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /needs --config/)
})

t.test('the usage text: every command\'s lines in order', async (t) => {
  const expected = `usage:
  gatehouse serve [--config FILE]          (or GATEHOUSE_CONFIG=FILE; no file runs the embedded demo)
  gatehouse check-config FILE
  gatehouse token --config FILE --sub SUBJECT [--resource ID] [--client-id ID] [--scope "A B"] [--ttl SECONDS]
                  [--allow-long-ttl] [--any-subject] [--actor NAME]   (token on stdout, its grant id on stderr)
  gatehouse keys generate [--alg ES256|RS256|PS256|EdDSA]
  gatehouse keys list --config FILE        (kid, algorithm and role of each configured key)
  gatehouse keys rotate --config FILE --out NEW_KEY_FILE [--alg ES256] [--kid KID] [--actor NAME]
  gatehouse hash-password                  (reads the password from standard input)
  gatehouse grants list --config FILE [--sub SUBJECT] [--client-id ID]
  gatehouse grants revoke --config FILE [--actor NAME] GRANT_ID...
  gatehouse grants revoke --config FILE [--actor NAME] --sub SUBJECT | --client-id ID   (every grant of a person or client)
  gatehouse clients list --config FILE     (dynamically registered clients)
  gatehouse clients delete --config FILE [--actor NAME] CLIENT_ID...
  gatehouse cimd inspect URL --config FILE (the decision for one client id URL, step by step; reads the cache, never writes it)
  gatehouse cimd purge [URL] --config FILE (empties the metadata document cache of a deployment, or one URL's records)
  gatehouse workload inspect TOKEN|FILE|- --config FILE [--resource URL] (why a workload token is accepted or refused, step by step; never spends it)`
  t.equal(await usageText(), expected)
  const help = await run(['help'])
  t.equal(help.code, 0)
  t.equal(help.stdout, `${expected}\n`, 'asked-for help is the answer: stdout')
  t.equal(help.stderr, '', 'nothing on stderr')
})

t.test('commands reach the process only through their io, so tests can run them in-process', async (t) => {
  const commands = repoPath('src/commands')
  for (const name of await readdir(commands)) {
    // Comments may name process.stdout; code may not.
    const code = (await readFile(join(commands, name), 'utf8')).replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')
    t.notMatch(code, /\bprocess\.(?:env|stdout|stderr|stdin|exit|exitCode|argv|on|umask|chdir)\b/, `${name}: no process.*`)
  }
})

t.test('keys generate → a key file the gateway signs with; token mints for it', async (t) => {
  const gen = await run(['keys', 'generate'])
  t.equal(gen.code, 0)
  t.match(gen.stdout, /^-----BEGIN PRIVATE KEY-----/)
  const keyFile = join(dir, 'signing.pem')
  await writeFile(keyFile, gen.stdout)
  // One file for the command and the gateway. The gateway listens on a port of the system's
  // choosing: its public URL names no port, so nothing has to be known before it binds.
  const config = join(dir, 'gw.yaml')
  await writeFile(
    config,
    `publicUrl: https://mcp.example.com\nlisten: { host: 127.0.0.1, port: 0 }\nkeys: [{ file: ${keyFile}, kid: k1 }]\nresources:\n  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:1/mcp", scopes: [{ name: mcp }], requiredScopes: [mcp] }\n`,
  )
  // carol is no configured user: a development token for anyone needs --any-subject.
  const minted = await run(['token', '--config', config, '--sub', 'carol', '--ttl', '120', '--any-subject'])
  t.equal(minted.code, 0, minted.stderr)
  const jwt = minted.stdout.trim()
  const [header, payload] = jwt.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()))
  t.match(header, { alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
  t.match(payload, { sub: 'carol', aud: 'https://mcp.example.com/mcp', scope: 'mcp', client_id: 'gatehouse-cli' })
  t.equal(payload.exp - payload.iat, 120)

  const gateway = await startGateway(await loadConfigFile(config), { logger: createLogger('silent') })
  t.teardown(() => gateway.close())
  const res = await fetch(`${gateway.address}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' })
  t.equal(res.status, 502, 'the token is accepted (the upstream is deliberately absent)')

  const memoryOnly = join(dir, 'memory.yaml')
  await writeFile(memoryOnly, `publicUrl: https://mcp.example.com\nresources:\n  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:1/mcp" }\n`)
  const refused = await run(['token', '--config', memoryOnly])
  t.equal(refused.code, 2)
  t.match(refused.stderr, /lives in that process only/)
  t.match(minted.stderr, /memory store: no grant recorded/, 'says why this token cannot be revoked')
})

t.test('serve without a config: the embedded demo works end to end, SIGTERM stops it cleanly', async (t) => {
  const { child, port, stdout } = await startDemo(t)
  const token = /export TOKEN=(\S+)/.exec(stdout())?.[1]
  t.ok(token, 'the demo prints a ready-made development token')
  const mcpUrl = `http://localhost:${port}/mcp`
  t.match(stdout(), mcpUrl)
  const unauth = await fetch(mcpUrl, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
  t.equal(unauth.status, 401)
  const client = await connectSdk1Client(mcpUrl, { token: token! })
  const { tools } = await client.listTools()
  t.ok(tools.length > 0, `the demo server lists ${tools.length} tools through the gateway`)
  await client.close()
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'graceful exit on SIGTERM')
})

t.test('grants list and revoke work on the Redis store of a deployment', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = new RedisStore(redis.storeConfig(), { warn() {}, error() {} })
  t.teardown(() => store.close())
  const grants = new Grants(store, { codeTtlSeconds: 60, refreshTokenTtlSeconds: 3600, refreshReuseGraceSeconds: 10 })
  const mine = grants.newGrant({ sub: 'static:alice', clientId: 'cli', resourceId: 'a', scopes: ['mcp'] })
  const other = grants.newGrant({ sub: 'static:bob', clientId: 'cli', resourceId: 'a', scopes: ['mcp'] })
  const refresh = await grants.start(mine, true)
  await grants.start(other, false)

  const config = join(dir, 'redis.yaml')
  await writeFile(
    config,
    `publicUrl: https://mcp.example.com\nstore: { type: redis, redis: { url: "${redis.url}", keyPrefix: "${redis.keyPrefix}" } }\n` +
      `resources:\n  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:1/mcp" }\n`,
  )
  const listed = await run(['grants', 'list', '--config', config, '--sub', 'static:alice'])
  t.equal(listed.code, 0, listed.stderr)
  const lines = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { grantId: string; sub: string; createdAt: string })
  t.same(lines.map((g) => g.grantId), [mine.grantId], 'only the asked-for subject')
  t.equal(lines[0]!.createdAt, new Date(mine.createdAt * 1000).toISOString(), 'an ISO date, as clients list prints')

  const revoked = await run(['grants', 'revoke', '--config', config, mine.grantId])
  t.equal(revoked.code, 0)
  t.match(revoked.stdout, `revoked ${mine.grantId}`)
  t.match(await grants.refresh(refresh!, 'cli'), { kind: 'invalid' }, 'its refresh token stops at once')
  const all = await run(['grants', 'list', '--config', config])
  t.notMatch(all.stdout, mine.grantId)
  t.match(all.stdout, other.grantId)
  const unknown = await run(['grants', 'revoke', '--config', config, 'no-such-grant'])
  t.equal(unknown.code, 1)

  const memory = join(dir, 'memory-grants.yaml')
  await writeFile(memory, `publicUrl: https://mcp.example.com\nresources:\n  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:1/mcp" }\n`)
  const refused = await run(['grants', 'list', '--config', memory])
  t.equal(refused.code, 2)
  t.match(refused.stderr, /memory store lives inside its process/)
})

t.test('grants revoke --sub / --client-id revokes every grant of a person or client, audited as operator', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = new RedisStore(redis.storeConfig(), { warn() {}, error() {} })
  t.teardown(() => store.close())
  const grants = new Grants(store, { codeTtlSeconds: 60, refreshTokenTtlSeconds: 3600, refreshReuseGraceSeconds: 10 })
  const alice1 = grants.newGrant({ sub: 'static:alice', clientId: 'one', resourceId: 'a', scopes: ['mcp'] })
  const alice2 = grants.newGrant({ sub: 'static:alice', clientId: 'two', resourceId: 'a', scopes: ['mcp'] })
  const bob = grants.newGrant({ sub: 'static:bob', clientId: 'two', resourceId: 'a', scopes: ['mcp'] })
  for (const g of [alice1, alice2, bob]) await grants.start(g, false)
  const auditFile = join(dir, 'operator-audit.log')
  const config = join(dir, 'redis-revoke.yaml')
  await writeFile(
    config,
    `publicUrl: https://mcp.example.com\nstore: { type: redis, redis: { url: "${redis.url}", keyPrefix: "${redis.keyPrefix}" } }\n` +
      `audit: { sink: file, file: ${auditFile} }\nresources:\n  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:1/mcp" }\n`,
  )
  const bare = await run(['grants', 'revoke', '--config', config])
  t.equal(bare.code, 2, 'revoke without ids or a filter revokes nothing')
  t.match(bare.stderr, /needs GRANT_IDs, or --sub/)
  const res = await run(['grants', 'revoke', '--config', config, '--sub', 'static:alice'])
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /2 grant\(s\) revoked/)
  t.notOk(await grants.get(alice1.grantId))
  t.notOk(await grants.get(alice2.grantId))
  t.ok(await grants.get(bob.grantId), 'another person\'s grant stays')
  const byClient = await run(['grants', 'revoke', '--config', config, '--client-id', 'two'])
  t.match(byClient.stdout, `revoked ${bob.grantId}`)
  const events = (await readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.same(
    events.map((e) => [e.audit, e.grantId, e.by]).sort(),
    [alice1, alice2, bob].map((g) => ['grant.revoked', g.grantId, 'operator']).sort(),
    'one grant.revoked event per grant, by operator, in the configured sink',
  )
  t.same(
    events.map((e) => [e.grantId, e.sub, e.clientId, typeof e.actor]).sort(),
    [alice1, alice2, bob].map((g) => [g.grantId, g.sub, g.clientId, 'string']).sort(),
    'each names the person and client it belonged to, and who revoked it',
  )
})

t.test('clients list and delete work on the registered clients of a deployment (Redis), audited', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = new RedisStore(redis.storeConfig(), { warn() {}, error() {} })
  t.teardown(() => store.close())
  const registration = { enabled: true, maxClients: 100, unusedTtlSeconds: 3600, rateLimit: { perAddress: 10, windowSeconds: 60 }, grantTypes: ['authorization_code'], tokenEndpointAuthMethods: ['none', 'client_secret_basic'] }
  const registered = new RegisteredClients(store, registration as never)
  const metadata = { redirect_uris: ['http://127.0.0.1/cb'], grant_types: ['authorization_code'], response_types: ['code'], application_type: 'native' as const }
  const app = await registered.register({ ...metadata, client_name: 'Inspector', token_endpoint_auth_method: 'none' }, '203.0.113.1')
  const conf = await registered.register({ ...metadata, redirect_uris: ['https://app.example/cb'], application_type: 'web', token_endpoint_auth_method: 'client_secret_basic' }, '203.0.113.2')
  const config = join(dir, 'redis-clients.yaml')
  await writeFile(
    config,
    `publicUrl: https://mcp.example.com\nstore: { type: redis, redis: { url: "${redis.url}", keyPrefix: "${redis.keyPrefix}" } }\n` +
      `audit: { sink: stdout }\nregistration: { enabled: true }\nresources:\n  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:1/mcp" }\n`,
  )
  const listed = await run(['clients', 'list', '--config', config])
  t.equal(listed.code, 0, listed.stderr)
  const rows = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.same(rows.map((r) => r.clientId).sort(), [app.record.clientId, conf.record.clientId].sort())
  t.match(rows.find((r) => r.clientId === app.record.clientId), { name: 'Inspector', authMethod: 'none', applicationType: 'native', createdAt: /^\d{4}-/, lastUsedAt: /^\d{4}-/ })
  t.match(rows.find((r) => r.clientId === conf.record.clientId), { name: null, authMethod: 'client_secret_basic' })
  t.notMatch(listed.stdout, /secretHash|registrationTokenHash|dedupeKey/, 'no secret digests in the listing')

  const deleted = await run(['clients', 'delete', '--config', config, '--actor', 'alice@ops', app.record.clientId, 'dcr.AAAAAAAAAAAAAAAAAAAAAA'])
  t.equal(deleted.code, 1, 'an unknown id makes the command fail, after deleting the known one')
  t.match(deleted.stdout, `deleted ${app.record.clientId}`)
  t.match(deleted.stderr, /no registered client dcr\.AAAA/)
  const event = deleted.stderr.split('\n').find((l) => l.startsWith('{'))
  t.match(JSON.parse(event ?? '{}'), { audit: 'client.deleted', clientId: app.record.clientId, by: 'operator', actor: 'alice@ops' }, 'the event goes to stderr, not into the answer, and names the operator')
  t.notOk(await registered.get(app.record.clientId), 'gone from the store')
  t.ok(await registered.get(conf.record.clientId), 'the other stays')
})

t.test('keys list and keys rotate: a new key file and the three configuration steps that roll it in', async (t) => {
  const gen = await run(['keys', 'generate'])
  const oldKey = join(dir, 'old.pem')
  await writeFile(oldKey, gen.stdout)
  const config = join(dir, 'keys.yaml')
  const body = `publicUrl: https://mcp.example.com\nresources:\n  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:1/mcp" }\n`
  await writeFile(config, `keys: [{ file: ${oldKey}, kid: old-key }]\n${body}`)
  const listed = await run(['keys', 'list', '--config', config])
  t.equal(listed.code, 0, listed.stderr)
  t.equal(listed.stdout, `old-key\tES256\tactive (signs new tokens)\tfile ${oldKey}\n`)

  // Spaces, a comma and braces: the printed YAML must still read back as one path.
  const newKey = join(dir, 'new key, {1}.pem')
  const rotated = await run(['keys', 'rotate', '--config', config, '--out', newKey, '--kid', 'new-key'])
  t.equal(rotated.code, 0, rotated.stderr)
  t.equal((await stat(newKey)).mode & 0o777, 0o600, 'the private key file is readable by its owner only')
  t.match(await readFile(newKey, 'utf8'), /^-----BEGIN PRIVATE KEY-----/)
  t.notMatch(rotated.stdout, /BEGIN PRIVATE KEY/, 'the private key is not printed')
  t.match(rotated.stdout, /After step 2 has run everywhere for at least 310 s/, 'ttlSeconds + clockToleranceSeconds')
  const steps = rotated.stdout.split(/\n(?=\d\. )/).slice(1).map((step) => /keys:\n(?:  - .*\n?)+/.exec(step)![0])
  t.equal(steps.length, 3)
  const roles = []
  for (const [i, step] of steps.entries()) {
    const file = join(dir, `step${i + 1}.yaml`)
    await writeFile(file, `${step}\n${body}`)
    const res = await run(['keys', 'list', '--config', file])
    t.equal(res.code, 0, `step ${i + 1} is a valid configuration: ${res.stderr}`)
    roles.push(res.stdout.trim().split('\n').map((l) => l.split('\t').slice(0, 3).join(' ')))
  }
  t.same(roles, [
    ['old-key ES256 active (signs new tokens)', 'new-key ES256 verify only'],
    ['old-key ES256 verify only', 'new-key ES256 active (signs new tokens)'],
    ['new-key ES256 active (signs new tokens)'],
  ])
  const again = await run(['keys', 'rotate', '--config', config, '--out', newKey])
  t.equal(again.code, 2, 'an existing file is never overwritten')
  t.match(again.stderr, /must not exist yet/)
})
