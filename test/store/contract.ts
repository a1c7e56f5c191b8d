/**
 * The behaviour every Store must show (src/store/store.ts), run against each implementation.
 * TTLs are short (150 ms) and checked after 2× that, so timing noise cannot flip a result.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import type { Store } from '../../src/store/store.js'

const TTL = 150
const AFTER_TTL = 2 * TTL
const LONG = 60_000

export function storeContract(t: Test, make: () => Promise<Store>): void {
  const open = async (t: Test): Promise<Store> => {
    const store = await make()
    t.teardown(() => store.close())
    return store
  }
  /** A key no other test (or earlier run) uses. */
  const fresh = (name: string): string => `contract:${name}:${randomUUID()}`

  t.test('an absent key reads as undefined, and deleting it is no error', async (t) => {
    const store = await open(t)
    const key = fresh('absent')
    t.equal(await store.get(key), undefined)
    t.equal(await store.take(key), undefined)
    await t.resolves(store.delete(key))
    t.equal(await store.get(key), undefined)
  })

  t.test('set then get returns the value; set overwrites', async (t) => {
    const store = await open(t)
    const key = fresh('set')
    await store.set(key, 'first', LONG)
    t.equal(await store.get(key), 'first')
    t.equal(await store.get(key), 'first', 'get does not consume')
    await store.set(key, 'second', LONG)
    t.equal(await store.get(key), 'second')
  })

  t.test('the empty string is a value, not absence', async (t) => {
    const store = await open(t)
    const key = fresh('empty')
    await store.set(key, '', LONG)
    t.equal(await store.get(key), '')
    t.equal(await store.setIfAbsent(key, 'other', LONG), false)
    t.equal(await store.take(key), '')
    t.equal(await store.get(key), undefined)
  })

  t.test('a record expires after its TTL', async (t) => {
    const store = await open(t)
    const [plain, taken, fractional] = [fresh('ttl'), fresh('ttl-take'), fresh('ttl-fraction')]
    await store.set(plain, 'v', TTL)
    await store.set(taken, 'v', TTL)
    await store.set(fractional, 'v', TTL + 0.5)
    t.equal(await store.get(plain), 'v', 'present before the TTL')
    t.equal(await store.get(fractional), 'v', 'a fractional TTL is accepted')
    await sleep(AFTER_TTL)
    t.equal(await store.get(plain), undefined, 'gone after the TTL')
    t.equal(await store.get(fractional), undefined)
    t.equal(await store.take(taken), undefined, 'an expired record cannot be taken')
    t.equal(await store.setIfAbsent(plain, 'new', LONG), true, 'an expired key counts as absent')
    t.equal(await store.get(plain), 'new')
  })

  t.test('set replaces the TTL along with the value', async (t) => {
    const store = await open(t)
    const [extended, shortened] = [fresh('extend'), fresh('shorten')]
    await store.set(extended, 'old', TTL)
    await store.set(extended, 'new', LONG)
    await store.set(shortened, 'old', LONG)
    await store.set(shortened, 'new', TTL)
    await sleep(AFTER_TTL)
    t.equal(await store.get(extended), 'new', 'a longer TTL keeps the record')
    t.equal(await store.get(shortened), undefined, 'a shorter TTL ends it')
  })

  t.test('setIfAbsent writes once, keeps the first value and its TTL', async (t) => {
    const store = await open(t)
    const key = fresh('nx')
    t.equal(await store.setIfAbsent(key, 'first', TTL), true)
    t.equal(await store.setIfAbsent(key, 'second', LONG), false)
    t.equal(await store.get(key), 'first', 'the losing write changed nothing')
    await sleep(AFTER_TTL)
    t.equal(await store.get(key), undefined, 'the losing write did not extend the TTL')
    t.equal(await store.setIfAbsent(key, 'third', LONG), true, 'writable again once expired')
    t.equal(await store.get(key), 'third')
  })

  t.test('setIfAbsent by 20 concurrent callers: exactly one wins', async (t) => {
    const store = await open(t)
    const key = fresh('nx-race')
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.setIfAbsent(key, `writer-${i}`, LONG)),
    )
    t.equal(results.filter(Boolean).length, 1)
    t.equal(await store.get(key), `writer-${results.indexOf(true)}`, 'the stored value is the winner’s')
  })

  t.test('take returns the value once and deletes it (O21, MCPS-05)', async (t) => {
    const store = await open(t)
    const key = fresh('take')
    await store.set(key, 'code', LONG)
    t.equal(await store.take(key), 'code')
    t.equal(await store.take(key), undefined, 'a second take gets nothing')
    t.equal(await store.get(key), undefined, 'the record is gone')
    t.equal(await store.setIfAbsent(key, 'again', LONG), true, 'the key is free again')
  })

  t.test('take by 20 concurrent callers: exactly one gets the value', async (t) => {
    const store = await open(t)
    const key = fresh('take-race')
    await store.set(key, 'single-use', LONG)
    const results = await Promise.all(Array.from({ length: 20 }, () => store.take(key)))
    t.same(
      results.filter((r) => r !== undefined),
      ['single-use'],
    )
    t.equal(await store.get(key), undefined)
  })

  t.test('compareAndSet replaces only a value still equal to the expected one, with the new TTL (REF-03)', async (t) => {
    const store = await open(t)
    const key = fresh('cas')
    t.equal(await store.compareAndSet(key, 'live', 'rotated', LONG), false, 'an absent key never matches')
    t.equal(await store.get(key), undefined, 'and nothing was written')
    await store.set(key, 'live', TTL)
    t.equal(await store.compareAndSet(key, 'other', 'rotated', LONG), false, 'another value: not replaced')
    t.equal(await store.get(key), 'live')
    t.equal(await store.compareAndSet(key, 'live', 'rotated', LONG), true)
    t.equal(await store.get(key), 'rotated')
    await sleep(AFTER_TTL)
    t.equal(await store.get(key), 'rotated', 'the new TTL replaced the old one')
    t.equal(await store.compareAndSet(key, 'live', 'again', LONG), false, 'the old value no longer matches')
    await t.rejects(store.compareAndSet(key, 'rotated', 'x', 0), TypeError, 'a TTL of 0 is rejected')
    t.equal(await store.get(key), 'rotated', 'and wrote nothing')
  })

  t.test('compareAndSet by 20 concurrent callers with one expected value: exactly one wins', async (t) => {
    const store = await open(t)
    const key = fresh('cas-race')
    await store.set(key, 'live', LONG)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.compareAndSet(key, 'live', `rotated-${i}`, LONG)))
    t.equal(results.filter(Boolean).length, 1)
    t.equal(await store.get(key), `rotated-${results.indexOf(true)}`, 'the winner\'s value stands')
  })

  t.test('delete removes a record', async (t) => {
    const store = await open(t)
    const key = fresh('delete')
    await store.set(key, 'v', LONG)
    await store.delete(key)
    t.equal(await store.get(key), undefined)
    await t.resolves(store.delete(key), 'deleting again is no error')
  })

  t.test('a TTL that is not a positive finite number is rejected and writes nothing', async (t) => {
    const store = await open(t)
    for (const ttl of [0, -1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const key = fresh('bad-ttl')
      await t.rejects(store.set(key, 'v', ttl), TypeError, `set with ttl ${ttl}`)
      await t.rejects(store.setIfAbsent(key, 'v', ttl), TypeError, `setIfAbsent with ttl ${ttl}`)
      t.equal(await store.get(key), undefined, `nothing written with ttl ${ttl}`)
    }
  })

  t.test('unicode and large values survive byte for byte', async (t) => {
    const store = await open(t)
    const unicode = 'héllo wörld 🔑🧪 𝒢 — 鍵 ключ مفتاح e\u0301 \u0000 nul \r\n crlf \t {"json":"\\"quoted\\""}'
    const large = Array.from({ length: 64 * 1024 }, (_, i) => String.fromCharCode(32 + ((i * 7919) % 95))).join('')
    const largeUnicode = '€🔑'.repeat(64 * 1024 / 7) // ~64 KiB of 3- and 4-byte UTF-8
    const values = [['unicode', unicode], ['64 KiB ASCII', large], ['64 KiB multibyte', largeUnicode]] as const
    for (const [name, value] of values) {
      const key = fresh('value')
      await store.set(key, value, LONG)
      const read = await store.get(key)
      t.ok(read !== undefined && Buffer.from(read).equals(Buffer.from(value)), `${name}: get returns the same bytes`)
      const taken = await store.take(key)
      t.ok(taken !== undefined && Buffer.from(taken).equals(Buffer.from(value)), `${name}: take returns the same bytes`)
    }
  })

  t.test('keys with colons and unicode are distinct and exact', async (t) => {
    const store = await open(t)
    const base = fresh('keys')
    const keys = [
      `${base}:a`,
      `${base}:a:b`,
      `${base}:a:b:`,
      `${base}::`,
      `${base}:鍵:ключ:🔑`,
      `${base}:e\u0301`, // decomposed é: a different key from the composed one below
      `${base}:é`,
    ]
    for (const [i, key] of keys.entries()) await store.set(key, `value-${i}`, LONG)
    for (const [i, key] of keys.entries()) t.equal(await store.get(key), `value-${i}`, `key ${JSON.stringify(key)}`)
    t.equal(await store.get(base), undefined, 'a prefix of a key is another key')
  })

  t.test('ping resolves while the store is up', async (t) => {
    const store = await open(t)
    await t.resolves(store.ping())
  })

  t.test('increment counts from 1 and keeps the first TTL (a fixed window)', async (t) => {
    const store = await open(t)
    const key = fresh('incr')
    t.same(await store.increment(key, LONG), { count: 1, ttlMs: LONG })
    const second = await store.increment(key, 10)
    t.equal(second.count, 2)
    t.ok(second.ttlMs > LONG - 5_000 && second.ttlMs <= LONG, 'the TTL given later does not replace the first')
    t.equal(await store.get(key), '2', 'the counter reads as a decimal string')
  })

  t.test('an incremented counter expires with its window and starts again', async (t) => {
    const store = await open(t)
    const key = fresh('incr-expiry')
    await store.increment(key, TTL)
    await store.increment(key, TTL)
    await sleep(AFTER_TTL)
    t.equal(await store.get(key), undefined)
    t.equal((await store.increment(key, LONG)).count, 1)
  })

  t.test('increment by 20 concurrent callers: counts 1..20, each once', async (t) => {
    const store = await open(t)
    const key = fresh('incr-race')
    const counts = await Promise.all(Array.from({ length: 20 }, () => store.increment(key, LONG)))
    t.same(counts.map((c) => c.count).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1))
  })

  t.test('increment rejects a TTL that is not a positive finite number and writes nothing', async (t) => {
    const store = await open(t)
    const key = fresh('incr-ttl')
    await t.rejects(store.increment(key, 0), TypeError)
    t.equal(await store.get(key), undefined)
  })

  t.test('keys(prefix) lists exactly the live keys under the prefix, glob characters literal', async (t) => {
    const store = await open(t)
    const base = `list-${Math.random().toString(36).slice(2)}`
    await store.set(`${base}:a`, '1', LONG)
    await store.set(`${base}:b*`, '2', LONG)
    await store.set(`${base}:gone`, '3', 50)
    await store.set(`${base}x:c`, '4', LONG)
    await store.set(`${base}*:d`, '5', LONG)
    await new Promise((r) => setTimeout(r, 120))
    const listed: string[] = []
    for await (const key of store.keys(`${base}:`)) listed.push(key)
    t.same(listed.sort(), [`${base}:a`, `${base}:b*`], 'expired and neighbouring keys left out')
    const star: string[] = []
    for await (const key of store.keys(`${base}*`)) star.push(key)
    t.same(star, [`${base}*:d`], 'a * in the prefix matches only itself')
  })

  t.test('append and readLog: a log read in order, from the start or after an id, in pages (§11.4 REV-02)', async (t) => {
    const store = await open(t)
    const key = fresh('log')
    t.same(await store.readLog(key, '', 10), [], 'an absent log is empty')
    const ids: string[] = []
    for (const value of ['a', 'b', 'c', 'd']) ids.push(await store.append(key, value, LONG))
    t.equal(new Set(ids).size, 4, 'every entry has its own id')
    t.same((await store.readLog(key, '', 10)).map((e) => e.value), ['a', 'b', 'c', 'd'])
    t.same(await store.readLog(key, ids[1]!, 10), [{ id: ids[2], value: 'c' }, { id: ids[3], value: 'd' }], 'only what came after')
    t.same((await store.readLog(key, '', 3)).map((e) => e.value), ['a', 'b', 'c'], 'at most limit')
    t.same(await store.readLog(key, ids[3]!, 10), [], 'nothing after the newest')
    await store.append(key, 'e', LONG)
    t.same((await store.readLog(key, ids[3]!, 10)).map((e) => e.value), ['e'], 'a reader that kept its place sees only the new entry')
    t.same(await store.readLog(fresh('other-log'), '', 10), [], 'logs are per key')
  })

  t.test('append by 20 concurrent callers: every entry is there once, in id order', async (t) => {
    const store = await open(t)
    const key = fresh('log-race')
    const values = Array.from({ length: 20 }, (_, i) => `v${i}`)
    const ids = await Promise.all(values.map((v) => store.append(key, v, LONG)))
    const read = await store.readLog(key, '', 100)
    t.equal(read.length, 20)
    t.same(read.map((e) => e.value).sort(), [...values].sort())
    t.same(read.map((e) => e.id).sort(), [...ids].sort(), 'the ids append returned are the ids read')
    for (const [i, entry] of read.entries()) {
      t.same((await store.readLog(key, entry.id, 100)).length, 19 - i, `after entry ${i}, the rest`)
    }
  })

  t.test('a log expires keepMs after its last append; appending rejects a bad keepMs', async (t) => {
    const store = await open(t)
    const key = fresh('log-ttl')
    await store.append(key, 'old', TTL)
    await sleep(AFTER_TTL)
    t.same(await store.readLog(key, '', 10), [], 'gone with its keep time')
    await t.rejects(store.append(key, 'x', 0), TypeError)
    t.same(await store.readLog(key, '', 10), [], 'nothing written')
  })

  t.test('addMember, members, removeMember: a set read by one key (the account page index)', async (t) => {
    const store = await open(t)
    const key = fresh('set')
    t.same(await store.members(key), [], 'an absent set is empty')
    await store.addMember(key, 'a', 60_000)
    await store.addMember(key, 'b', 60_000)
    await store.addMember(key, 'a', 60_000)
    t.same((await store.members(key)).sort(), ['a', 'b'], 'each member once')
    await store.removeMember(key, 'a')
    await t.resolves(store.removeMember(key, 'never-added'))
    await t.resolves(store.removeMember(fresh('absent-set'), 'x'))
    t.same(await store.members(key), ['b'])
    t.same(await store.members(fresh('other-set')), [], 'sets are per key')
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.addMember(key, `m${i}`, 60_000)))
    t.equal((await store.members(key)).length, 21, '20 concurrent adds all land')
  })

  t.test('a set lives as long as its longest TTL: a shorter add never cuts it; a bad TTL writes nothing', async (t) => {
    const store = await open(t)
    const key = fresh('set-ttl')
    await store.addMember(key, 'long', 60_000)
    await store.addMember(key, 'short', TTL)
    await sleep(AFTER_TTL)
    t.same((await store.members(key)).sort(), ['long', 'short'], 'kept by the longer TTL')
    const brief = fresh('set-brief')
    await store.addMember(brief, 'x', TTL)
    await sleep(AFTER_TTL)
    t.same(await store.members(brief), [], 'gone with its TTL')
    await t.rejects(store.addMember(brief, 'y', 0), TypeError)
    t.same(await store.members(brief), [], 'nothing written')
  })
}
