/**
 * The `gatehouse` command as a user runs it: a real child process per call.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { connectSdk1Client } from './fixtures/mcp-clients.js'
import { Grants } from '../src/oauth/grants.js'
import { RedisStore } from '../src/store/redis.js'
import { CLI, runCli } from './helpers/cli.js'
import { freePort, startTestGateway } from './helpers/gateway.js'
import { redisForTests } from './helpers/redis.js'

// Every case starts node processes that compile the CLI on the fly; on a loaded 2-core machine
// that is slow, so this file gets more than the default per-file time.
t.setTimeout(360_000)

const run = runCli

const dir = await mkdtemp(join(tmpdir(), 'gatehouse-cli-'))

t.test('check-config: valid files pass, invalid ones list every problem and exit 2', async (t) => {
  const ok = await run(['check-config', new URL('../config/dev.yaml', import.meta.url).pathname])
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
  t.notMatch(res.stderr, /at .*\.ts:\d+/, 'no stack trace for a user error')
})

t.test('usage errors exit 2 with the usage text', async (t) => {
  const res = await run(['frobnicate'])
  t.equal(res.code, 2)
  t.match(res.stderr, /usage:/)
  const missing = await run(['token'])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /needs --config/)
})

t.test('keys generate → a key file the gateway signs with; token mints for it', async (t) => {
  const gen = await run(['keys', 'generate'])
  t.equal(gen.code, 0)
  t.match(gen.stdout, /^-----BEGIN PRIVATE KEY-----/)
  const keyFile = join(dir, 'signing.pem')
  await writeFile(keyFile, gen.stdout)
  const port = await freePort()
  const config = join(dir, 'gw.yaml')
  await writeFile(
    config,
    `publicUrl: http://127.0.0.1:${port}\nkeys: [{ file: ${keyFile}, kid: k1 }]\nresources:\n  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:1/mcp", scopes: [{ name: mcp }], requiredScopes: [mcp] }\n`,
  )
  const minted = await run(['token', '--config', config, '--sub', 'carol', '--ttl', '120'])
  t.equal(minted.code, 0, minted.stderr)
  const jwt = minted.stdout.trim()
  const [header, payload] = jwt.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()))
  t.match(header, { alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
  t.match(payload, { sub: 'carol', aud: `http://127.0.0.1:${port}/mcp`, scope: 'mcp', client_id: 'gatehouse-cli' })
  t.equal(payload.exp - payload.iat, 120)

  const gw = await startTestGateway(t, {
    port,
    config: { keys: [{ file: keyFile, kid: 'k1' }] },
    resources: [{ id: 'a', upstream: 'http://127.0.0.1:1/mcp', scopes: [{ name: 'mcp' }] }],
  })
  const res = await fetch(gw.mcpUrl(), { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' })
  t.equal(res.status, 502, 'the token is accepted (the upstream is deliberately absent)')

  const memoryOnly = join(dir, 'memory.yaml')
  await writeFile(memoryOnly, `publicUrl: http://127.0.0.1:${port}\nresources:\n  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:1/mcp" }\n`)
  const refused = await run(['token', '--config', memoryOnly])
  t.equal(refused.code, 2)
  t.match(refused.stderr, /lives in that process only/)
})

t.test('serve without a config: the embedded demo works end to end, SIGTERM stops it cleanly', async (t) => {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import=tsx', CLI, 'serve'], { env: { ...process.env, PORT: String(port) } })
  t.teardown(() => child.kill('SIGKILL'))
  let stdout = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c))
  const deadline = Date.now() + 20_000
  while (!/export TOKEN=(\S+)/.test(stdout) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  const token = /export TOKEN=(\S+)/.exec(stdout)?.[1]
  t.ok(token, 'the demo prints a ready-made development token')
  const mcpUrl = `http://localhost:${port}/mcp`
  t.match(stdout, mcpUrl)
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
  const lines = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { grantId: string; sub: string })
  t.same(lines.map((g) => g.grantId), [mine.grantId], 'only the asked-for subject')

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
