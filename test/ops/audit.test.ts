/**
 * The audit trail: the documented schema is exactly the AuditEvent union; the sinks write one
 * JSON line per event in that schema; a full OAuth + MCP flow leaves its events in the file sink
 * and never a secret (MCPA-62).
 */
import { mkdtemp, readFile, rename } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { AuditTrail, type AuditEvent, type AuditEventType } from '../../src/audit/events.js'
import { createAuditSink } from '../../src/audit/sink.js'
import { createLogger } from '../../src/log.js'
import { testPasswordHash } from '../helpers/passwords.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { startTestGateway } from '../helpers/gateway.js'
import { MemoryClientProvider } from '../helpers/sdk-provider.js'
import { repoPath } from '../helpers/repo.js'

t.setTimeout(120_000)

const DOC = repoPath('docs/audit-events.md')
const EVENTS_SOURCE = repoPath('src/audit/events.ts')

/** Every event type, checked against the union by the compiler (a missing or extra key fails tsc). */
const EVERY_TYPE = {
  'login.succeeded': true,
  'login.failed': true,
  'access.refused': true,
  'consent.granted': true,
  'consent.denied': true,
  'client.resolved': true,
  'client.refused': true,
  'client.changed': true,
  'client.registered': true,
  'client.registration_refused': true,
  'client.deleted': true,
  'code.issued': true,
  'code.replayed': true,
  'token.issued': true,
  'token.refused': true,
  'workload.refused': true,
  'refresh.reused': true,
  'grant.revoked': true,
  'key.rotation_started': true,
  'admin.signed_in': true,
  'admin.signed_out': true,
  'admin.viewed': true,
  'admin.refused': true,
  'admin.cimd_inspected': true,
  'token.minted': true,
  'bearer.refused': true,
  'mcp.decision': true,
  rate_limited: true,
  'config.reload': true,
  'upstream.exchanged': true,
  'upstream.exchange_failed': true,
} as const satisfies Record<AuditEventType, true>

const dir = await mkdtemp(join(tmpdir(), 'gatehouse-audit-'))

/** The event types of the union, read from its source (tsx does not typecheck, so this runs too). */
async function unionTypes(): Promise<string[]> {
  const source = await readFile(EVENTS_SOURCE, 'utf8')
  const union = source.slice(source.indexOf('export type AuditEvent ='), source.indexOf('export type AuditEventType'))
  return [...union.matchAll(/type: '([^']+)'/g)].map((m) => m[1]!).sort()
}

async function documentedTypes(): Promise<string[]> {
  const doc = await readFile(DOC, 'utf8')
  return [...doc.matchAll(/^## ([a-z_]+(?:\.[a-z_]+)?)$/gm)].map((m) => m[1]!).sort()
}

t.test('docs/audit-events.md documents exactly the members of the AuditEvent union', async (t) => {
  const union = await unionTypes()
  t.ok(union.length >= 20, `${union.length} event types in the union`)
  t.same(await documentedTypes(), union, 'one section per event type, no more, no less')
  t.same(Object.keys(EVERY_TYPE).sort(), union)
  const doc = await readFile(DOC, 'utf8')
  for (const type of union) {
    const section = doc.slice(doc.indexOf(`## ${type}\n`)).split(/\n## /)[0]!
    t.match(section, /\| field \| type \| meaning \|/, `${type} has a field table`)
  }
})

function collect(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'))
      done()
    },
  })
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) }
}

const sample: AuditEvent = { type: 'grant.revoked', grantId: 'g-1', by: 'operator' }

