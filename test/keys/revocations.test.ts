/**
 * The revocation list every replica keeps in memory (§11.4 REV-01, REV-02): a revocation is
 * known at once where it was made, and at every other reader of the same store after its next
 * read; a reader that starts later reads the whole log first; entries outlive the access tokens
 * they refuse and no longer.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { RevocationList, revocationKeepMs } from '../../src/keys/revocations.js'
import { MemoryStore } from '../../src/store/memory.js'
import { redisForTests } from '../helpers/redis.js'
import { RedisStore } from '../../src/store/redis.js'
import type { Store } from '../../src/store/store.js'

const quiet = { warn() {}, info() {} }

async function stores(t: Test): Promise<[string, () => Store][]> {
  const memory = new MemoryStore()
  t.teardown(() => memory.close())
  const all: [string, () => Store][] = [['memory', () => memory]]
  const redis = await redisForTests(t)
  if (redis) {
    const config = { ...redis.storeConfig(), keyPrefix: `${redis.keyPrefix}rev-${Math.random().toString(36).slice(2)}:` }
    const open = () => {
      const store = new RedisStore(config as never, { warn() {}, error() {} })
      t.teardown(() => store.close())
      return store
    }
    all.push(['redis', open])
  }
  return all
}

t.test('the keep time is the access-token lifetime plus the clock tolerance', async (t) => {
  t.equal(revocationKeepMs({ ttlSeconds: 300, clockToleranceSeconds: 30 }), 330_000)
})

t.test('a revocation is known at once here and, after one read, at every other replica', async (t) => {
  for (const [name, open] of await stores(t)) {
    const here = new RevocationList(open(), 60_000, quiet)
    const there = new RevocationList(open(), 60_000, quiet)
    await there.start()
    t.teardown(() => there.close())
    t.notOk(here.isRevoked('g1'), `${name}: not revoked yet`)
    await here.revoke('g1')
    t.ok(here.isRevoked('g1'), `${name}: known where it was made, without a read`)
    t.notOk(there.isRevoked('g2'), `${name}: another grant is not`)
    await there.poll()
    t.ok(there.isRevoked('g1'), `${name}: known at the other replica after its read`)
    t.notOk(there.isRevoked('g2'), `${name}: only that grant`)

    const late = new RevocationList(open(), 60_000, quiet)
    await late.start()
    t.teardown(() => late.close())
    t.ok(late.isRevoked('g1'), `${name}: a replica that starts later knows it before it serves`)
  }
})

t.test('a replica that read nothing for a while catches up with every revocation, page by page', async (t) => {
  for (const [name, open] of await stores(t)) {
    const writer = new RevocationList(open(), 60_000, quiet)
    const reader = new RevocationList(open(), 60_000, quiet)
    await reader.start()
    reader.close() // it stops reading, as a replica cut off from the store does
    const ids = Array.from({ length: 2500 }, (_, i) => `grant-${i}`)
    for (let i = 0; i < ids.length; i += 250) await Promise.all(ids.slice(i, i + 250).map((id) => writer.revoke(id)))
    t.notOk(reader.isRevoked('grant-0'), `${name}: not yet`)
    await reader.poll()
    t.ok(ids.every((id) => reader.isRevoked(id)), `${name}: all 2500 after one catch-up (more than one page)`)
  }
})

t.test('a revocation is forgotten once the tokens it refuses have expired', async (t) => {
  for (const [name, open] of await stores(t)) {
    const here = new RevocationList(open(), 200, quiet)
    const there = new RevocationList(open(), 200, quiet)
    await here.revoke('short')
    await there.poll()
    t.ok(there.isRevoked('short'), `${name}: revoked`)
    await sleep(400)
    t.notOk(here.isRevoked('short'), `${name}: forgotten where it was made`)
    t.notOk(there.isRevoked('short'), `${name}: forgotten elsewhere`)
    const fresh = new RevocationList(open(), 200, quiet)
    await fresh.poll()
    t.notOk(fresh.isRevoked('short'), `${name}: and no longer in the log`)
  }
})
