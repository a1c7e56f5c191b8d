/**
 * Refresh that survives retries and races across replicas (REF-01..03): three gateway replicas
 * on one real Redis, behind one public URL as behind a load balancer. A lost answer (the
 * connection dropped after the store committed) is retried at another replica; six concurrent
 * refreshes with one token are spread over the replicas; reuse after the window, a revocation
 * in the meantime and a DPoP-bound token are checked at replicas other than the rotating one.
 * Skipped (and says so) without Redis.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { hashPassword } from '../../src/login/passwords.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { redisForTests } from '../helpers/redis.js'

t.setTimeout(120_000)
const GRACE_SECONDS = 2
const REDIRECT = 'http://127.0.0.1:43278/callback'

const redis = await redisForTests(t)
if (redis) {
  const store = { type: 'redis', redis: redis.storeConfig() }
  const passwordHash = await hashPassword('alice-password')
  const config = (publicUrl?: string) => ({
    ...(publicUrl && { publicUrl }),
    authorizationServer: { refreshReuseGraceSeconds: GRACE_SECONDS },
    login: { static: { users: [{ username: 'alice', passwordHash }] } },
    clients: [{ clientId: 'app', name: 'App', redirectUris: ['http://127.0.0.1/callback'] }],
    rateLimits: { token: { perAddress: { requests: 0, windowSeconds: 60 }, perClient: { requests: 0, windowSeconds: 60 } } },
  })
  const resources = [{ upstream: 'http://127.0.0.1:9/mcp' }, { upstream: 'http://127.0.0.1:9/mcp' }]
  const a = await startTestGateway(t, { store, resources, config: config() })
  const b = await startTestGateway(t, { store, resources, config: config(a.origin) })
  const c = await startTestGateway(t, { store, resources, config: config(a.origin) })
  const replicas = [a, b, c]
  const browser = new FormBrowser(a.origin)
  const tokenEndpoint = `${a.config.issuer}/oauth/token`

  type Key = Awaited<ReturnType<typeof keyPair>>
  async function keyPair() {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
    const publicJwk = await exportJWK(publicKey)
    return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') }
  }
  const proof = (k: Key) =>
    new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm: 'POST', htu: tokenEndpoint })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: k.publicJwk })
      .sign(k.privateKey)

  async function post(gw: TestGateway, path: string, fields: Record<string, string>, key?: Key) {
    const res = await fetch(`${gw.origin}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(key && { dpop: await proof(key) }) },
      body: new URLSearchParams({ client_id: 'app', ...fields }),
    })
    const text = await res.text()
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, string> }
  }
  const refresh = (gw: TestGateway, token: string, key?: Key) => post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: token }, key)

  /** A grant's first tokens, through /authorize at replica A and the code exchange at `at`. */
  async function tokens(at: TestGateway, { scope = 'mcp', resource = a.mcpUrl(), key }: { scope?: string; resource?: string; key?: Key } = {}) {
    const verifier = randomBytes(32).toString('base64url')
    const url = new URL(`${a.origin}/oauth/authorize`)
    const query = {
      response_type: 'code',
      client_id: 'app',
      redirect_uri: REDIRECT,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource,
      scope,
    }
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
    let page = await browser.get(url.href)
    for (let i = 0; page.status === 200 && i < 2; i++) {
      page = page.html.includes('/oauth/authorize/login')
        ? await browser.submit(page, { username: 'alice', password: 'alice-password' })
        : await browser.submit(page, { decision: 'allow' })
    }
    const code = new URL(page.location!).searchParams.get('code')!
    const res = await post(at, '/oauth/token', { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT }, key)
    if (res.status !== 200) throw new Error(`code exchange: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body
  }

  /**
   * A refresh whose answer is lost: the request is sent, and the connection is dropped as soon
   * as the response starts, so the store has committed but the client never reads the body.
   */
  function refreshAnswerLost(gw: TestGateway, token: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(`${gw.origin}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        const status = res.statusCode ?? 0
        res.destroy()
        req.destroy()
        resolve(status)
      })
      req.on('error', reject)
      req.end(new URLSearchParams({ client_id: 'app', grant_type: 'refresh_token', refresh_token: token }).toString())
    })
  }

  const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  const expectRefused = async (t: Test, gw: TestGateway, token: string, what: string, key?: Key) => {
    const res = await refresh(gw, token, key)
    t.equal(res.status, 400, `${what}: refused`)
    t.equal(res.body.error, 'invalid_grant', `${what}: invalid_grant`)
  }

  t.test('REF-01 (Redis, replicas): a lost answer at A, retried at B inside the window, works; so does its refresh token', async (t) => {
    const first = await tokens(a, { resource: b.config.resources[1]!.uri, scope: 'mcp admin' })
    t.equal(await refreshAnswerLost(a, first.refresh_token!), 200, 'A rotated the token; the answer never arrived')
    const retry = await refresh(b, first.refresh_token!)
    t.equal(retry.status, 200, 'the retry at B is answered')
    t.match(claims(retry.body.access_token!), { sub: 'static:alice', client_id: 'app', aud: b.config.resources[1]!.uri, scope: 'mcp admin' }, 'REF-02: the same grant')
    const again = await refresh(c, first.refresh_token!)
    t.equal(again.body.refresh_token, retry.body.refresh_token, 'a second retry at C gets the same refresh token: no new token per retry')
    const next = await refresh(a, retry.body.refresh_token!)
    t.equal(next.status, 200, 'the new refresh token works at A')
    t.equal((await refresh(b, next.body.refresh_token!)).status, 200, 'and its successor at B')
  })

  t.test('REF-03 (Redis, replicas): six concurrent refreshes with one token over three replicas: every answer a working pair', async (t) => {
    for (let round = 0; round < 5; round++) {
      const first = await tokens(replicas[round % 3]!)
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => refresh(replicas[i % 3]!, first.refresh_token!)))
      t.same(answers.map((x) => x.status), [200, 200, 200, 200, 200, 200], `round ${round}: six answers`)
      t.equal(new Set(answers.map((x) => x.body.refresh_token)).size, 1, `round ${round}: one rotation, one refresh token for all`)
      t.equal(new Set(answers.map((x) => x.body.access_token)).size, 6, `round ${round}: six access tokens`)
      const next = await refresh(replicas[(round + 1) % 3]!, answers[5]!.body.refresh_token!)
      t.equal(next.status, 200, `round ${round}: the newest refresh token works: the grant was not revoked`)
      // The racers, refreshing again at once with what they hold: the chain moves on, nobody is stranded.
      const second = await Promise.all(answers.map((x, i) => refresh(replicas[i % 3]!, x.body.refresh_token!)))
      t.ok(second.every((x) => x.status === 200), `round ${round}: the racers' next refreshes are answered too`)
      t.equal(new Set(second.map((x) => x.body.refresh_token)).size, 1, `round ${round}: still one live refresh token`)
      t.equal((await refresh(a, second[0]!.body.refresh_token!)).status, 200, `round ${round}: and it works`)
    }
  })

  t.test('REF-01 RFC 9700 §4.14.2 (Redis, replicas): reuse after the window, at another replica, revokes the grant', async (t) => {
    const first = await tokens(a)
    const rotated = await refresh(a, first.refresh_token!)
    t.equal(rotated.status, 200)
    await sleep(GRACE_SECONDS * 1000 + 200)
    await expectRefused(t, b, first.refresh_token!, 'the rotated token after the window, at B')
    await expectRefused(t, c, rotated.body.refresh_token!, 'the grant\'s current token, at C')
    t.ok(b.logs.some((l) => l.audit === 'grant.revoked' && l.by === 'refresh_reuse'), 'B revoked it as refresh_reuse')
  })

  t.test('REF-02 (Redis, replicas): a grant revoked in the meantime at B is refused inside the window at C', async (t) => {
    const first = await tokens(a)
    const rotated = await refresh(a, first.refresh_token!)
    t.equal((await post(b, '/oauth/revoke', { token: rotated.body.refresh_token! })).status, 200, 'RFC 7009 at B')
    await expectRefused(t, c, first.refresh_token!, 'the rotated token inside the window, at C')
    await expectRefused(t, a, rotated.body.refresh_token!, 'the revoked current token, at A')
  })

  t.test('REF-02 DPOP-04 (Redis, replicas): a bound token retried at another replica needs a proof by the same key', async (t) => {
    const key = await keyPair()
    const other = await keyPair()
    const first = await tokens(a, { key })
    t.equal(first.token_type, 'DPoP')
    t.equal((await refresh(a, first.refresh_token!)).body.error, 'invalid_dpop_proof', 'without a proof, A refuses the bound token')
    const rotated = await refresh(a, first.refresh_token!, key)
    t.equal(rotated.status, 200)
    t.equal((await refresh(b, first.refresh_token!)).body.error, 'invalid_dpop_proof', 'at B without a proof')
    t.equal((await refresh(b, first.refresh_token!, other)).body.error, 'invalid_dpop_proof', 'at B by another key')
    const retry = await refresh(b, first.refresh_token!, key)
    t.equal(retry.status, 200, 'at B by the bound key')
    t.equal((claims(retry.body.access_token!).cnf as { jkt: string }).jkt, key.jkt)
    t.equal(retry.body.refresh_token, rotated.body.refresh_token)
  })

  t.test('REF-03: grace answers are audited; no error-level log line at any replica', async (t) => {
    const graceAnswers = replicas.flatMap((gw) => gw.logs).filter((l) => l.audit === 'token.issued' && l.grace === true)
    t.ok(graceAnswers.length >= 25, `${graceAnswers.length} grace answers audited with grace: true`)
    for (const gw of replicas) t.notMatch(gw.logText(), /"level":50/, `${gw.origin}: no 500`)
    const keys = await redis.raw.keys(`${redis.keyPrefix}refresh*`)
    t.ok(keys.length > 0 && keys.every((k) => k.startsWith(`${redis.keyPrefix}refresh:`)), 'refresh tokens live under refresh:<hash> only')
  })
}
