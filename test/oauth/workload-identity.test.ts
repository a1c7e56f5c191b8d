/**
 * Workload identity federation (SEP-1933, draft; RFC 7523 §2.1; WIF-01..06): a workload's own
 * platform token, presented with no client authentication, buys an access token, which calls a
 * real MCP server through the gateway. The issuers are real HTTP servers on loopback speaking
 * OpenID discovery and JWKS (test/fixtures/workload-issuer.ts); the client sends exactly what the
 * conformance suite's `auth/wif-jwt-bearer` scenario expects of a client: a form POST with
 * grant_type, assertion, resource and an optional scope, nothing else. Then every rule refuses
 * what it must, each test naming its WIF-ID, and the replay cache holds across two gateways on Redis.
 */
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { connectSdk2Client } from '../fixtures/mcp-clients.js'
import { startWorkloadIssuer } from '../fixtures/workload-issuer.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'
import { redisForTests } from '../helpers/redis.js'
import { rsaKeyPair } from '../fixtures/rsa-keys.js'

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const DEPLOYER = 'system:serviceaccount:ci:deployer'
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())
const cluster = await startWorkloadIssuer() // discovery, like a cluster's service-account issuer
const actions = await startWorkloadIssuer() // jwksUri, like GitHub Actions
const mounted = await startWorkloadIssuer() // keys from a JWKS file only
const stranger = await startWorkloadIssuer() // trusted by nobody
t.teardown(() => Promise.all([cluster, actions, mounted, stranger].map((i) => i.close())))
const dir = await mkdtemp(join(tmpdir(), 'gatehouse-wif-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const jwksFile = join(dir, 'jwks.json')
await writeFile(jwksFile, JSON.stringify(mounted.jwks()))
const closedPort = await reservePort(t)

const SCOPES = [{ name: 'files:read' }, { name: 'files:write' }, { name: 'admin' }]

async function startGateway(t: Test, store?: Record<string, unknown>, audience?: string): Promise<TestGateway> {
  return startTestGateway(t, {
    ...(store && { store }),
    resources: [
      {
        upstream: upstream.url,
        default: true,
        scopes: SCOPES,
        requiredScopes: ['files:read'],
        policy: {
          rules: [
            { id: 'deploy-echo', method: 'tools/call', name: 'echo', workloads: ['deployer'] },
            // A user rule naming the workload's exact subject still never matches it (WIF-05).
            { id: 'people-whoami', method: 'tools/call', name: 'whoami', users: { subjects: [`workload:k8s:${DEPLOYER}`] } },
          ],
        },
      },
      { id: 'other', upstream: upstream.url, scopes: SCOPES, requiredScopes: ['files:read'], access: { allowAnyUser: true } },
    ],
    config: {
      workloadIdentity: {
        issuers: [
          {
            id: 'k8s',
            issuer: cluster.issuer,
            discovery: true,
            allowPrivateAddresses: true,
            ...(audience !== undefined && { audience }),
            rules: [
              {
                workload: 'deployer',
                match: { sub: DEPLOYER, 'kubernetes.io.namespace': 'ci', 'kubernetes.io.serviceaccount.name': 'deployer' },
                resources: ['r0'],
                scopes: ['files:read', 'files:write'],
              },
            ],
          },
          {
            id: 'gha',
            issuer: actions.issuer,
            jwksUri: actions.jwksUri,
            allowPrivateAddresses: true,
            maxLifetimeSeconds: 900,
            rules: [
              { workload: 'ci', match: { repository: 'acme/app', ref: ['refs/heads/main', 'refs/tags/v*'] }, resources: ['r0', 'other'], scopes: ['files:read'] },
              { workload: 'deployer', match: { sub: DEPLOYER }, resources: ['r0'] },
            ],
          },
          { id: 'svid', issuer: mounted.issuer, jwksFile, rules: [{ workload: 'agent', match: { sub: 'spiffe://example.org/ns/ci/*' }, resources: ['r0'] }] },
          { id: 'down', issuer: 'https://down.example.com', jwksUri: `http://127.0.0.1:${closedPort}/jwks`, allowPrivateAddresses: true, rules: [{ workload: 'x', match: { sub: '*' }, resources: ['r0'] }] },
        ],
      },
    },
  })
}

/** What the conformance scenario's client sends: grant_type, assertion, resource, optional scope; no client authentication. */
async function wifToken(gw: TestGateway, assertion: string | undefined, extra: Record<string, string> = {}) {
  const form = new URLSearchParams({ grant_type: JWT_BEARER, ...(assertion !== undefined && { assertion }), resource: gw.mcpUrl(), ...extra })
  const res = await fetch(`${gw.origin}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
const gw = await startGateway(t)
const pod = (over: Record<string, unknown> = {}) => ({
  sub: DEPLOYER,
  aud: gw.config.issuer,
  'kubernetes.io': { namespace: 'ci', serviceaccount: { name: 'deployer', uid: randomUUID() }, pod: { name: 'deployer-7f9c' } },
  ...over,
})

t.test('WIF-06: metadata lists the jwt-bearer grant', async (t) => {
  const metadata = (await (await fetch(`${gw.origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, string[]>
  t.ok(metadata.grant_types_supported!.includes(JWT_BEARER))
})

t.test('WIF-01, WIF-05: a pod\'s token buys a workload token that calls the MCP server; no user rule matches it', async (t) => {
  const ok = await wifToken(gw, await cluster.sign(pod()), { scope: 'files:read files:write' })
  t.equal(ok.status, 200)
  t.equal(ok.body.token_type, 'Bearer')
  t.notOk(ok.body.refresh_token, 'WIF-05: no refresh token, the workload presents a fresh JWT')
  t.equal(ok.body.scope, 'files:read files:write')
  const token = ok.body.access_token as string
  t.match(claimsOf(token), { sub: `workload:k8s:${DEPLOYER}`, client_id: 'workload:deployer', aud: gw.mcpUrl() })
  t.ok((cluster.hits.get('/.well-known/openid-configuration') ?? 0) >= 1, 'keys found through OIDC discovery')
  t.ok((cluster.hits.get('/jwks') ?? 0) >= 1, 'and its jwks_uri')

  const client = await connectSdk2Client(gw.mcpUrl(), { token })
  t.teardown(() => client.close())
  const echo = (await client.callTool({ name: 'echo', arguments: { text: 'from a pod' } })) as { content: { text: string }[] }
  t.match(echo.content[0]!.text, /from a pod/, 'a workloads: [deployer] rule admits it, end to end')
  const whoami = await client.callTool({ name: 'whoami', arguments: {} }).then(
    (r) => r as { isError?: boolean },
    (err: Error) => err,
  )
  t.ok(whoami instanceof Error || whoami.isError, 'a users rule naming its very subject refuses it (WIF-05)')
})

t.test('WIF-03, WIF-05: GitHub Actions claims pick the rule; equal subs of two issuers stay apart', async (t) => {
  const ci = await wifToken(gw, await actions.sign({ sub: 'repo:acme/app:ref:refs/tags/v1.2', aud: gw.config.issuer, repository: 'acme/app', ref: 'refs/tags/v1.2' }), { resource: gw.mcpUrl('other') })
  t.equal(ci.status, 200, 'repository and ref glob match')
  t.match(claimsOf(ci.body.access_token as string), { client_id: 'workload:ci', aud: gw.mcpUrl('other') })
  t.equal(ci.body.scope, 'files:read', 'no scope asked: everything the rule allows')
  const same = await wifToken(gw, await actions.sign({ sub: DEPLOYER, aud: gw.config.issuer }))
  t.equal(same.status, 200)
  t.equal(claimsOf(same.body.access_token as string).sub, `workload:gha:${DEPLOYER}`, 'another issuer\'s equal sub is another subject')
  const branch = await wifToken(gw, await actions.sign({ sub: 'repo:acme/app:ref:refs/heads/dev', aud: gw.config.issuer, repository: 'acme/app', ref: 'refs/heads/dev' }))
  t.match(branch, { status: 400, body: { error: 'unauthorized_client' } }, 'WIF-03: a branch no rule names matches no rule')
})

t.test('WIF-02: keys from a mounted JWKS file, the issuer never fetched', async (t) => {
  const ok = await wifToken(gw, await mounted.sign({ sub: 'spiffe://example.org/ns/ci/sa/agent', aud: gw.config.issuer }))
  t.equal(ok.status, 200)
  t.equal(claimsOf(ok.body.access_token as string).sub, 'workload:svid:spiffe://example.org/ns/ci/sa/agent')
  t.equal(mounted.hits.size, 0, 'no request reached the issuer')
})

t.test('WIF-02: every check of the assertion refuses with invalid_grant, never a 5xx', async (t) => {
  const refused = async (why: string, assertion: string, check: string) => {
    const res = await wifToken(gw, assertion)
    t.equal(res.status, 400, `${why}: 400`)
    t.equal(res.body.error, 'invalid_grant', `${why}: invalid_grant`)
    t.notOk(res.body.access_token, `${why}: no token`)
    const last = gw.logs.filter((l) => l.audit === 'workload.refused').at(-1)
    t.equal(last?.check, check, `${why}: refused by the ${check} check`)
  }
  await refused('untrusted issuer', await stranger.sign(pod()), 'issuer')
  t.equal(stranger.hits.size, 0, 'an untrusted issuer is refused before any fetch')
  const now = Math.floor(Date.now() / 1000)
  const hs = await new SignJWT(pod({ iss: cluster.issuer, iat: now, exp: now + 300, jti: randomUUID() }))
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode('a-shared-secret-that-is-long-enough-32b'))
  await refused('HS256', hs, 'algorithm')
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(pod({ iss: cluster.issuer, iat: now, exp: now + 300 }))).toString('base64url')}.`
  await refused('alg none', none, 'algorithm')
  await refused('another key', await cluster.sign(pod(), { key: (await rsaKeyPair()).privateKey }), 'signature')
  await refused('wrong aud', await cluster.sign(pod({ aud: 'https://other.example.com' })), 'audience')
  await refused('aud array with another member', await cluster.sign(pod({ aud: [gw.config.issuer, 'https://other.example.com'] })), 'audience')
  await refused('no aud', await cluster.sign(pod({ aud: undefined })), 'audience')
  await refused('expired', await cluster.sign(pod({ iat: now - 700, exp: now - 100 })), 'time')
  await refused('no exp', await cluster.sign(pod({ exp: undefined })), 'claims')
  await refused('iat in the future', await cluster.sign(pod({ iat: now + 120, exp: now + 600 })), 'time')
  await refused('nbf in the future', await cluster.sign(pod({ nbf: now + 120 })), 'time')
  await refused('lifetime beyond maxLifetimeSeconds', await actions.sign({ sub: DEPLOYER, aud: gw.config.issuer }, { lifetime: 1000 }), 'lifetime')
  await refused('typ of another profile', await cluster.sign(pod(), { header: { typ: 'at+jwt' } }), 'typ')
  await refused('keys that cannot be fetched', await new SignJWT({ sub: 'x', aud: gw.config.issuer, iss: 'https://down.example.com', iat: now, exp: now + 60 })
    .setProtectedHeader({ alg: 'RS256', kid: 'k' })
    .sign((await rsaKeyPair()).privateKey), 'keys')
  t.notMatch(gw.logText(), hs.split('.')[2]!, 'no assertion reaches the log')

  for (const [why, aud] of [
    ['the issuer with a trailing slash', `${gw.config.issuer}/`],
    ['the token endpoint URL', `${gw.origin}/oauth/token`],
    ['both, as an array', [gw.config.issuer, `${gw.origin}/oauth/token`]],
    ['typ absent', gw.config.issuer],
  ] as const) {
    const res = await wifToken(gw, await cluster.sign(pod({ aud }), why === 'typ absent' ? { header: { typ: null } } : {}))
    t.equal(res.status, 200, `accepted: ${why}`)
  }
})

t.test('WIF-04: single use, by jti or by the token\'s hash; a refused request burns nothing', async (t) => {
  const assertion = await cluster.sign(pod())
  const wrong = await wifToken(gw, assertion, { resource: gw.mcpUrl('other') })
  t.match(wrong, { status: 400, body: { error: 'invalid_target' } }, 'WIF-06: a resource the rule does not list')
  t.equal((await wifToken(gw, assertion)).status, 200, 'the refused request did not burn it')
  t.match(await wifToken(gw, assertion), { status: 400, body: { error: 'invalid_grant' } }, 'replayed jti refused')
  const jti = randomUUID()
  t.equal((await wifToken(gw, await cluster.sign(pod({ jti })))).status, 200)
  t.match(await wifToken(gw, await cluster.sign(pod({ jti }))), { status: 400, body: { error: 'invalid_grant' } }, 'another token with a used jti refused')
  const bare = await cluster.sign(pod({ jti: null }))
  t.notOk(claimsOf(bare).jti)
  t.equal((await wifToken(gw, bare)).status, 200, 'a token without jti is accepted once')
  t.match(await wifToken(gw, bare), { status: 400, body: { error: 'invalid_grant' } }, 'and refused again by its hash')
})

t.test('WIF-03, WIF-06: rules, scopes, resources and the request itself', async (t) => {
  t.match(await wifToken(gw, await cluster.sign(pod({ sub: 'system:serviceaccount:ci:builder' }))), { status: 400, body: { error: 'unauthorized_client' } }, 'no rule matches')
  t.match(await wifToken(gw, await cluster.sign(pod({ 'kubernetes.io': { namespace: 'prod', serviceaccount: { name: 'deployer' } } }))), { status: 400, body: { error: 'unauthorized_client' } }, 'a nested claim differs')
  t.match(await wifToken(gw, await cluster.sign(pod()), { scope: 'admin' }), { status: 400, body: { error: 'invalid_scope' } }, 'a scope beyond the rule')
  const narrowed = await wifToken(gw, await cluster.sign(pod()), { scope: 'files:read admin' })
  t.equal(narrowed.body.scope, 'files:read', 'a mixed request is narrowed to the rule (RFC 6749 §3.3)')
  t.match(await wifToken(gw, await cluster.sign(pod()), { resource: 'https://elsewhere.example.com/mcp' }), { status: 400, body: { error: 'invalid_target' } }, 'an unknown resource')
  t.match(await wifToken(gw, undefined), { status: 400, body: { error: 'invalid_request' } }, 'no assertion')
  const defaulted = await fetch(`${gw.origin}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: JWT_BEARER, assertion: await cluster.sign(pod()) }),
  })
  t.equal(((await defaulted.json()) as { access_token: string }).access_token.split('.').length, 3, 'no resource: the default resource (RFC 8707)')
})