t.test('sinks: log marks a main-log line; stdout and file write the event alone, one JSON line each', async (t) => {
  const main = collect()
  const logSink = createAuditSink({ sink: 'log' }, createLogger('info', main.stream))
  new AuditTrail(logSink.write).record(sample, { requestId: 'req-1', address: '203.0.113.5' })
  t.match(main.lines(), [{ level: 30, msg: 'audit', audit: 'grant.revoked', grantId: 'g-1', by: 'operator', requestId: 'req-1', address: '203.0.113.5' }])
  const quiet = collect()
  const dropped = createAuditSink({ sink: 'log' }, createLogger('warn', quiet.stream))
  new AuditTrail(dropped.write).record(sample)
  t.same(quiet.lines(), [], 'the log sink follows log.level')

  const own = collect()
  const stdoutSink = createAuditSink({ sink: 'stdout' }, createLogger('silent'), { stdout: own.stream })
  new AuditTrail(stdoutSink.write).record(sample, { requestId: 'req-2' })
  const [line] = own.lines()
  t.same(Object.keys(line!), ['time', 'audit', 'grantId', 'by', 'requestId'], 'time, type, fields, context: nothing else')
  t.ok(!Number.isNaN(Date.parse(String(line!.time))), 'ISO time')

  const file = join(dir, 'rotate.log')
  const fileSink = createAuditSink({ sink: 'file', file }, createLogger('silent'))
  const trail = new AuditTrail(fileSink.write)
  trail.record(sample)
  await rename(file, `${file}.1`)
  fileSink.reopen()
  trail.record({ ...sample, grantId: 'g-2' })
  fileSink.close()
  t.match(await readFile(`${file}.1`, 'utf8'), /"grantId":"g-1"/, 'the rotated file keeps what was written before')
  const after = (await readFile(file, 'utf8')).trim().split('\n')
  t.equal(after.length, 1, 'after reopen (SIGHUP) the path is a new file')
  t.match(JSON.parse(after[0]!), { audit: 'grant.revoked', grantId: 'g-2' })
  // A path under a regular file cannot be created: the start fails with a clear error, not later.
  t.throws(() => createAuditSink({ sink: 'file', file: join(`${file}.1`, 'audit.log') }, createLogger('silent')), {
    name: 'AuditSinkError',
    message: /cannot open the audit file/,
  })
})

