/**
 * Live configuration reload (issue 17), in process, with a real SDK upstream and client: a
 * stream open across a reload keeps flowing and ends normally while new calls see the new
 * policy; an invalid file changes nothing and the log names every problem; a restart-only
 * setting is named and kept; a file written in place and a ConfigMap-style `..data` symlink swap
 * are both noticed. (SIGHUP to a real process: test/cli-reload.test.ts.)
 */
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import type { AuditEvent } from '../../src/audit/events.js'
import { loadConfigFile } from '../../src/config/load.js'
import { mintAccessToken } from '../../src/keys/tokens.js'
import { createLogger } from '../../src/log.js'
import { startGateway, type StartOptions } from '../../src/main.js'
import { connectSdk1Client } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { reservePort } from '../helpers/ports.js'
import { redisForTests } from '../helpers/redis.js'

type Rule = Record<string, unknown>

interface FileGatewayOptions {
  watch?: StartOptions['watchConfig']
  layout?: 'plain' | 'configmap'
  store?: Record<string, unknown>
}

async function fileGateway(t: Test, rules: Rule[], options: FileGatewayOptions = {}) {
  const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
  t.teardown(() => upstream.close())
  const port = await reservePort(t)
  const origin = `http://127.0.0.1:${port}`
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-reload-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const document = (policyRules: Rule[], more: Record<string, unknown> = {}) =>
    JSON.stringify({
      publicUrl: origin,
      listen: { host: '127.0.0.1', port },
      shutdown: { graceSeconds: 2 },
      ...(options.store && { store: options.store }),
      ...more,
      resources: [
        { id: 'files', name: 'Files', path: '/mcp', upstream: upstream.url, scopes: [{ name: 'mcp' }], requiredScopes: ['mcp'], policy: { rules: policyRules } },
      ],
    })
  const file = join(dir, 'gatehouse.yaml')
  let version = 0
  /** Writes the file as an editor would (in place), or as the kubelet does (a new directory, then `..data` swapped). */
  const write = async (text: string) => {
    if (options.layout !== 'configmap') return writeFile(file, text)
    const target = `..2026_12_07_${version++}`
    await mkdir(join(dir, target))
    await writeFile(join(dir, target, 'gatehouse.yaml'), text)
    await symlink(target, join(dir, '..data_tmp'))
    await rename(join(dir, '..data_tmp'), join(dir, '..data'))
  }
  await write(document(rules))
  if (options.layout === 'configmap') await symlink('..data/gatehouse.yaml', file)

  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      done()
    },
  })
  const config = await loadConfigFile(file, process.env, { checkFiles: true })
  const gateway = await startGateway(config, { logger: createLogger('info', sink), configFile: file, watchConfig: options.watch ?? false })
  t.teardown(() => gateway.close())
  const events: AuditEvent[] = []
  gateway.audit.onEvent((e) => events.push(e))
  const token = await mintAccessToken(gateway.keystore!, config.issuer, { sub: 'alice', clientId: 'c', audience: `${origin}/mcp`, scopes: ['mcp'] }, 300)
  const reloads = () => events.filter((e) => e.type === 'config.reload')
  return {
    upstream,
    origin,
    gateway,
    token,
    file,
    write,
    document,
    reloads,
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    connect: () => connectSdk1Client(`${origin}/mcp`, { token }),
    waitForReload: async (count: number) => {
      const deadline = Date.now() + 10_000
      while (reloads().length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
      return reloads()[count - 1]
    },
  }
}

const denyEcho: Rule = { id: 'no-echo', method: 'tools/call', name: 'echo', action: 'deny' }