t.test('WIF-01: the ID-JAG and workload profiles never mix', async (t) => {
  const jag = await wifToken(gw, await cluster.sign(pod({ client_id: 'agent-app', resource: gw.mcpUrl() }), { header: { typ: 'oauth-id-jag+jwt' } }))
  t.match(jag, { status: 401, body: { error: 'invalid_client' } }, 'an ID-JAG without client authentication is refused')
  const withClient = await wifToken(gw, await cluster.sign(pod()), { client_id: 'deployer' })
  t.match(withClient, { status: 401, body: { error: 'invalid_client' } }, 'a request naming a client is not the workload profile')
})

t.test('WIF-05: the workload JWT itself is no access token at the MCP endpoint', async (t) => {
  const assertion = await cluster.sign(pod({ aud: gw.mcpUrl(), scope: 'files:read' }))
  const res = await fetch(gw.mcpUrl(), {
    method: 'POST',
    headers: { authorization: `Bearer ${assertion}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  })
  t.equal(res.status, 401)
  t.match(res.headers.get('www-authenticate'), /invalid_token/)
})

t.test('WIF-04: the replay cache is shared by two gateways on Redis', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = { type: 'redis', redis: redis.storeConfig() }
  // Two replicas of one deployment: one audience (the configured one, WIF-02), one store.
  const audience = 'https://gatehouse.example.com'
  const [a, b] = [await startGateway(t, store, audience), await startGateway(t, store, audience)]
  t.match(await wifToken(a, await cluster.sign(pod({ aud: a.config.issuer }))), { status: 400, body: { error: 'invalid_grant' } }, 'a configured audience replaces the issuer')
  for (const [why, claims] of [['jti', {}], ['no jti', { jti: null }]] as const) {
    const assertion = await cluster.sign(pod({ aud: audience, ...claims }))
    t.equal((await wifToken(a, assertion)).status, 200, `${why}: first use at one replica`)
    t.match(await wifToken(b, assertion), { status: 400, body: { error: 'invalid_grant' } }, `${why}: refused at the other`)
  }
})
