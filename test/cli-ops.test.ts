/**
 * The operator's side of the `gatehouse` command (issue 21): help and version, operator commands
 * that need only the configuration they read, a store outage in plain words, audit events that
 * name the operator, and the guard rails of `gatehouse token` (a capped lifetime, a known subject,
 * an audit event, a grant that `grants revoke` takes back at every replica).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { COMMAND_WORDS } from '../src/commands/dispatch.js'
import { loadConfigFile } from '../src/config/load.js'
import { createLogger } from '../src/log.js'
import { testPasswordHash } from './helpers/passwords.js'
import { startGateway } from '../src/main.js'
import { runCli, runInProcess as run } from './helpers/cli.js'
import { reservePort } from './helpers/ports.js'
import { repoPath } from './helpers/repo.js'
import { redisForTests, redisServerForTests } from './helpers/redis.js'

const dir = await mkdtemp(join(tmpdir(), 'gatehouse-cli-ops-'))
const version = (JSON.parse(await readFile(repoPath('package.json'), 'utf8')) as { version: string }).version
const SECRET = 'S3CRET-value-that-must-never-be-printed-0123456789'

t.test('--help and -h on every command and subcommand: its usage on stdout, exit 0, nothing run', async (t) => {
  const cases = COMMAND_WORDS.flatMap((word) => [[word, '--help'], [word, '-h']])
  cases.push(['token', '--config', '/nonexistent.yaml', '--help'], ['grants', 'list', '--help'], ['grants', 'revoke', '-h'])
  cases.push(['keys', 'rotate', '--help'], ['clients', 'delete', '--help'], ['cimd', 'inspect', '--help'], ['workload', 'inspect', '-h'])
  for (const args of cases) {
    const res = await run(args)
    t.equal(res.code, 0, `${args.join(' ')}: exit 0`)
    t.match(res.stdout, new RegExp(`^usage:\\n  gatehouse ${args[0]} `), `${args.join(' ')}: the command's usage on stdout`)
    t.equal(res.stderr, '', `${args.join(' ')}: nothing on stderr`)
  }
  const after = await run(['hash-password', '--', '--help'], {}, { stdin: 'pw' })
  t.not(after.stdout.startsWith('usage:'), true, 'after --, --help is an argument')
  for (const word of ['--help', '-h', 'help']) {
    const top = await run([word])
    t.equal(top.code, 0)
    t.match(top.stdout, /^usage:\n  gatehouse serve/, `${word}: the whole usage on stdout`)
  }
})

t.test('--version and -V print the package version', async (t) => {
  for (const flag of ['--version', '-V']) {
    const res = await run([flag])
    t.equal(res.code, 0)
    t.equal(res.stdout, `${version}\n`)
  }
  // A real process: the version is read relative to the module, not to the working directory.
  const child = await runCli(['--version'])
  t.equal(child.code, 0, child.stderr)
  t.equal(child.stdout, `${version}\n`)
})

/** A deployment with secrets the operator commands never read, unset in their environment. */
async function deployment(name: string, store: string, extra = ''): Promise<string> {
  const file = join(dir, `${name}.yaml`)
  const hash = await testPasswordHash('alice-password')
  await writeFile(
    file,
    [
      'publicUrl: https://mcp.example.com',
      'listen: { host: 127.0.0.1, port: 0 }',
      store,
      extra,
      'clients:',
      '  - { clientId: robot, name: Robot, grantTypes: [client_credentials], tokenEndpointAuthMethod: client_secret_basic, secret: "${ROBOT_SECRET}" }',
      'login:',
      `  static: { users: [{ username: alice, passwordHash: "${hash}" }] }`,
      '  oidc:',
      '    - { id: corp, name: Corp, issuer: "https://sso.example.com", clientId: gh, clientSecret: "${CORP_SECRET}" }',
      'resources:',
      '  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:1/mcp", scopes: [{ name: mcp }], requiredScopes: [mcp], access: { allowAnyUser: true } }',
      '',
    ].join('\n'),
  )
  return file
}