for (const storeType of ['memory', 'redis'] as const) {
  t.test(`${storeType} store: a stream open across a reload keeps flowing and ends normally; new calls see the new policy`, async (t) => {
    const redis = storeType === 'redis' ? await redisForTests(t) : undefined
    if (storeType === 'redis' && !redis) return
    // The session the client opened before the reload is bound in the store, which every generation shares.
    const gw = await fileGateway(t, [], redis ? { store: { type: 'redis', redis: redis.storeConfig() } } : {})
    const client = await gw.connect()
    t.teardown(() => client.close().catch(() => undefined))
    t.match(await client.callTool({ name: 'echo', arguments: { text: 'before' } }), { content: [{ text: 'before' }] }, 'echo allowed before')

    const progress: number[] = []
    let reloadedAt = Infinity
    const running = client.callTool({ name: 'countdown', arguments: { count: 6, intervalMs: 150 } }, undefined, {
      onprogress: (p) => void progress.push(p.progress),
    })
    while (progress.length < 2) await new Promise((r) => setTimeout(r, 10))
    // The new policy also denies the countdown that is running: the running call must not care.
    await gw.write(gw.document([denyEcho, { id: 'no-countdown', method: 'tools/call', name: 'countdown', action: 'deny' }]))
    t.match(await gw.gateway.reload(), { result: 'applied', restartRequired: [] })
    reloadedAt = progress.length
    t.match(await running, { content: [{ text: 'countdown of 6 done' }] }, 'the running call ended normally, with its result')
    t.equal(progress.length, 6, 'every progress notification of the stream arrived')
    t.ok(reloadedAt < 6, `the stream was open across the reload (${reloadedAt} of 6 notifications before it)`)

    await t.rejects(client.callTool({ name: 'echo', arguments: { text: 'after' } }), 'echo denied after the reload, in the same session')
    await t.rejects(client.callTool({ name: 'countdown', arguments: { count: 1, intervalMs: 10 } }), 'countdown denied for a new call')
    t.match(await client.callTool({ name: 'whoami', arguments: {} }), { content: [{}] }, 'what the new policy allows still passes')
    t.match(gw.reloads(), [{ type: 'config.reload', result: 'applied', trigger: 'signal' }], 'audited: applied')
    t.ok(gw.logs().some((l) => l.msg === 'configuration reloaded; requests and streams already running keep the previous one'), 'logged')
  })
}

t.test('an invalid file changes nothing, and the log names every problem', async (t) => {
  const gw = await fileGateway(t, [])
  const invalid = JSON.parse(gw.document([{ ...denyEcho, action: 'block' }])) as Record<string, unknown>
  await gw.write(JSON.stringify({ ...invalid, lgoin: {}, rateLimits: { enabled: 'sometimes' } }))
  const outcome = await gw.gateway.reload()
  t.equal(outcome.result, 'refused')
  const problems = outcome.result === 'refused' ? outcome.problems.map((p) => p.path) : []
  t.same([...new Set(problems)].sort(), ['', 'rateLimits.enabled', 'resources[0].policy.rules[0].action'].sort(), 'every problem, each with its path')
  const error = gw.logs().find((l) => l.level === 50 && /configuration reload refused/.test(String(l.msg)))
  t.ok(error, 'an error line')
  for (const text of ['lgoin', 'rateLimits.enabled', 'resources[0].policy.rules[0].action']) t.match(String(error?.msg), text, `it names ${text}`)
  t.match(gw.reloads(), [{ type: 'config.reload', result: 'refused', trigger: 'signal', problems: problems.length }], 'audited: refused, with the count')

  const client = await gw.connect()
  t.teardown(() => client.close().catch(() => undefined))
  t.match(await client.callTool({ name: 'echo', arguments: { text: 'still' } }), { content: [{ text: 'still' }] }, 'the running policy still allows echo')

  // A file the loader cannot even parse is refused the same way.
  await gw.write('resources: [unclosed')
  t.match(await gw.gateway.reload(), { result: 'refused' })
  t.match(await client.callTool({ name: 'echo', arguments: { text: 'still' } }), { content: [{ text: 'still' }] }, 'still unchanged')
})

t.test('restart-only settings are named in the log and keep their running values; the rest applies', async (t) => {
  const gw = await fileGateway(t, [])
  const otherPort = await reservePort(t)
  const moved = gw.document([denyEcho], {
    listen: { host: '127.0.0.1', port: otherPort },
    // Plain http too, but on another host: the warning about it would name localhost, and must not
    // appear, since the running publicUrl is kept.
    publicUrl: `http://localhost:${otherPort}`,
    registration: { enabled: true },
  })
  const warnedBefore = gw.logs().filter((l) => /^DEVELOPMENT SETTING/.test(String(l.msg))).length
  await gw.write(moved)
  const outcome = await gw.gateway.reload()
  t.match(outcome, { result: 'applied' })
  t.same(outcome.result === 'applied' && outcome.restartRequired, ['publicUrl', 'issuer', 'listen'], 'named: publicUrl, the issuer derived from it, listen')
  const warning = gw.logs().find((l) => l.level === 40 && /only after a restart/.test(String(l.msg)))
  t.match(warning, { settings: ['publicUrl', 'issuer', 'listen'], msg: /publicUrl, issuer, listen changed and apply only after a restart/ })
  t.match(gw.reloads(), [{ result: 'applied', restartRequired: ['publicUrl', 'issuer', 'listen'] }], 'the audit event names them too')
  const warned = gw.logs().filter((l) => /^DEVELOPMENT SETTING/.test(String(l.msg))).slice(warnedBefore).map((l) => l.msg)
  t.same(warned, ['DEVELOPMENT SETTING: dynamic client registration is open: anyone can register a client (rate-limited and capped)'],
    'the development setting the reload brings is logged; none of the publicUrl not applied')

  await t.rejects(fetch(`http://127.0.0.1:${otherPort}/healthz`), 'the new port is not listened on')
  const metadata = (await (await fetch(`${gw.origin}/.well-known/oauth-protected-resource/mcp`)).json()) as { resource: string }
  t.equal(metadata.resource, `${gw.origin}/mcp`, 'the resource keeps its running URI (the audience of the tokens in use)')
  const client = await gw.connect()
  t.teardown(() => client.close().catch(() => undefined))
  await t.rejects(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'the policy change applied, with the running token audience')
})

