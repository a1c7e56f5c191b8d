/**
 * The process log on standard output (src/log.ts): lines are written in batches, yet none is
 * lost when the process ends on its own, exits, or dies of an uncaught error; and the access
 * line keeps the members the README documents, with credential query parameters masked (MCPA-62).
 */
import { spawn } from 'node:child_process'
import t from 'tap'
import { Writable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { createLogger, jsonString, jsonValue, requestLogger, writeAccessLine } from '../../src/log.js'
import { moduleFile, NODE_LOADER } from '../helpers/repo.js'

const LOG = pathToFileURL(moduleFile('src/log')).href
const SINK = pathToFileURL(moduleFile('src/audit/sink')).href

/** Runs a script in a child process (compiled or through tsx, as this file runs) and returns its standard output. */
function runScript(body: string): Promise<{ code: number | null; stdout: string }> {
  const script =
    `import { createLogger } from ${JSON.stringify(LOG)}\nimport { createAuditSink } from ${JSON.stringify(SINK)}\n` +
    `const log = createLogger('info')\nconst audit = createAuditSink({ sink: 'log' }, log)\n${body}`
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_LOADER, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout }))
  })
}

const messages = (stdout: string) => stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg: string }).msg)


t.test('batched lines reach standard output however the process ends', async (t) => {
  const ended = await runScript(`for (let i = 0; i < 3; i++) log.info('line ' + i)`)
  t.same(messages(ended.stdout), ['line 0', 'line 1', 'line 2'], 'the process ends by itself')

  const exited = await runScript(`log.info('before exit'); process.exit(3)`)
  t.equal(exited.code, 3)
  t.same(messages(exited.stdout), ['before exit'], 'process.exit right after logging')

  const crashed = await runScript(`log.info('before the crash'); setTimeout(() => { throw new Error('boom') }, 1)`)
  t.not(crashed.code, 0)
  t.same(messages(crashed.stdout), ['before the crash'], 'an uncaught error')

  const many = await runScript(`for (let i = 0; i < 2000; i++) log.info({ i }, 'many')`)
  t.equal(messages(many.stdout).length, 2000, 'more than one batch, in order')
  t.same(many.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i), Array.from({ length: 2000 }, (_, i) => i))
})

t.test('an audit event on the log sink is written at once: a SIGKILL right after it cannot take it along', async (t) => {
  const decision = `{ type: 'mcp.decision', resource: 'files', sub: 's', clientId: 'c', method: 'tools/call', name: 'x', decision: 'deny', rule: 'r' }`
  const revoked = `{ type: 'grant.revoked', grantId: 'g-1', by: 'user', sub: 's', clientId: 'c' }`
  const killed = await runScript(
    `log.info('access'); audit.write(${decision}, {}); audit.write(${revoked}, {}); process.kill(process.pid, 'SIGKILL')`,
  )
  const lines = killed.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; audit?: string })
  t.same(
    lines.map((l) => l.audit ?? l.msg),
    ['access', 'mcp.decision', 'grant.revoked'],
    'the security event, and everything batched before it, in order',
  )
  // The trade-off (README, Operations): the per-call decision alone waits for its batch.
  const decisionOnly = await runScript(`audit.write(${decision}, {}); process.kill(process.pid, 'SIGKILL')`)
  t.equal(decisionOnly.stdout, '', 'a decision event alone is still in the batch when the process is killed')
})

t.test('a line is written within the batch time while the process goes on', async (t) => {
  // The marker is written straight to fd 1, 300 ms later: the line must already be out by then.
  const run = await runScript(`import { writeSync } from 'node:fs'\nlog.info('first'); setTimeout(() => writeSync(1, 'MARK\\n'), 300)`)
  t.match(run.stdout, /"msg":"first"\}\nMARK\n$/)
})

t.test('the access line: pino\'s shape, documented members, no secret in the URL', async (t) => {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      done()
    },
  })
  const logger = createLogger('info', sink)
  writeAccessLine(logger, { reqId: 'r-1', method: 'POST', url: '/mcp?access_token=secret&x="1"', remoteAddress: '203.0.113.7', statusCode: 200, responseTime: 1.25 })
  writeAccessLine(logger, { reqId: 'r-2', method: 'GET', url: '/healthz', remoteAddress: undefined, statusCode: 503, responseTime: 0.5 })
  await new Promise((r) => setImmediate(r))
  t.equal(lines.length, 2)
  const first = JSON.parse(lines[0]!) as Record<string, unknown>
  t.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.ok(Math.abs(Date.parse(first.time as string) - Date.now()) < 1000, 'the time of writing, to the millisecond in ISO 8601')
  t.same(first, {
    level: 30,
    time: first.time,
    reqId: 'r-1',
    req: { method: 'POST', url: '/mcp?access_token=[redacted]&x="1"', remoteAddress: '203.0.113.7' },
    res: { statusCode: 200 },
    responseTime: 1.25,
    msg: 'request completed',
  })
  t.notOk(lines[0]!.includes('secret'), 'MCPA-62')
  t.same((JSON.parse(lines[1]!) as { req: unknown }).req, { method: 'GET', url: '/healthz' })

  const quiet = createLogger('warn', sink)
  writeAccessLine(quiet, { reqId: 'r-3', method: 'GET', url: '/', remoteAddress: undefined, statusCode: 200, responseTime: 1 })
  await new Promise((r) => setImmediate(r))
  t.equal(lines.length, 2, 'no access line above level info')
})

t.test('a request\'s logger writes with its request id and the redaction of the process logger, and only what its level lets through', async (t) => {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>)
      done()
    },
  })
  const parent = createLogger('info', sink)
  const log = requestLogger(parent, { reqId: 'r-9' }, {})
  t.equal(log.level, 'info')
  t.notOk(log.isLevelEnabled('debug'))
  log.debug({ detail: 'x' }, 'below the level')
  log.info({ headers: { authorization: 'Bearer secret-token' } }, 'with a credential')
  log.warn('plain %s', 'formatted')
  log.child({ step: 'login' }).error('from a child')
  log.level = 'debug'
  log.debug('now enabled')
  t.equal(parent.level, 'info', 'raising one request\'s level leaves the process logger alone')
  requestLogger(parent, { reqId: 'r-10' }, { level: 'error' }).warn('below a route\'s own level')
  await new Promise((r) => setImmediate(r))
  t.same(
    lines.map((l) => [l.reqId, l.msg]),
    [
      ['r-9', 'with a credential'],
      ['r-9', 'plain formatted'],
      ['r-9', 'from a child'],
      ['r-9', 'now enabled'],
    ],
  )
  t.same(lines[0]!.headers, { authorization: '[redacted]' }, 'MCPA-62: the process logger\'s redaction applies')
  t.equal(lines[2]!.step, 'login')
})

t.test('hand-written JSON is what JSON.stringify writes, for every string (escapes, control characters, lone surrogates)', async (t) => {
  const strings = ['', 'plain', 'a"b', 'a\\b', '\u0000', '\u001f', '\u007f', '\u2028', 'é', '\ud800', 'x\ny', '</script>', '\t', ' ~!#[]{}']
  for (let code = 0; code < 0x180; code++) strings.push(`a${String.fromCharCode(code)}z`)
  const differing = strings.filter((s) => jsonString(s) !== JSON.stringify(s))
  t.same(differing, [])
  for (const value of [0, -1.5, Number.NaN, true, null, ['a"', 1], { nested: 'x\ny' }]) t.equal(jsonValue(value), JSON.stringify(value))
})