t.test('operator commands need only the configuration they read; serve and check-config stay strict', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const file = await deployment('lenient', `store: { type: redis, redis: { url: "${redis.url}", keyPrefix: "${redis.keyPrefix}" } }`)
  for (const args of [['grants', 'list'], ['clients', 'list'], ['keys', 'list']]) {
    const res = await run([...args, '--config', file], { ROBOT_SECRET: undefined, CORP_SECRET: undefined })
    t.equal(res.code, 0, `${args.join(' ')} without the client secrets: ${res.stderr}`)
  }
  // URLs from the environment too (an IdP issuer, an upstream): checks that parse them must not trip.
  const urls = join(dir, 'urls.yaml')
  await writeFile(
    urls,
    [
      'publicUrl: https://mcp.example.com',
      `store: { type: redis, redis: { url: "${redis.url}", keyPrefix: "${redis.keyPrefix}" } }`,
      'login:',
      '  oidc: [{ id: corp, name: Corp, issuer: "${OIDC_ISSUER}", clientId: gh, clientSecret: "${CORP_SECRET}" }]',
      'resources:',
      '  - { id: a, name: A, path: /mcp, upstream: "${UPSTREAM}", access: { allowAnyUser: true } }',
      '',
    ].join('\n'),
  )
  const fromEnv = await run(['grants', 'list', '--config', urls], { OIDC_ISSUER: undefined, CORP_SECRET: undefined, UPSTREAM: undefined })
  t.equal(fromEnv.code, 0, `unset URLs outside what grants reads: ${fromEnv.stderr}`)
  const strict = await run(['check-config', file], { ROBOT_SECRET: undefined, CORP_SECRET: undefined })
  t.equal(strict.code, 2, 'check-config still wants every secret')
  t.match(strict.stderr, /clients\[0\]\.secret: environment variable ROBOT_SECRET is not set/)
  t.match(strict.stderr, /login\.oidc\[0\]\.clientSecret: environment variable CORP_SECRET is not set/)
  const served = await run(['serve', '--config', file], { ROBOT_SECRET: undefined, CORP_SECRET: undefined })
  t.equal(served.code, 2, 'so does serve')

  // What an operator command does read must still be there.
  const storeFromEnv = await deployment('store-env', 'store: { type: redis, redis: { url: "${REDIS_URL}" } }')
  const missing = await run(['grants', 'list', '--config', storeFromEnv], { REDIS_URL: undefined })
  t.equal(missing.code, 2)
  t.match(missing.stderr, /store\.redis\.url: environment variable REDIS_URL is not set/)
  t.notMatch(missing.stderr, /ROBOT_SECRET|CORP_SECRET/, 'only the problems of what it reads')
  // A problem elsewhere that is no unset variable is still reported: tolerance is for unset secrets only.
  const typo = await deployment('typo', `store: { type: redis, redis: { url: "${redis.url}" } }`, 'colour: red')
  const refused = await run(['grants', 'list', '--config', typo], { ROBOT_SECRET: SECRET, CORP_SECRET: SECRET })
  t.equal(refused.code, 2)
  t.match(refused.stderr, /unknown key "colour"/)
  t.notMatch(refused.stdout + refused.stderr, /S3CRET/)
})