t.test('a file valid only with its own restart-only values is refused: the running ones are what would run', async (t) => {
  const gw = await fileGateway(t, [])
  const otherPort = await reservePort(t)
  const runningPort = new URL(gw.origin).port
  const document = JSON.parse(gw.document([], { listen: { host: '127.0.0.1', port: otherPort } })) as { resources: Record<string, unknown>[] }
  document.resources.push({ id: 'loop', name: 'Loop', path: '/loop/mcp', upstream: `http://localhost:${runningPort}/mcp`, scopes: [{ name: 'mcp' }] })
  await gw.write(JSON.stringify(document))
  const outcome = await gw.gateway.reload()
  t.match(outcome, { result: 'refused', problems: [{ path: 'resources[1].upstream', message: /points at the gateway itself, with the running listen/ }] })
  t.equal((await fetch(`${gw.origin}/.well-known/oauth-protected-resource/loop/mcp`)).status, 404, 'nothing changed')
})

t.test('a file written in place is noticed, and reloaded once per content', async (t) => {
  const gw = await fileGateway(t, [], { watch: { pollMs: 100, settleMs: 50 } })
  await gw.write(gw.document([denyEcho]))
  // Written in place, the file may be read half-written once on a loaded machine: that read is
  // refused (changing nothing), and the complete file is applied next.
  const deadline = Date.now() + 10_000
  while (!gw.reloads().some((e) => e.type === 'config.reload' && e.result === 'applied') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25))
  }
  t.match(gw.reloads().at(-1), { type: 'config.reload', result: 'applied', trigger: 'file' })
  const client = await gw.connect()
  t.teardown(() => client.close().catch(() => undefined))
  await t.rejects(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'the new policy applies')
  // The same content again, as a new file (another inode, so the poll sees it too).
  const count = gw.reloads().length
  await writeFile(`${gw.file}.tmp`, gw.document([denyEcho]))
  await rename(`${gw.file}.tmp`, gw.file)
  await new Promise((r) => setTimeout(r, 500))
  t.equal(gw.reloads().length, count, 'a file with the same content reloads nothing')
})

t.test('a ConfigMap update (the ..data symlink swapped) is noticed', async (t) => {
  const gw = await fileGateway(t, [], { watch: { pollMs: 60_000, settleMs: 50 }, layout: 'configmap' })
  const client = await gw.connect()
  t.teardown(() => client.close().catch(() => undefined))
  t.match(await client.callTool({ name: 'echo', arguments: { text: 'x' } }), { content: [{ text: 'x' }] })
  // The poll is a minute: only the directory watch can see this swap in time.
  await gw.write(gw.document([denyEcho]))
  t.match(await gw.waitForReload(1), { type: 'config.reload', result: 'applied', trigger: 'file' })
  await t.rejects(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'the new policy applies')
  await gw.write(gw.document([denyEcho, { method: 'tools/call', name: 'whoami', action: 'deny' }, { name: 'x', bogus: true }]))
  t.match(await gw.waitForReload(2), { type: 'config.reload', result: 'refused', trigger: 'file' }, 'an invalid update is refused')
  t.match(await client.callTool({ name: 'whoami', arguments: {} }), { content: [{}] }, 'and changes nothing')
})

t.test('SIGHUP reloads with the audit trail in the log (it ended the process before, issue 17)', async (t) => {
  const gw = await fileGateway(t, [])
  await gw.write(gw.document([denyEcho]))
  process.kill(process.pid, 'SIGHUP')
  t.match(await gw.waitForReload(1), { type: 'config.reload', result: 'applied', trigger: 'signal' })
  const client = await gw.connect()
  t.teardown(() => client.close().catch(() => undefined))
  await t.rejects(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'the new policy applies')

  // Shutdown ends the notification streams of the generation built by the reload too.
  await gw.upstream.waitForGetStreams(1)
  const started = Date.now()
  await gw.gateway.close()
  t.ok(Date.now() - started < 1500, `closed in ${Date.now() - started} ms, not at the 2 s grace deadline`)
  const deadline = Date.now() + 2000
  while (gw.upstream.openGetStreams() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.equal(gw.upstream.openGetStreams(), 0, 'the standalone GET stream was ended')
})
