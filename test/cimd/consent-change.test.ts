/**
 * SEC-23: a remembered consent holds only for the metadata document it was given to. When a
 * re-fetched document changes a security member (redirect URIs, auth method, grant types,
 * scope, keys) or what the person was shown (name, logo), the consent page comes back, and the
 * change is an audit event; a document that did not change keeps the consent.
 *
 * In-process gateway with the development switches on (http documents on loopback) and the cache
 * off, so every authorization fetches the document as it is now.
 */
import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import type { AuditEvent } from '../../src/audit/events.js'
import { testPasswordHash } from '../helpers/passwords.js'
import { FormBrowser, type Visit } from '../helpers/form-browser.js'
import { startTestGateway } from '../helpers/gateway.js'
import { json, startHttpDocServer } from './servers.js'

const docs = await startHttpDocServer()
t.teardown(() => docs.close())
// A host name, not an IP literal: the URL rules refuse literals (CIMD-06).
const clientId = `http://localhost:${docs.port}/client.json`
// A web redirect URI: a loopback-only client is asked every time anyway (SEC-29, below).
const REDIRECT = 'https://app.example.com/callback'
const base = {
  client_id: clientId,
  client_name: 'Changing client',
  redirect_uris: [REDIRECT],
  grant_types: ['authorization_code'],
  token_endpoint_auth_method: 'none',
}
const publish = (doc: Record<string, unknown>) => docs.routes.set('/client.json', json(doc))
publish(base)

const gw = await startTestGateway(t, {
  resources: [{ upstream: 'http://127.0.0.1:9/mcp' }],
  config: {
    login: { static: { users: [{ username: 'alice', passwordHash: await testPasswordHash('alice-password') }] } },
    cimd: { enabled: true, allowHttp: true, allowPrivateAddresses: true, cache: { enabled: false }, trust: { any: true } },
  },
})
const events: AuditEvent[] = []
gw.gateway.audit.onEvent((e) => events.push(e))
const browser = new FormBrowser(gw.origin)

function authorizeUrl(id = clientId, redirectUri = REDIRECT): string {
  const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url')
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: id,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 's',
  })
  return `${gw.origin}/oauth/authorize?${q}`
}

const isConsentPage = (v: Visit) => v.status === 200 && /name="decision"/.test(v.html) && !/name="password"/.test(v.html)
const codeOf = (v: Visit) => (v.location ? new URL(v.location).searchParams.get('code') : null)

t.test('the first authorization asks; the same document again does not', async (t) => {
  const login = await browser.get(authorizeUrl())
  const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
  t.ok(isConsentPage(consent), 'consent page after login')
  t.ok(codeOf(await browser.submit(consent, { decision: 'allow' })), 'a code after Allow')
  const again = await browser.get(authorizeUrl())
  t.ok(codeOf(again), 'remembered: straight back with a code')
})

t.test('SEC-23: a changed redirect URI list brings the consent page back, and is an audit event', async (t) => {
  publish({ ...base, redirect_uris: [REDIRECT, 'https://new.example/callback'] })
  const page = await browser.get(authorizeUrl())
  t.ok(isConsentPage(page), 'asked again')
  const changed = events.find((e) => e.type === 'client.changed')
  t.match(changed, { type: 'client.changed', clientId, members: ['redirect_uris'] })
  t.ok(codeOf(await browser.submit(page, { decision: 'allow' })))
  t.ok(codeOf(await browser.get(authorizeUrl())), 'remembered for the new document')
})

t.test('SEC-23: a changed name (what the person saw) asks again too', async (t) => {
  publish({ ...base, redirect_uris: [REDIRECT, 'https://new.example/callback'], client_name: 'Renamed client' })
  const page = await browser.get(authorizeUrl())
  t.ok(isConsentPage(page), 'asked again')
  t.match(page.html, /Renamed client/)
  t.ok(codeOf(await browser.submit(page, { decision: 'allow' })))
})

t.test('the audit trail saw the remembered consents and the codes', async (t) => {
  const granted = events.filter((e) => e.type === 'consent.granted')
  t.same(
    granted.map((e) => (e as Extract<AuditEvent, { type: 'consent.granted' }>).remembered),
    [false, true, false, true, false],
  )
  t.equal(events.filter((e) => e.type === 'code.issued').length, 5)
})

t.test('SEC-29: a loopback-only metadata-document client sees the consent page every time', async (t) => {
  const loopbackId = `http://localhost:${docs.port}/cli.json`
  const loopback = 'http://127.0.0.1:43219/callback'
  docs.routes.set('/cli.json', json({ ...base, client_id: loopbackId, client_name: 'A CLI', redirect_uris: [loopback] }))
  const first = await browser.get(authorizeUrl(loopbackId, loopback))
  t.ok(isConsentPage(first), 'asked the first time')
  t.ok(codeOf(await browser.submit(first, { decision: 'allow' })))
  const again = await browser.get(authorizeUrl(loopbackId, loopback))
  t.ok(isConsentPage(again), 'asked again: a program on this computer could claim this client id')
  t.notMatch(again.html, /class="new"/, 'the scopes already allowed are not marked new')
})

t.test('SEC-29: authorizationServer.rememberConsentForLoopbackClients lets the operator skip it', async (t) => {
  const relaxed = await startTestGateway(t, {
    resources: [{ upstream: 'http://127.0.0.1:9/mcp' }],
    config: {
      login: { static: { users: [{ username: 'alice', passwordHash: await testPasswordHash('alice-password') }] } },
      cimd: { enabled: true, allowHttp: true, allowPrivateAddresses: true, cache: { enabled: false }, trust: { any: true } },
      authorizationServer: { rememberConsentForLoopbackClients: true },
    },
  })
  const loopbackId = `http://localhost:${docs.port}/cli.json`
  const loopback = 'http://127.0.0.1:43219/callback'
  const other = new FormBrowser(relaxed.origin)
  const url = (u: string) => u.replace(gw.origin, relaxed.origin)
  const login = await other.get(url(authorizeUrl(loopbackId, loopback)))
  const consent = await other.submit(login, { username: 'alice', password: 'alice-password' })
  t.ok(codeOf(await other.submit(consent, { decision: 'allow' })))
  t.ok(codeOf(await other.get(url(authorizeUrl(loopbackId, loopback)))), 'remembered')
})
