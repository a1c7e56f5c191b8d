/**
 * Refresh that survives retries and races, in one process (memory store): REF-01..03. The same
 * across replicas on Redis is test/topology/refresh-replicas.test.ts; SEP-2207 (REF-04) is
 * refresh-sep2207.test.ts.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { hash } from '../../src/login/sessions.js'
import { Grants } from '../../src/oauth/grants/grants.js'
import { RefreshChain } from '../../src/oauth/grants/refresh-chain.js'
import { MemoryStore } from '../../src/store/memory.js'
import { storeKeys } from '../../src/store/keys.js'
import type { Store } from '../../src/store/store.js'
import { redisForTests } from '../helpers/redis.js'
import { RedisStore } from '../../src/store/redis.js'
import { BASIC, OTHER_PUBLIC, PUBLIC, REDIRECT, USER, claims, startHarness, type Client } from '../helpers/token-harness.js'

const h = await startHarness(t)

async function expectRefused(t: Test, client: Client, refreshToken: string, what: string, error = 'invalid_grant') {
  const res = await h.refresh(t, client, refreshToken)
  t.equal(res.status, 400, `${what}: refused`)
  t.equal(res.body.error, error, `${what}: ${error}`)
  t.notOk(res.body.access_token, `${what}: no token`)
}

/** The grant id of the last token issued, from the audit trail. */
function lastGrantId(harness = h): string {
  const issued = harness.gw.logs.filter((l) => l.audit === 'token.issued')
  return issued.at(-1)!.grantId as string
}

t.test('REF-01: a lost answer: the retry of the same token gets the answer again, and its refresh token works', async (t) => {
  const first = await h.tokens(t, PUBLIC, { resource: h.resource(1), scope: 'mcp admin' })
  const lost = await h.refresh(t, PUBLIC, first.refresh_token!)
  t.equal(lost.status, 200, 'the store committed the rotation; the client never reads this answer')
  const retry = await h.refresh(t, PUBLIC, first.refresh_token!)
  t.equal(retry.status, 200, 'the retry inside the grace window is answered')
  t.equal(retry.body.refresh_token, lost.body.refresh_token, 'with the successor the lost answer carried (no new token minted)')
  t.not(retry.body.access_token, lost.body.access_token, 'and a fresh access token')
  t.match(claims(retry.body.access_token), { sub: USER.sub, client_id: PUBLIC.id, aud: h.resource(1), scope: 'mcp admin' }, 'REF-02: same subject, client, resource, scopes')
  const next = await h.refresh(t, PUBLIC, retry.body.refresh_token)
  t.equal(next.status, 200, 'the retried answer\'s refresh token works')
})

t.test('REF-01 REF-03: a retry walks to the chain\'s one live token; retries never mint new ones', async (t) => {
  const t0 = (await h.tokens(t, PUBLIC)).refresh_token!
  const t1 = (await h.refresh(t, PUBLIC, t0)).body.refresh_token as string
  const t2 = (await h.refresh(t, PUBLIC, t1)).body.refresh_token as string
  for (let i = 0; i < 5; i++) {
    for (const [name, token] of [['t0', t0], ['t1', t1]] as const) {
      const res = await h.refresh(t, PUBLIC, token)
      t.equal(res.status, 200, `${name} retry ${i}`)
      t.equal(res.body.refresh_token, t2, `${name} retry ${i}: the current token, t2`)
    }
  }
  for (const [name, token, active] of [['t0', t0, false], ['t1', t1, false], ['t2', t2, true]] as const) {
    t.equal((await h.introspect(t, BASIC, token)).body.active, active, `${name} ${active ? 'is' : 'is not'} the live token`)
  }
  t.equal((await h.refresh(t, PUBLIC, t2)).status, 200, 'the grant lives on')
})

t.test('REF-02: a grace answer narrows like any refresh, never widens, and keeps its resource', async (t) => {
  const first = await h.tokens(t, PUBLIC, { resource: h.resource(1), scope: 'mcp admin' })
  const rotated = await h.refresh(t, PUBLIC, first.refresh_token!)
  const wider = await h.refresh(t, PUBLIC, first.refresh_token!, { scope: 'mcp admin unknown' })
  t.equal(wider.body.error, 'invalid_scope', 'widening inside the window: invalid_scope')
  const elsewhere = await h.refresh(t, PUBLIC, first.refresh_token!, { resource: h.resource(0) })
  t.equal(elsewhere.body.error, 'invalid_target', 'another resource inside the window: invalid_target (RI-07)')
  const narrowed = await h.refresh(t, PUBLIC, first.refresh_token!, { scope: 'mcp' })
  t.equal(narrowed.status, 200, 'the refusals left the retry working')
  t.equal(claims(narrowed.body.access_token).scope, 'mcp')
  t.equal(claims(narrowed.body.access_token).aud, h.resource(1))
  t.equal(narrowed.body.refresh_token, rotated.body.refresh_token)
  t.equal((await h.introspect(t, BASIC, narrowed.body.refresh_token)).body.scope, 'mcp admin', 'the refresh token keeps the grant\'s scope (O21-10)')
})

