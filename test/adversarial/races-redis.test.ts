/**
 * Red team: races on the shared store (Redis), where store calls really interleave.
 * O21-08: of concurrent redemptions of one code at most one wins, and once the replays are
 * otherwise valid the grant the code created is revoked (the winner's refresh token dies).
 * OQ-11, REF-03: of concurrent refreshes exactly one rotates; the others get the same successor
 * through the grace window. Skipped (and says so) without Redis.
 */
import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { testPasswordHash } from '../helpers/passwords.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { startTestGateway } from '../helpers/gateway.js'
import { redisForTests } from '../helpers/redis.js'

t.setTimeout(120_000)
// In a subtest, not at the root: a skip without Redis (plan 0) then ends this file's tests only,
// not the other files that share its process under `npm test` (test/group-tests.mjs).
t.test('races on the shared store', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const REDIRECT = 'http://127.0.0.1:43277/callback'
  const gw = await startTestGateway(t, {
    resources: [{ upstream: 'http://127.0.0.1:9/mcp' }],
    store: { type: 'redis', redis: redis.storeConfig() },
    config: {
      authorizationServer: { refreshReuseGraceSeconds: 1 },
      login: { static: { users: [{ username: 'alice', passwordHash: await testPasswordHash('alice-password') }] } },
      clients: [{ clientId: 'app', name: 'App', redirectUris: ['http://127.0.0.1/callback'] }],
      rateLimits: { token: { perAddress: { requests: 0, windowSeconds: 60 }, perClient: { requests: 0, windowSeconds: 60 } } },
    },
  })
  const browser = new FormBrowser(gw.origin)

  async function code(): Promise<{ code: string; verifier: string }> {
    const verifier = randomBytes(32).toString('base64url')
    const url = new URL(`${gw.origin}/oauth/authorize`)
    for (const [k, v] of Object.entries({
      response_type: 'code',
      client_id: 'app',
      redirect_uri: REDIRECT,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: gw.mcpUrl(),
      scope: 'mcp',
    })) {
      url.searchParams.set(k, v)
    }
    let page = await browser.get(url.href)
    for (let i = 0; page.status === 200 && i < 2; i++) {
      page = page.html.includes('/oauth/authorize/login')
        ? await browser.submit(page, { username: 'alice', password: 'alice-password' })
        : await browser.submit(page, { decision: 'allow' })
    }
    return { code: new URL(page.location!).searchParams.get('code')!, verifier }
  }

  async function token(fields: Record<string, string>) {
    const res = await fetch(`${gw.origin}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'app', ...fields }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, string> }
  }

  // The replays are otherwise valid, so they revoke the grant; the one redemption that took the
  // code may finish before or after that revocation: if it finishes after, it gets
  // invalid_grant too (the grant-revoked marker), and a grant never outlives its replay.
  t.test('O21-08 (Redis): concurrent redemptions: at most one wins, and the grant is revoked by the valid replays', async (t) => {
    for (let round = 0; round < 5; round++) {
      const c = await code()
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => token({ grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, redirect_uri: REDIRECT })),
      )
      const winners = answers.filter((a) => a.status === 200)
      t.ok(winners.length <= 1, `round ${round}: at most one redemption succeeds`)
      t.ok(answers.every((a) => a.status === 200 || a.body.error === 'invalid_grant'), `round ${round}: the others get invalid_grant`)
      const late = await token({ grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, redirect_uri: REDIRECT })
      t.equal(late.body.error, 'invalid_grant', `round ${round}: a later replay is refused`)
      for (const winner of winners) {
        const refreshed = await token({ grant_type: 'refresh_token', refresh_token: winner.body.refresh_token! })
        t.equal(refreshed.body.error, 'invalid_grant', `round ${round}: the replayed code's grant is revoked`)
      }
    }
  })

  t.test('OQ-11 REF-03 (Redis): concurrent refreshes: one rotation, every answer the same working refresh token', async (t) => {
    const c = await code()
    const first = await token({ grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, redirect_uri: REDIRECT })
    const answers = await Promise.all(Array.from({ length: 8 }, () => token({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token! })))
    t.ok(answers.every((a) => a.status === 200), 'every racer is answered')
    t.equal(new Set(answers.map((a) => a.body.refresh_token)).size, 1, 'exactly one rotation: one successor for all')
    const next = await token({ grant_type: 'refresh_token', refresh_token: answers[0]!.body.refresh_token! })
    t.equal(next.status, 200, 'and it works')
  })

  t.test('no 500', async (t) => {
    t.notMatch(gw.logText(), /"level":50/, 'no error-level log line')
  })
})
