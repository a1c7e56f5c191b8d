/**
 * O21-08: an otherwise valid replay of a code revokes what the code issued. The replay can be
 * decided while the first redemption is still storing its grant; the revocation must win even
 * then, on both stores.
 */
import t, { type Test } from 'tap'
import { Grants } from '../../src/oauth/grants/grants.js'
import { MemoryStore } from '../../src/store/memory.js'
import { RedisStore } from '../../src/store/redis.js'
import type { Store } from '../../src/store/store.js'
import { redisForTests } from '../helpers/redis.js'

const timings = { codeTtlSeconds: 60, refreshTokenTtlSeconds: 3600, refreshReuseGraceSeconds: 0 }

async function raceOn(t: Test, store: Store) {
  const grants = new Grants(store, timings)
  const grant = grants.newGrant({ sub: 'alice', clientId: 'c', resourceId: 'r', scopes: ['mcp'] })

  await t.test('O21-08: a revocation that lands before the grant is stored still ends it', async (t) => {
    await grants.revoke(grant.grantId, 'code_replay')
    await t.rejects(grants.start(grant, true), { name: 'invalid_grant', code: 'invalid_grant', description: 'the code was already used' })
    t.equal(await grants.get(grant.grantId), undefined, 'the grant is not left behind')
  })

  await t.test('O21-08: a redemption while another is between its take and its next step is a replay', async (t) => {
    // The first redemption stops right after its take, as a slow replica would; the second runs whole meanwhile.
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    let first = true
    const pausing = new Proxy(store, {
      get(target, prop) {
        if (prop === 'take') {
          return async (key: string) => {
            const value = await target.take(key)
            if (first) {
              first = false
              await gate
            }
            return value
          }
        }
        const value = Reflect.get(target, prop) as unknown
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const slow = new Grants(pausing, timings)
    const record = { grant: slow.newGrant({ sub: 'carol', clientId: 'c', resourceId: 'r', scopes: ['mcp'] }), redirectUri: 'http://127.0.0.1/cb', redirectUriGiven: true, codeChallenge: 'x', refreshAllowed: true }
    const code = await slow.issueCode(record)
    const winner = slow.redeemCode(code)
    while (first) await new Promise((resolve) => setImmediate(resolve))
    const replay = await slow.redeemCode(code)
    release()
    t.match(await winner, { replayed: false }, 'the first redemption gets the code')
    t.match(replay, { replayed: true, record: { grant: { grantId: record.grant.grantId } } }, 'the second is seen as a replay, not as an unknown code')
  })

  await t.test('a grant nobody revoked starts normally', async (t) => {
    const other = grants.newGrant({ sub: 'bob', clientId: 'c', resourceId: 'r', scopes: ['mcp'] })
    t.type(await grants.start(other, true), 'string', 'a refresh token')
    t.ok(await grants.get(other.grantId))
  })
}

t.test('memory store', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await raceOn(t, store)
})

t.test('redis store', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = new RedisStore(redis.storeConfig(), { warn() {}, error() {} })
  t.teardown(() => store.close())
  await raceOn(t, store)
})
