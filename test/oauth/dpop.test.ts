/**
 * DPoP (RFC 9449; SEP-1932; DPOP-01..10), both roles. An independent client built on
 * oauth4webapi gets bound tokens (client credentials; authorization code with dpop_jkt and a
 * public client's bound refresh token) and calls a real MCP server through the gateway with
 * proofs; then every check refuses a proof that breaks it, at the token endpoint (400
 * invalid_dpop_proof) and at the resource (401 with a DPoP challenge), never a 500. Proof replay
 * is refused across two replicas sharing Redis. The SDK's own DPoP (a provider's dpop()) agrees.
 */
import { randomUUID } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { Client, ClientCredentialsProvider, DpopSession, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import * as oauth from 'oauth4webapi'
import t, { type Test } from 'tap'
import { toClient } from '../../src/oauth/clients/cimd/effective-client.js'
import { snapshotOf } from '../../src/oauth/clients/snapshot.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { redisForTests } from '../helpers/redis.js'
import { PUBLIC, REDIRECT, startHarness } from '../helpers/token-harness.js'

const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())
const CI_SECRET = 'ci-bot-secret-5b9e0c2d7a4f1e8b3c6d9a0f'
const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' })
const insecure = { [oauth.allowInsecureRequests]: true } // loopback http only

function machineClients(publicUrl?: string) {
  return {
    ...(publicUrl && { publicUrl }),
    clients: [
      { clientId: 'ci-bot', name: 'CI bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', secret: CI_SECRET },
      {
        clientId: 'bound-bot',
        name: 'Bound bot',
        grantTypes: ['client_credentials'],
        tokenEndpointAuthMethod: 'client_secret_basic',
        secret: CI_SECRET,
        dpopBoundAccessTokens: true,
      },
    ],
  }
}

async function gateway(t: Test, store?: Record<string, unknown>, publicUrl?: string) {
  return startTestGateway(t, { ...(store && { store }), resources: [{ upstream: upstream.url }], config: machineClients(publicUrl) })
}

/** A proof written by hand, for the checks oauth4webapi would never break. */
async function proof(key: { privateKey: CryptoKey; publicJwk: JWK }, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk, ...header })
    .sign(key.privateKey)
}

async function keyPair() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const publicJwk = await exportJWK(publicKey)
  return { privateKey, publicKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') }
}

const ath = async (token: string) => Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))).toString('base64url')
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>

async function discover(gw: TestGateway) {
  return oauth.processDiscoveryResponse(new URL(gw.config.issuer), await oauth.discoveryRequest(new URL(gw.config.issuer), { algorithm: 'oauth2', ...insecure }))
}

async function machineToken(gw: TestGateway, key: Awaited<ReturnType<typeof keyPair>>, clientId = 'ci-bot') {
  const as = await discover(gw)
  const client: oauth.Client = { client_id: clientId }
  const DPoP = oauth.DPoP(client, { privateKey: key.privateKey, publicKey: key.publicKey })
  const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(CI_SECRET), new URLSearchParams({ resource: gw.mcpUrl() }), { DPoP, ...insecure })
  return { tokens: await oauth.processClientCredentialsResponse(as, client, response), DPoP }
}

async function mcpWithProof(gw: TestGateway, accessToken: string, dpopProof: string | string[] | undefined, scheme = 'DPoP') {
  const headers = new Headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `${scheme} ${accessToken}` })
  for (const p of dpopProof === undefined ? [] : [dpopProof].flat()) headers.append('dpop', p)
  const res = await fetch(gw.mcpUrl(), { method: 'POST', headers, body: ping })
  return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '', text: await res.text() }
}