t.test('REF-02: a grant revoked in the meantime is refused inside the window too', async (t) => {
  await t.test('by the client (RFC 7009, with its new token)', async (t) => {
    const first = await h.tokens(t, PUBLIC)
    const rotated = await h.refresh(t, PUBLIC, first.refresh_token!)
    t.equal((await h.revoke(t, PUBLIC, rotated.body.refresh_token)).status, 200)
    await expectRefused(t, PUBLIC, first.refresh_token!, 'the rotated token')
  })
  await t.test('by the client (RFC 7009, with the rotated token: it still refreshes, so it revokes)', async (t) => {
    const first = await h.tokens(t, PUBLIC)
    const rotated = await h.refresh(t, PUBLIC, first.refresh_token!)
    t.equal((await h.revoke(t, PUBLIC, first.refresh_token!)).status, 200)
    await expectRefused(t, PUBLIC, rotated.body.refresh_token, 'the current token')
    await expectRefused(t, PUBLIC, first.refresh_token!, 'the rotated token')
  })
  await t.test('by the operator (grants revoke)', async (t) => {
    const first = await h.tokens(t, PUBLIC)
    const rotated = await h.refresh(t, PUBLIC, first.refresh_token!)
    await new Grants(h.gw.gateway.store, h.gw.config.authorizationServer).revoke(lastGrantId(), 'operator')
    await expectRefused(t, PUBLIC, first.refresh_token!, 'the rotated token')
    await expectRefused(t, PUBLIC, rotated.body.refresh_token, 'the current token')
  })
})

t.test('O21-10 BCP-06: a rotated token presented by another client inside the window revokes the grant', async (t) => {
  const first = await h.tokens(t, PUBLIC)
  const rotated = await h.refresh(t, PUBLIC, first.refresh_token!)
  await expectRefused(t, OTHER_PUBLIC, first.refresh_token!, 'another client')
  await expectRefused(t, PUBLIC, rotated.body.refresh_token, 'the owner\'s current token afterwards')
})

t.test('REF-01 RFC 9700 §4.14.2: after the window, a rotated token\'s reuse revokes the grant, however it was answered before', async (t) => {
  const first = await h.tokens(t, PUBLIC)
  const rotated = await h.refresh(t, PUBLIC, first.refresh_token!)
  t.equal((await h.refresh(t, PUBLIC, first.refresh_token!)).status, 200, 'inside the window: answered')
  await sleep(1_100) // refreshReuseGraceSeconds: 1
  await expectRefused(t, PUBLIC, first.refresh_token!, 'after the window')
  await expectRefused(t, PUBLIC, rotated.body.refresh_token, 'the grant\'s current token')
  t.ok(h.gw.logs.some((l) => l.audit === 'grant.revoked' && l.by === 'refresh_reuse'), 'revoked as refresh_reuse')
})

t.test('REF-03: a grace answer is audited as such (token.issued with grace: true)', async (t) => {
  const first = await h.tokens(t, PUBLIC)
  await h.refresh(t, PUBLIC, first.refresh_token!)
  await h.refresh(t, PUBLIC, first.refresh_token!)
  const refreshes = h.gw.logs.filter((l) => l.audit === 'token.issued' && l.grantType === 'refresh_token').slice(-2)
  t.equal(refreshes.length, 2)
  t.notOk('grace' in refreshes[0]!, 'the rotation: no grace member')
  t.equal(refreshes[1]!.grace, true, 'the retry inside the window: grace: true')
  t.equal(refreshes[1]!.grantId, refreshes[0]!.grantId, 'of the same grant')
})

t.test('REF-01: refreshReuse strict refuses inside the window without revoking; later reuse revokes', async (t) => {
  const strict = await startHarness(t, { refreshReuse: 'strict' })
  const first = await strict.tokens(t, PUBLIC)
  const rotated = await strict.refresh(t, PUBLIC, first.refresh_token!)
  t.equal(rotated.status, 200)
  const retry = await strict.refresh(t, PUBLIC, first.refresh_token!)
  t.equal(retry.body.error, 'invalid_grant', 'inside the window: invalid_grant')
  const next = await strict.refresh(t, PUBLIC, rotated.body.refresh_token)
  t.equal(next.status, 200, 'the grant survives')
  await sleep(1_100)
  t.equal((await strict.refresh(t, PUBLIC, first.refresh_token!)).body.error, 'invalid_grant')
  t.equal((await strict.refresh(t, PUBLIC, next.body.refresh_token)).body.error, 'invalid_grant', 'after the window the reuse revoked the grant')
  strict.checkLog(t)
})

