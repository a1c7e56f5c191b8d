/**
 * What the gateway sees when Redis goes away: every store call fails fast with
 * StoreUnavailableError (→ 503, readiness fails), nothing crashes or hangs, and the store
 * recovers by itself when Redis is back. Runs a private redis-server it can kill.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { RedisStore, type StoreLog } from '../../src/store/redis.js'
import { StoreUnavailableError, type Store } from '../../src/store/store.js'
import { redisServerForTests, type TestRedisServer } from '../helpers/redis.js'
import { watchStrayErrors } from '../helpers/stray-errors.js'

const PASSWORD = 'outage-test-password'
const FAST = 3000

interface LogLine {
  level: 'warn' | 'error'
  obj: object
  msg: string
}

function recordingLog(lines: LogLine[]): StoreLog {
  return {
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  }
}

const operations: [string, (store: Store) => Promise<unknown>][] = [
  ['get', (s) => s.get('k')],
  ['set', (s) => s.set('k', 'v', 60_000)],
  ['setIfAbsent', (s) => s.setIfAbsent('k2', 'v', 60_000)],
  ['take', (s) => s.take('k')],
  ['delete', (s) => s.delete('k')],
  ['ping', (s) => s.ping()],
]

/** Every operation, issued concurrently, rejects with StoreUnavailableError in under FAST ms. */
async function assertUnavailable(t: Test, store: Store, what: string): Promise<void> {
  const outcomes = await Promise.all(
    operations.map(async ([name, run]) => {
      const started = performance.now()
      const error = await run(store).then(
        () => undefined,
        (err: unknown) => err,
      )
      return { name, error, ms: Math.round(performance.now() - started) }
    }),
  )
  for (const { name, error, ms } of outcomes) {
    t.ok(error instanceof StoreUnavailableError, `${what}: ${name} rejects with StoreUnavailableError`, { error })
    t.ok((error as Error | undefined)?.cause instanceof Error, `${what}: ${name} keeps the cause`)
    t.ok(ms < FAST, `${what}: ${name} failed in ${ms} ms`)
  }
}

async function recovers(t: Test, store: Store, withinMs: number): Promise<void> {
  const started = performance.now()
  for (;;) {
    try {
      await store.ping()
      break
    } catch (err) {
      if (performance.now() - started > withinMs) throw err
      await sleep(100)
    }
  }
  t.pass(`ping resolves ${Math.round(performance.now() - started)} ms after Redis is back`)
  await store.set('after', 'ok', 60_000)
  t.equal(await store.get('after'), 'ok', 'set and get work again')
}

const open = (t: Test, server: TestRedisServer, lines: LogLine[]): RedisStore => {
  const store = new RedisStore(
    { url: server.url, keyPrefix: 'outage:', connectTimeoutMs: 1000, commandTimeoutMs: 1000 },
    recordingLog(lines),
  )
  t.teardown(() => store.close())
  return store
}

t.test('Redis killed and restarted under a running store', async (t) => {
  const server = await redisServerForTests(t, { password: PASSWORD })
  if (!server) return
  const noStrayErrors = watchStrayErrors(t)
  const lines: LogLine[] = []
  const store = open(t, server, lines)

  await store.set('k', 'v', 60_000)
  t.equal(await store.get('k'), 'v', 'works while Redis is up')

  await server.kill()
  // Across several reconnect attempts (closed, reconnecting, connecting states).
  for (const round of [1, 2, 3]) {
    await assertUnavailable(t, store, `down, round ${round}`)
    await sleep(700)
  }

  await server.start()
  await recovers(t, store, 6000)

  t.ok(lines.some((l) => l.level === 'error'), 'the outage was logged')
  t.ok(lines.some((l) => l.level === 'warn' && /restored/.test(l.msg)), 'the recovery was logged')
  t.ok(lines.length < 10, `repeated connection errors are not logged each time (${lines.length} lines)`)
  t.notMatch(JSON.stringify(lines), PASSWORD, 'the password never reaches the log')
  t.notMatch(JSON.stringify(lines), server.url, 'nor does the URL')
  noStrayErrors()
})

t.test('Redis stops answering (frozen, connections open): commands time out, then recover', async (t) => {
  const server = await redisServerForTests(t)
  if (!server) return
  const noStrayErrors = watchStrayErrors(t)
  const store = open(t, server, [])
  await store.ping()

  server.pause()
  // Nothing refuses the connection here; only commandTimeoutMs (1 s) ends the wait.
  await assertUnavailable(t, store, 'frozen')
  server.resume()
  await recovers(t, store, 6000)
  noStrayErrors()
})

t.test('a store created while Redis is down fails fast, then serves once Redis starts', async (t) => {
  const server = await redisServerForTests(t)
  if (!server) return
  const noStrayErrors = watchStrayErrors(t)
  await server.kill()
  const store = open(t, server, [])

  // The first call waits for the first connection attempt; it is refused at once.
  await assertUnavailable(t, store, 'never connected')
  await server.start()
  await recovers(t, store, 6000)
  noStrayErrors()
})

t.test('close does not hang while Redis is down, and stops reconnecting', async (t) => {
  const server = await redisServerForTests(t)
  if (!server) return
  const noStrayErrors = watchStrayErrors(t)
  const lines: LogLine[] = []
  const store = open(t, server, lines)
  await store.ping()
  await server.kill()
  await sleep(300)

  const started = performance.now()
  await store.close()
  const ms = Math.round(performance.now() - started)
  t.ok(ms < FAST, `close took ${ms} ms`)
  await t.rejects(store.ping(), StoreUnavailableError, 'a closed store is unavailable')

  const logged = lines.length
  await server.start()
  await sleep(2500)
  t.equal(lines.length, logged, 'no reconnect attempts after close (nothing logged, no "restored")')
  noStrayErrors()
})