t.test('a full flow writes its events to the file sink, each with requestId and address, and no secret (MCPA-62)', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
  t.teardown(() => upstream.close())
  const file = join(dir, 'flow.log')
  const gw = await startTestGateway(t, {
    resources: [{ upstream: upstream.url, scopes: [{ name: 'mcp' }, { name: 'admin' }], policy: { rules: [{ id: 'no-admin', method: 'tools/call', name: 'admin_*', action: 'deny' }] } }],
    config: {
      audit: { sink: 'file', file },
      login: { static: { users: [{ username: 'alice', passwordHash: await testPasswordHash('alice-password') }] } },
      clients: [{ clientId: 'test-client', name: 'Test MCP client', redirectUris: ['http://127.0.0.1/callback'] }],
      registration: { enabled: true },
      authorizationServer: { refreshReuseGraceSeconds: 0 },
    },
  })
  const listened: AuditEvent[] = []
  gw.gateway.audit.onEvent((event) => listened.push(event))
  const mcpUrl = gw.mcpUrl()

  const anonymous = await fetch(mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(anonymous.status, 401)
  const foreign = await gw.mint({ audience: 'https://other.example/mcp' })
  t.equal((await fetch(mcpUrl, { method: 'POST', headers: { authorization: `Bearer ${foreign}` }, body: '{}' })).status, 401)

  // Authorization code flow through the SDK, a person signing in and consenting.
  const provider = new MemoryClientProvider({ info: { client_id: 'test-client' }, redirectUrl: 'http://127.0.0.1:43210/callback' })
  t.equal(await auth(provider, { serverUrl: mcpUrl }), 'REDIRECT')
  const browser = new FormBrowser(gw.origin)
  const login = await browser.get(provider.authorizationUrl!.href)
  const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
  const back = await browser.submit(consent, { decision: 'allow' })
  const code = new URL(back.location!).searchParams.get('code')!
  t.ok(code, 'a code came back')
  t.equal(await auth(provider, { serverUrl: mcpUrl, authorizationCode: code }), 'AUTHORIZED')
  const first = provider.savedTokens!

  const client = new Client({ name: 'audit-flow', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }))
  await client.listTools()
  await t.rejects(client.callTool({ name: 'admin_wipe', arguments: {} }), 'a denied call')
  await client.close()

  // Refresh (rotation), then the rotated token again: reuse revokes the grant.
  t.equal(await auth(provider, { serverUrl: mcpUrl }), 'AUTHORIZED')
  const second = provider.savedTokens!
  t.not(second.refresh_token, first.refresh_token)
  await new Promise((resolve) => setTimeout(resolve, 5))
  const reuse = await fetch(`${gw.origin}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.refresh_token!, client_id: 'test-client' }),
  })
  t.equal(reuse.status, 400)

  // A confidential client registers itself, revokes a token and deletes its registration.
  const registered = await fetch(`${gw.origin}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_post', client_name: 'Conf' }),
  })
  const reg = (await registered.json()) as { client_id: string; client_secret: string; registration_access_token: string; registration_client_uri: string }
  t.equal(registered.status, 201)
  await fetch(`${gw.origin}/oauth/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: second.refresh_token!, client_id: reg.client_id, client_secret: reg.client_secret }),
  })
  const refusedRegistration = await fetch(`${gw.origin}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: ['http://evil.example/cb'] }),
  })
  t.equal(refusedRegistration.status, 400)
  const deleted = await fetch(reg.registration_client_uri, { method: 'DELETE', headers: { authorization: `Bearer ${reg.registration_access_token}` } })
  t.equal(deleted.status, 204)
  await gw.close()

  const text = await readFile(file, 'utf8')
  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  const documented = new Set(await documentedTypes())
  for (const line of lines) {
    if (!documented.has(String(line.audit)) || Number.isNaN(Date.parse(String(line.time)))) t.fail(`undocumented or untimed line: ${JSON.stringify(line)}`)
    if (line.level !== undefined || line.msg !== undefined) t.fail('the file sink writes events only')
  }
  t.equal(listened.length, lines.length, 'listeners see every event the sink writes')
  t.notMatch(gw.logText(), /"audit":/, 'events go to the file, not to the main log')
  const one = (type: string, fields: Record<string, unknown> = {}, located = true) => {
    const found = lines.find((l) => l.audit === type && Object.entries(fields).every(([k, v]) => JSON.stringify(l[k]) === JSON.stringify(v)))
    t.ok(found, `${type} ${JSON.stringify(fields)}`)
    if (found && located) t.ok(typeof found.requestId === 'string' && found.address === '127.0.0.1', `${type} says where it happened`)
    return found
  }
  one('bearer.refused', { resource: 'r0', reason: 'missing' })
  one('bearer.refused', { resource: 'r0', reason: 'audience' })
  one('mcp.decision', { resource: 'r0', sub: 'static:alice', clientId: 'test-client', method: 'tools/list', decision: 'allow', rule: 'default' })
  one('mcp.decision', { method: 'tools/call', name: 'admin_wipe', decision: 'deny', reason: 'denied', rule: 'no-admin' })
  one('grant.revoked', { by: 'refresh_reuse' })
  one('refresh.reused', { clientId: 'test-client' })
  one('login.succeeded', { sub: 'static:alice', provider: 'static' })
  one('consent.granted', { sub: 'static:alice', clientId: 'test-client', resource: 'r0', remembered: false })
  one('code.issued', { sub: 'static:alice', clientId: 'test-client', resource: 'r0' })
  one('token.issued', { grantType: 'authorization_code', sub: 'static:alice', clientId: 'test-client', resource: 'r0' })
  one('token.issued', { grantType: 'refresh_token', clientId: 'test-client' })
  one('token.refused', { grantType: 'refresh_token', clientId: 'test-client', error: 'invalid_grant' })
  one('client.registered', { clientId: reg.client_id, authMethod: 'client_secret_post' })
  one('client.registration_refused', { reason: 'invalid_redirect_uri' })
  one('client.deleted', { clientId: reg.client_id, by: 'client' })
  t.notOk(lines.some((l) => 'decisionMs' in l), 'timings are metrics, not audit facts')

  for (const [what, secret] of [
    ['access token', first.access_token],
    ['refreshed access token', second.access_token],
    ['refresh token', first.refresh_token!],
    ['rotated refresh token', second.refresh_token!],
    ['authorization code', code],
    ['client secret', reg.client_secret],
    ['registration access token', reg.registration_access_token],
    ['password', 'alice-password'],
  ] as const) {
    t.notOk(text.includes(secret), `no ${what} in the audit file`)
  }
})
