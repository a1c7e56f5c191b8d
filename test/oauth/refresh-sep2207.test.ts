/**
 * SEP-2207 (refresh token guidance, final), pinned (REF-04): the resource server never
 * advertises `offline_access` (401 challenges, protected-resource metadata), the authorization
 * server lists it in its metadata, refresh tokens follow the client's grant types and the
 * granted scope, and a public client's refresh token rotates on every use.
 */
import t from 'tap'
import { bearerChallenge } from '../../src/resource/challenge.js'
import { startTestGateway } from '../helpers/gateway.js'
import { BASIC, NO_REFRESH, PUBLIC, startHarness } from '../helpers/token-harness.js'

const h = await startHarness(t)

t.test('REF-04: the resource never advertises offline_access, even when the configuration lists it', async (t) => {
  const gw = await startTestGateway(t, {
    resources: [
      {
        upstream: 'http://127.0.0.1:9/mcp',
        default: true,
        scopes: [{ name: 'mcp' }, { name: 'offline_access' }],
        requiredScopes: ['mcp', 'offline_access'],
      },
    ],
  })
  for (const url of [gw.config.resources[0]!.metadataUrl, `${gw.origin}/.well-known/oauth-protected-resource`]) {
    const prm = (await (await fetch(url)).json()) as { scopes_supported?: string[] }
    t.same(prm.scopes_supported, ['mcp'], `${url}: scopes_supported without offline_access`)
  }
  const call = (authorization?: string) =>
    fetch(gw.mcpUrl(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(authorization && { authorization }) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    })
  for (const [why, authorization] of [['no token', undefined], ['a bad token', 'Bearer not-a-token']] as const) {
    const res = await call(authorization)
    t.equal(res.status, 401, why)
    const challenge = res.headers.get('www-authenticate') ?? ''
    t.match(challenge, /scope="mcp"/, `${why}: the challenge names the scopes the call needs`)
    t.notMatch(challenge, /offline_access/, `${why}: but never offline_access`)
  }
  t.equal(
    bearerChallenge({ resourceMetadataUrl: 'https://gw.example/prm', scopes: ['offline_access'], error: 'insufficient_scope' }),
    'Bearer error="insufficient_scope", resource_metadata="https://gw.example/prm"',
    'a step-up challenge (insufficient_scope) never names it either',
  )
})

t.test('REF-04: the authorization server lists offline_access in scopes_supported', async (t) => {
  const metadata = (await (await fetch(`${h.gw.origin}/.well-known/oauth-authorization-server`)).json()) as { scopes_supported: string[] }
  t.ok(metadata.scopes_supported.includes('offline_access'))
})

t.test('REF-04: refresh tokens follow the client\'s grant types, not the offline_access scope', async (t) => {
  const refreshing = await h.tokens(t, PUBLIC, { scope: 'mcp' })
  t.type(refreshing.refresh_token, 'string', 'a client with refresh_token in its grant types gets one without asking for offline_access')
  const asked = await h.tokens(t, PUBLIC, { scope: 'mcp offline_access' })
  t.type(asked.refresh_token, 'string', 'and with it')
  t.equal(asked.scope, 'mcp', 'offline_access is not a scope of the tokens')
  const none = await h.tokens(t, NO_REFRESH, { scope: 'mcp offline_access' })
  t.notOk('refresh_token' in none, 'a client without refresh_token gets none, even asking for offline_access')
})

t.test('REF-04: a refresh token follows the granted scope, and a public client\'s rotates on every use', async (t) => {
  const first = await h.tokens(t, PUBLIC, { scope: 'mcp admin' })
  const seen = new Set([first.refresh_token!])
  let current = first.refresh_token!
  for (let use = 1; use <= 3; use++) {
    const res = await h.refresh(t, PUBLIC, current)
    t.equal(res.status, 200, `use ${use}`)
    t.equal(res.body.scope, 'mcp admin', `use ${use}: the granted scope`)
    t.notOk(seen.has(res.body.refresh_token), `use ${use}: a new refresh token`)
    t.equal((await h.introspect(t, BASIC, current)).body.active, false, `use ${use}: the one presented is no longer live`)
    t.equal((await h.introspect(t, BASIC, res.body.refresh_token)).body.scope, 'mcp admin', `use ${use}: the new one has the granted scope`)
    seen.add(res.body.refresh_token)
    current = res.body.refresh_token
  }
})