t.test('a store that cannot be reached: one plain line, no password, exit 3', async (t) => {
  const port = await reservePort(t) // reserved and never listened on: connections are refused
  const file = await deployment('down', `store: { type: redis, redis: { url: "redis://:${SECRET}@127.0.0.1:${port}/0", connectTimeoutMs: 500 } }`)
  const env = { ROBOT_SECRET: SECRET, CORP_SECRET: SECRET }
  for (const args of [['grants', 'list'], ['grants', 'revoke', 'g-1'], ['clients', 'list'], ['cimd', 'purge'], ['token', '--sub', 'static:alice']]) {
    const res = await run([...args, '--config', file], env)
    const what = args.join(' ')
    t.equal(res.code, 3, `${what}: exit 3`)
    t.equal(res.stderr, `gatehouse: cannot reach the store (Redis at 127.0.0.1:${port}): connection refused\n`, `${what}: one plain line`)
    t.equal(res.stdout, '', `${what}: nothing on stdout (no reconnect log either)`)
    t.notMatch(res.stdout + res.stderr, /S3CRET|Stream isn't writeable|enableOfflineQueue/, `${what}: no password, no client internals`)
  }
})

t.test('a wrong password and a Redis that hangs, in plain words too', async (t) => {
  const server = await redisServerForTests(t, { password: 'the-right-password' })
  if (!server) return
  const wrong = await deployment('wrong-password', `store: { type: redis, redis: { url: "redis://:${SECRET}@127.0.0.1:${server.port}" } }`)
  const env = { ROBOT_SECRET: SECRET, CORP_SECRET: SECRET }
  const refused = await run(['grants', 'list', '--config', wrong], env)
  t.equal(refused.code, 3)
  t.equal(refused.stderr, `gatehouse: cannot reach the store (Redis at 127.0.0.1:${server.port}): authentication failed (check the password)\n`)
  const hung = await deployment('hung', `store: { type: redis, redis: { url: "${server.url}", commandTimeoutMs: 300, connectTimeoutMs: 300 } }`)
  server.pause()
  t.teardown(() => server.resume())
  const silent = await run(['clients', 'list', '--config', hung], env)
  t.equal(silent.code, 3)
  t.match(silent.stderr, /^gatehouse: cannot reach the store \(Redis at 127\.0\.0\.1:\d+\): it did not answer in time\n$/)
  t.notMatch(silent.stderr, /the-right-password|S3CRET/)
})

t.test('gatehouse token: guard rails, an audit event, and a grant that revocation takes back everywhere', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const auditFile = join(dir, 'token-audit.log')
  const file = await deployment(
    'token',
    `store: { type: redis, redis: { url: "${redis.url}", keyPrefix: "${redis.keyPrefix}" } }`,
    `audit: { sink: file, file: ${auditFile} }`,
  )
  const env = { ROBOT_SECRET: SECRET, CORP_SECRET: SECRET }
  const token = (...args: string[]) => run(['token', '--config', file, ...args], env)

  const noSub = await token()
  t.equal(noSub.code, 2)
  t.match(noSub.stderr, /token needs --sub/)
  const mallory = await token('--sub', 'static:mallory')
  t.equal(mallory.code, 2, 'a user who does not exist')
  t.match(mallory.stderr, /--sub static:mallory is no configured user or client \(static:alice, client:robot, corp:<subject>\); add --any-subject/)
  const tenYears = await token('--sub', 'static:alice', '--ttl', '315360000')
  t.equal(tenYears.code, 2, 'a ten-year token')
  t.match(tenYears.stderr, /--ttl 315360000 is longer than 3600 s; add --allow-long-ttl/)
  t.equal((await token('--sub', 'static:alice', '--ttl', '0')).code, 2)
  for (const sub of ['client:robot', 'corp:00u1ab2c']) t.equal((await token('--sub', sub)).code, 0, `${sub} is a subject the deployment can issue`)
  t.equal((await token('--sub', 'anyone', '--any-subject')).code, 0, '--any-subject mints for anyone')
  const long = await token('--sub', 'static:alice', '--ttl', '7200', '--allow-long-ttl')
  t.equal(long.code, 0, '--allow-long-ttl lifts the cap')
  t.match(long.stderr, /warning: --ttl 7200 outlives the 310 s a revocation is remembered/, 'and says what revocation can then do')

  const minted = await token('--sub', 'static:alice', '--actor', 'ci-job-42')
  t.equal(minted.code, 0, minted.stderr)
  const jwt = minted.stdout.trim()
  t.match(jwt, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'only the token on stdout')
  const grantId = /^grant (\S+) /.exec(minted.stderr)?.[1]
  t.ok(grantId, 'the grant id on stderr')
  const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  t.match(claims, { sub: 'static:alice', grant_id: grantId, client_id: 'gatehouse-cli' })
  t.equal((claims.exp as number) - (claims.iat as number), 300, 'the default lifetime: accessTokens.ttlSeconds')

  const events = (await readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  const event = events.find((e) => e.grantId === grantId)
  t.match(event, { audit: 'token.minted', actor: 'ci-job-42', sub: 'static:alice', clientId: 'gatehouse-cli', resource: 'a', scopes: ['mcp'], ttl: 300 })
  t.equal(events.filter((e) => e.audit === 'token.minted').length, 5, 'one event per minted token')
  t.notMatch(await readFile(auditFile, 'utf8'), jwt.split('.')[2]!, 'never the token')

  const listed = await run(['grants', 'list', '--config', file, '--sub', 'static:alice'], env)
  t.match(listed.stdout, grantId!, 'grants list shows it')

  // A replica of the deployment accepts the token, then refuses it within a second of the revocation.
  const gateway = await startGateway(await loadConfigFile(file, { ...process.env, ...env }), { logger: createLogger('silent') })
  t.teardown(() => gateway.close())
  const call = () =>
    fetch(`${gateway.address}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
    })
  t.equal((await call()).status, 502, 'accepted (the upstream is deliberately absent)')
  const revoked = await run(['grants', 'revoke', '--config', file, grantId!], env)
  t.equal(revoked.code, 0, revoked.stderr)
  const deadline = Date.now() + 1000
  let status = 0
  while (Date.now() < deadline && (status = (await call()).status) !== 401) await new Promise((r) => setTimeout(r, 50))
  t.equal(status, 401, 'refused within a second of the revocation')
  const revocation = (await readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.audit === 'grant.revoked')
  t.match(revocation, { grantId, by: 'operator', actor: userInfo().username, sub: 'static:alice', clientId: 'gatehouse-cli' }, 'the OS user, without --actor')
})