t.test('DPOP-04/05/10: a bound machine token, used with proofs through the gateway (oauth4webapi)', async (t) => {
  const gw = await gateway(t)
  const metadata = (await (await fetch(`${gw.origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>
  t.same(metadata.dpop_signing_alg_values_supported, ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'], 'DPOP-10: metadata names the algorithms')
  const prm = (await (await fetch(gw.config.resources[0]!.metadataUrl)).json()) as Record<string, unknown>
  t.ok(Array.isArray(prm.dpop_signing_alg_values_supported), 'and so does the resource metadata (RFC 9728 §2)')

  const key = await keyPair()
  const { tokens, DPoP } = await machineToken(gw, key)
  t.equal(tokens.token_type, 'dpop', 'token_type DPoP (DPOP-04)')
  t.match(claimsOf(tokens.access_token), { cnf: { jkt: key.jkt } }, 'cnf.jkt is the proof key\'s thumbprint (RFC 7638)')

  const call = () =>
    oauth.protectedResourceRequest(tokens.access_token, 'POST', new URL(gw.mcpUrl()), new Headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' }), ping, { DPoP, ...insecure })
  const first = await call()
  t.equal(first.status, 200, 'a call with a fresh proof reaches the upstream (DPOP-05)')
  t.match(await first.text(), /"result"/)
  t.equal((await call()).status, 200, 'and the next call with its own fresh proof too')
  t.notOk(upstream.requests.some((r) => 'dpop' in r.headers || 'authorization' in r.headers), 'neither the proof nor the token goes upstream (UPS-01)')

  const asBearer = await mcpWithProof(gw, tokens.access_token, undefined, 'Bearer')
  t.equal(asBearer.status, 401, 'DPOP-06: the bound token as a bearer token is refused')
  t.match(asBearer.challenge, /DPoP error="invalid_token"/)

  const other = await keyPair()
  const foreign = await mcpWithProof(gw, tokens.access_token, await proof(other, { htm: 'POST', htu: gw.mcpUrl(), ath: await ath(tokens.access_token) }))
  t.equal(foreign.status, 401, 'DPOP-05: a proof by another key is refused')
  t.match(foreign.challenge, /DPoP error="invalid_dpop_proof".*algs="ES256/)
})

t.test('DPOP-01..03, 05, 07: every proof check at the resource refuses, with a DPoP challenge', async (t) => {
  const gw = await gateway(t)
  const key = await keyPair()
  const { tokens } = await machineToken(gw, key)
  const token = tokens.access_token
  const good = { htm: 'POST', htu: gw.mcpUrl(), ath: await ath(token) }
  const refused = async (why: string, proofs: string | string[] | undefined) => {
    const res = await mcpWithProof(gw, token, proofs)
    t.equal(res.status, 401, `${why}: 401`)
    t.match(res.challenge, /DPoP error="invalid_dpop_proof"/, `${why}: invalid_dpop_proof in a DPoP challenge`)
  }
  const { privateKey: hsKey } = { privateKey: new TextEncoder().encode('a-shared-secret-that-is-long-enough-for-hs256') }
  const privateJwk = await exportJWK(key.privateKey)
  await refused('no DPoP header', undefined)
  await refused('two DPoP headers', [await proof(key, good), await proof(key, good)])
  await refused('typ JWT (DPOP-01)', await proof(key, good, { typ: 'JWT' }))
  await refused('a symmetric alg (DPOP-01)', await new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), ...good }).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: key.publicJwk }).sign(hsKey))
  await refused('a private key in the header (DPOP-01)', await proof(key, good, { jwk: privateJwk }))
  await refused('no jwk (DPOP-01)', await proof(key, good, { jwk: undefined }))
  await refused('signed by another key than its jwk (DPOP-01)', await proof({ privateKey: (await keyPair()).privateKey, publicJwk: key.publicJwk }, good))
  await refused('htm GET (DPOP-02)', await proof(key, { ...good, htm: 'GET' }))
  await refused('htu of another resource (DPOP-02)', await proof(key, { ...good, htu: `${gw.origin}/other/mcp` }))
  await refused('iat ten minutes old (DPOP-03)', await proof(key, { ...good, iat: Math.floor(Date.now() / 1000) - 600 }))
  await refused('iat in the future (DPOP-03)', await proof(key, { ...good, iat: Math.floor(Date.now() / 1000) + 600 }))
  await refused('no ath (DPOP-05)', await proof(key, { htm: 'POST', htu: gw.mcpUrl() }))
  await refused('ath of another token (DPOP-05)', await proof(key, { ...good, ath: await ath('another-token') }))
  await refused('no jti', await proof(key, { ...good, jti: undefined }))
  await refused('not a JWS', 'not.a-proof')

  const once = await proof(key, { ...good, htu: `${gw.mcpUrl()}?ignored=1#frag` })
  t.equal((await mcpWithProof(gw, token, once)).status, 200, 'htu compared without query and fragment (DPOP-02)')
  await refused('the same proof again (DPOP-03)', once)
  t.equal(upstream.requests.length > 0, true)
  t.notOk(gw.logs.some((l) => Number(l.level) >= 50), 'no error-level log line: refusals, not failures')
})

t.test('DPOP-04, 07, 09 at the token endpoint', async (t) => {
  const gw = await gateway(t)
  const key = await keyPair()
  const tokenEndpoint = `${gw.config.issuer}/oauth/token`
  const post = async (client: string, proofs: string[]) => {
    const headers = new Headers({ 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client}:${CI_SECRET}`).toString('base64')}` })
    for (const p of proofs) headers.append('dpop', p)
    const res = await fetch(tokenEndpoint, { method: 'POST', headers, body: new URLSearchParams({ grant_type: 'client_credentials' }) })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }
  const plain = await post('ci-bot', [])
  t.equal(plain.body.token_type, 'Bearer', 'no proof: a bearer token, as before')
  t.notOk(claimsOf(plain.body.access_token as string).cnf)
  const bound = await post('ci-bot', [await proof(key, { htm: 'POST', htu: tokenEndpoint })])
  t.equal(bound.body.token_type, 'DPoP', 'a proof binds the token')
  const mustBind = await post('bound-bot', [])
  t.equal(mustBind.status, 400, 'DPOP-09: a dpop_bound_access_tokens client without a proof')
  t.equal(mustBind.body.error, 'invalid_dpop_proof')
  for (const [why, proofs] of [
    ['htu of the resource', [await proof(key, { htm: 'POST', htu: gw.mcpUrl() })]],
    ['htm GET', [await proof(key, { htm: 'GET', htu: tokenEndpoint })]],
    ['two proofs', [await proof(key, { htm: 'POST', htu: tokenEndpoint }), await proof(key, { htm: 'POST', htu: tokenEndpoint })]],
    ['garbage', ['garbage']],
  ] as const) {
    const res = await post('ci-bot', [...proofs])
    t.equal(res.status, 400, `${why}: 400`)
    t.equal(res.body.error, 'invalid_dpop_proof', `${why}: invalid_dpop_proof (DPOP-07)`)
    t.notOk(res.body.access_token, `${why}: nothing issued`)
  }
})

t.test('DPOP-04, 08: authorization code with dpop_jkt, and a public client\'s refresh token bound to the key', async (t) => {
  const h = await startHarness(t)
  const key = await keyPair()
  const other = await keyPair()
  const tokenEndpoint = `${h.gw.config.issuer}/oauth/token`
  const redeem = async (form: Record<string, string>, k?: typeof key) => {
    const headers = new Headers({ 'content-type': 'application/x-www-form-urlencoded' })
    if (k) headers.append('dpop', await proof(k, { htm: 'POST', htu: tokenEndpoint }))
    const res = await fetch(tokenEndpoint, { method: 'POST', headers, body: new URLSearchParams({ client_id: PUBLIC.id, ...form }) })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }
  const { code, verifier } = await h.code(PUBLIC, { extra: { dpop_jkt: key.jkt } })
  const codeForm = { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT }
  const wrongKey = await redeem(codeForm, other)
  t.equal(wrongKey.body.error, 'invalid_dpop_proof', 'DPOP-08: the proof must be by the dpop_jkt key')
  t.equal((await redeem(codeForm)).body.error, 'invalid_dpop_proof', 'DPOP-08: and a proof is required')
  const ok = await redeem(codeForm, key)
  t.equal(ok.status, 200, 'the refused attempts did not burn the code')
  t.equal(ok.body.token_type, 'DPoP')
  const refreshForm = { grant_type: 'refresh_token', refresh_token: ok.body.refresh_token as string }
  t.equal((await redeem(refreshForm)).body.error, 'invalid_dpop_proof', 'DPOP-04: the bound refresh token needs a proof')
  t.equal((await redeem(refreshForm, other)).body.error, 'invalid_dpop_proof', 'DPOP-04: by its own key')
  const refreshed = await redeem(refreshForm, key)
  t.equal(refreshed.status, 200, 'the refused attempts left the refresh token working')
  t.equal(refreshed.body.token_type, 'DPoP')
  t.equal((claimsOf(refreshed.body.access_token as string).cnf as { jkt: string }).jkt, key.jkt)

  // After the grace window (1 s here), the rotated token comes back. Without the key it proves
  // nothing: a thief of the token alone must not be able to end the person's grant.
  await new Promise((r) => setTimeout(r, 1_200))
  const thief = await redeem(refreshForm)
  t.equal(thief.body.error, 'invalid_dpop_proof', 'reuse without a proof by the bound key: refused')
  t.equal((await redeem(refreshForm, other)).body.error, 'invalid_dpop_proof', 'and with another key')
  const current = { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token as string }
  const stillLive = await redeem(current, key)
  t.equal(stillLive.status, 200, '... and revoked nothing: the current refresh token still works')
  // With the key, the old token's return is a real reuse (RFC 9700 §4.14.2): the grant ends.
  const reuse = await redeem(refreshForm, key)
  t.equal(reuse.body.error, 'invalid_grant', 'reuse by the key holder after the window')
  const after = await redeem({ grant_type: 'refresh_token', refresh_token: stillLive.body.refresh_token as string }, key)
  t.equal(after.body.error, 'invalid_grant', '... revoked the grant')

  const badJkt = await h.browser.get(
    `${h.gw.origin}/oauth/authorize?${new URLSearchParams({ response_type: 'code', client_id: PUBLIC.id, redirect_uri: REDIRECT, code_challenge: 'a'.repeat(43), code_challenge_method: 'S256', dpop_jkt: 'not a thumbprint' })}`,
  )
  t.equal(new URL(badJkt.location!).searchParams.get('error'), 'invalid_request', 'a malformed dpop_jkt is refused at /authorize')
})

t.test('DPOP-03: a proof is used once across two replicas sharing Redis', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = { type: 'redis', redis: redis.storeConfig() }
  const a = await gateway(t, store)
  // One public URL for both, as behind one load balancer: the proof's htu is the same everywhere.
  const b = await gateway(t, store, a.origin)
  const key = await keyPair()
  const { tokens } = await machineToken(a, key)
  const once = await proof(key, { htm: 'POST', htu: a.mcpUrl(), ath: await ath(tokens.access_token) })
  const send = async (gw: TestGateway) => {
    const res = await fetch(`${gw.origin}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `DPoP ${tokens.access_token}`, dpop: once },
      body: ping,
    })
    return res.status
  }
  t.equal(await send(a), 200, 'first use at replica A')
  t.equal(await send(b), 401, 'the same proof at replica B is a replay')
})

/** The SDK's machine provider with DPoP on, as its documentation shows. */
class DpopClientCredentials extends ClientCredentialsProvider {
  readonly #session = DpopSession.create()
  dpop(): Promise<DpopSession> {
    return this.#session
  }
}

t.test('the SDK 2.x ClientCredentialsProvider with dpop() gets and uses a bound token (SEP-1932)', async (t) => {
  const gw = await gateway(t)
  const provider = new DpopClientCredentials({ clientId: 'ci-bot', clientSecret: CI_SECRET, expectedIssuer: gw.config.issuer })
  const client = new Client({ name: 'sdk-dpop', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl()), { authProvider: provider }))
  t.ok((await client.listTools()).tools.length > 0, 'calls through the gateway succeed with DPoP proofs')
  await client.close()
  const tokens = provider.tokens()!
  t.match(tokens.token_type, /^dpop$/i, 'the token is DPoP-bound')
  t.ok((claimsOf(tokens.access_token).cnf as { jkt?: string } | undefined)?.jkt, 'with cnf.jkt')
})

t.test('DPOP-09: a metadata document with dpop_bound_access_tokens makes a client that must prove', async (t) => {
  const doc = { client_id: 'https://app.example.com/client.json', redirect_uris: ['https://app.example.com/cb'], dpop_bound_access_tokens: true }
  const bound = toClient(doc.client_id, 'app.example.com', doc, doc)
  t.equal(bound.dpopBound, true, 'declared: bound')
  t.equal(snapshotOf(bound)?.dpopBound, true, 'and the code\'s snapshot keeps it for the token endpoint (SEC-22)')
  t.notOk(toClient(doc.client_id, 'app.example.com', { ...doc, dpop_bound_access_tokens: 'yes' }, { ...doc, dpop_bound_access_tokens: 'yes' }).dpopBound, 'only the JSON true counts')
})

t.test('DPOP-07: server nonces (dpop.requireNonce), at the token endpoint and the resource', async (t) => {
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }], config: { ...machineClients(), dpop: { requireNonce: true } } })
  const key = await keyPair()
  const tokenEndpoint = `${gw.config.issuer}/oauth/token`
  const tokenRequest = async (nonce?: string) => {
    const res = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`ci-bot:${CI_SECRET}`).toString('base64')}`,
        dpop: await proof(key, { htm: 'POST', htu: tokenEndpoint, ...(nonce !== undefined && { nonce }) }),
      },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    })
    return { status: res.status, nonce: res.headers.get('dpop-nonce'), body: (await res.json()) as Record<string, unknown> }
  }
  const first = await tokenRequest()
  t.equal(first.status, 400, 'a proof without a nonce: 400')
  t.equal(first.body.error, 'use_dpop_nonce', 'use_dpop_nonce (RFC 9449 §8.1)')
  t.ok(first.nonce, 'with a DPoP-Nonce header')
  t.equal((await tokenRequest('0.forged-nonce-forged-nonce-forged-no')).body.error, 'use_dpop_nonce', 'a nonce the gateway never issued')
  const second = await tokenRequest(first.nonce!)
  t.equal(second.status, 200, 'the retry with the nonce gets a token')
  t.ok(second.nonce, 'and a fresh nonce for next time (§8.2)')
  const token = second.body.access_token as string

  const call = async (nonce?: string) => {
    const p = await proof(key, { htm: 'POST', htu: gw.mcpUrl(), ath: await ath(token), ...(nonce !== undefined && { nonce }) })
    const res = await fetch(gw.mcpUrl(), { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `DPoP ${token}`, dpop: p }, body: ping })
    return { status: res.status, nonce: res.headers.get('dpop-nonce'), challenge: res.headers.get('www-authenticate') ?? '' }
  }
  const refused = await call()
  t.equal(refused.status, 401, 'at the resource: 401')
  t.match(refused.challenge, /DPoP error="use_dpop_nonce"/, 'use_dpop_nonce in the DPoP challenge (§9)')
  t.ok(refused.nonce)
  t.equal((await call(refused.nonce!)).status, 200, 'the retry with the nonce reaches the upstream')

  // Both independent clients follow the protocol on their own.
  const provider = new DpopClientCredentials({ clientId: 'ci-bot', clientSecret: CI_SECRET, expectedIssuer: gw.config.issuer })
  const client = new Client({ name: 'sdk-dpop-nonce', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl()), { authProvider: provider }))
  t.ok((await client.listTools()).tools.length > 0, 'the SDK retries with the nonce, at both servers')
  await client.close()
})