t.test('REF-02 DPOP-04: a grace retry of a DPoP-bound refresh token needs a proof by the same key', async (t) => {
  const keyPair = async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
    const publicJwk = await exportJWK(publicKey)
    return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') }
  }
  const key = await keyPair()
  const other = await keyPair()
  const tokenEndpoint = `${h.gw.config.issuer}/oauth/token`
  const post = async (form: Record<string, string>, k?: typeof key) => {
    const headers = new Headers({ 'content-type': 'application/x-www-form-urlencoded' })
    if (k) {
      const proof = await new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm: 'POST', htu: tokenEndpoint })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: k.publicJwk })
        .sign(k.privateKey)
      headers.append('dpop', proof)
    }
    const res = await fetch(tokenEndpoint, { method: 'POST', headers, body: new URLSearchParams({ client_id: PUBLIC.id, ...form }) })
    return { status: res.status, body: (await res.json()) as Record<string, string> }
  }
  const { code, verifier } = await h.code(PUBLIC)
  const bound = await post({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT }, key)
  t.equal(bound.body.token_type, 'DPoP')
  const refresh = (token: string, k?: typeof key) => post({ grant_type: 'refresh_token', refresh_token: token }, k)
  const rotated = await refresh(bound.body.refresh_token!, key)
  t.equal(rotated.status, 200)
  t.equal((await refresh(bound.body.refresh_token!)).body.error, 'invalid_dpop_proof', 'inside the window, without a proof')
  t.equal((await refresh(bound.body.refresh_token!, other)).body.error, 'invalid_dpop_proof', 'inside the window, by another key')
  const retry = await refresh(bound.body.refresh_token!, key)
  t.equal(retry.status, 200, 'by the bound key: answered')
  t.equal(retry.body.token_type, 'DPoP')
  t.equal((claims(retry.body.access_token!).cnf as { jkt: string }).jkt, key.jkt, 'bound to the same key')
  t.equal(retry.body.refresh_token, rotated.body.refresh_token)
  t.equal((await refresh(retry.body.refresh_token!, other)).body.error, 'invalid_dpop_proof', 'the current token stays bound')
  t.equal((await refresh(retry.body.refresh_token!, key)).status, 200)
})

/** The Grants model on a store, for states HTTP cannot reach. */
async function onStores(t: Test, run: (t: Test, store: Store) => Promise<void>) {
  await t.test('memory store', async (t) => {
    const store = new MemoryStore()
    t.teardown(() => store.close())
    await run(t, store)
  })
  await t.test('Redis store', async (t) => {
    const redis = await redisForTests(t)
    if (!redis) return
    const store = new RedisStore(redis.storeConfig(), { warn() {}, error() {} })
    t.teardown(() => store.close())
    await run(t, store)
  })
}
const timings = { codeTtlSeconds: 60, refreshTokenTtlSeconds: 3600, refreshReuseGraceSeconds: 10 }
const newGrant = (grants: Grants) => grants.newGrant({ sub: 'alice', clientId: 'app', resourceId: 'r0', scopes: ['mcp'] })

t.test('REF-03: a replica that died between the rotation and the successor\'s write: the retry writes it, and it works', async (t) => {
  await onStores(t, async (t, store) => {
    const grants = new Grants(store, timings)
    const t0 = (await grants.start(newGrant(grants), true))!
    const chain = new RefreshChain(store, 3_600_000)
    const read = await chain.read(t0)
    if (read.state !== 'found') throw new Error('no record')
    t.ok(await chain.rotate(t0, read), 'rotated, and then the replica died: no successor record was written')
    const retry = await grants.refresh(t0, 'app')
    t.match(retry, { kind: 'rotated', grace: true }, 'the retry is a grace answer')
    const next = await grants.refresh((retry as { refreshToken: string }).refreshToken, 'app')
    t.match(next, { kind: 'rotated', grace: false }, 'whose refresh token is live and rotates')
  })
})

t.test('REF-01: a token rotated by an older version (refresh-rotated:) is refused inside the window and revokes after it', async (t) => {
  await onStores(t, async (t, store) => {
    const grants = new Grants(store, timings)
    const grant = newGrant(grants)
    await grants.start(grant, true)
    const legacy = (rotatedAt: number) => JSON.stringify({ grantId: grant.grantId, rotatedAt })
    await store.set(storeKeys.rotatedRefreshToken(hash('old-recent')), legacy(Date.now()), 60_000)
    await store.set(storeKeys.rotatedRefreshToken(hash('old-late')), legacy(Date.now() - 60_000), 60_000)
    t.same(await grants.refresh('old-recent', 'app'), { kind: 'invalid' }, 'inside the window: refused, no successor to give')
    t.ok(await grants.get(grant.grantId), 'the grant lives')
    t.same(await grants.refresh('old-late', 'app'), { kind: 'reused', grantId: grant.grantId }, 'after it: reuse')
    t.equal(await grants.get(grant.grantId), undefined, 'the grant is revoked')
  })
})

t.test('MCPA-62: no token in the log', async (t) => {
  h.checkLog(t)
})
