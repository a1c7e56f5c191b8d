/**
 * The operator console's pages (issue 17), behind the token: clients of all three kinds (a
 * metadata document cached by a real authorization request, with its fingerprint and the trust
 * rule that admitted it; a client that registered itself), `cimd inspect` step by step (accepted
 * and refused, audited, the cache untouched), the signing keys, the configuration in effect with
 * every credential masked, and health. Every page refuses anonymous visitors.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportPKCS8, generateKeyPair } from 'jose'
import t from 'tap'
import { FormBrowser } from '../helpers/form-browser.js'
import { json, startHttpDocServer } from '../cimd/servers.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { ADMIN_TOKEN, consoleGateway, csrfOf, signInWithToken } from './harness.js'

t.setTimeout(90_000)
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())
const docs = await startHttpDocServer()
t.teardown(() => docs.close())
const docBase = `http://localhost:${docs.port}/apps/`
const clientId = `${docBase}notes.json`
docs.routes.set('/apps/notes.json', json({ client_id: clientId, client_name: 'Notes <b>CIMD</b>', redirect_uris: ['https://notes.example/cb'], token_endpoint_auth_method: 'none' }))
docs.routes.set('/other.json', json({ client_id: `http://localhost:${docs.port}/other.json`, redirect_uris: ['https://other.example/cb'] }))

const gw = await consoleGateway(t, upstream.url, {
  cimd: { enabled: true, allowHttp: true, allowPrivateAddresses: true, trust: { allow: [{ prefix: docBase }] } },
  registration: { enabled: true },
})
const admin = new FormBrowser(gw.origin)
t.equal((await signInWithToken(admin, ADMIN_TOKEN)).status, 303, 'signed in with the token')
const page = async (path: string) => {
  const visit = await admin.get(`${gw.origin}${path}`)
  if (visit.status !== 200) throw new Error(`${path} answered ${visit.status}`)
  return visit.html
}

t.test('every page refuses an anonymous visitor', async (t) => {
  for (const path of ['/admin/clients', '/admin/cimd', '/admin/keys', '/admin/config', '/admin/health']) {
    const res = await fetch(`${gw.origin}${path}`)
    t.equal(res.status, 401, path)
    t.notMatch(await res.text(), /<nav|notes\.json|upstream-secret|data-kid/)
  }
  t.equal((await new FormBrowser(gw.origin).post('/admin/cimd', { url: clientId, csrf: 'x' }, { origin: gw.origin })).status, 401)
})

t.test('clients: pre-registered, self-registered, and a cached metadata document with its fingerprint and trust rule', async (t) => {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: 'https://notes.example/cb',
    code_challenge: createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url'),
    code_challenge_method: 'S256',
    state: 's',
  })
  t.equal((await fetch(`${gw.origin}/oauth/authorize?${q}`, { redirect: 'manual' })).status, 200, 'a real authorization request resolves and caches the document')
  const registered = await fetch(`${gw.origin}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'Self-registered app', redirect_uris: ['http://127.0.0.1:5555/cb'], token_endpoint_auth_method: 'none' }),
  })
  t.equal(registered.status, 201)
  const dcrId = ((await registered.json()) as { client_id: string }).client_id

  const html = await page('/admin/clients')
  t.match(html, /<code>notes-app<\/code><\/td><td>The notes-app/, 'pre-registered')
  t.match(html, new RegExp(`data-client="${dcrId}"[\\s\\S]*?Self-registered app`), 'self-registered')
  t.match(html, /data-client="http:\/\/localhost:\d+\/apps\/notes\.json"/, 'the cached document')
  t.match(html, /Notes &#60;b&#62;CIMD&#60;\/b&#62;/, 'its name escaped')
  t.notMatch(html, /<b>CIMD/)
  t.match(html, new RegExp(`admitted by cimd\\.trust\\.allow\\[0\\] \\(prefix ${docBase.replace(/[.]/g, '\\.')}\\)`), 'the rule that admitted it')
  t.match(html, /Fingerprint<\/dt><dd><code>[A-Za-z0-9_-]{43}<\/code>/)
  t.match(html, /<details><summary>Cached document<\/summary><pre>\{/)
})

t.test('cimd inspect: the decision step by step, accepted or refused; audited; never written to the cache', async (t) => {
  const form = await page('/admin/cimd')
  const csrf = csrfOf(form)
  const other = `http://localhost:${docs.port}/other.json`
  const refused = await admin.post('/admin/cimd', { csrf, url: other }, { origin: gw.origin })
  t.equal(refused.status, 200)
  t.match(refused.html, /id="verdict">Refused/)
  t.match(refused.html, /REFUSED \(invalid_client\) at step trust, rule cimd\.trust\.allow \(no entry matches\)/, 'the step and the rule that refused it')
  const accepted = await admin.post('/admin/cimd', { csrf, url: clientId }, { origin: gw.origin })
  t.match(accepted.html, /id="verdict">Accepted/)
  t.match(accepted.html, /client id\s+http:\/\/localhost/)
  t.match(gw.logs.filter((l) => l.audit === 'admin.cimd_inspected'), [
    { actor: 'admin-token', clientId: other, accepted: false },
    { actor: 'admin-token', clientId, accepted: true },
  ])
  t.notMatch(await page('/admin/clients'), /other\.json/, 'the inspected document was not cached')
  t.equal((await admin.post('/admin/cimd', { url: clientId }, { origin: gw.origin })).status, 403, 'no CSRF token')
  t.equal((await admin.post('/admin/cimd', { csrf, url: clientId }, { origin: 'https://evil.example' })).status, 403, 'a foreign Origin')
})

t.test('keys: each key with its role, and the rotation steps', async (t) => {
  const html = await page('/admin/keys')
  t.match(html, /data-kid="[^"]+"><td><code>[^<]+<\/code><\/td><td>ES256<\/td><td>active: signs new tokens/)
  t.match(html, /generated development key/)
  t.match(html, /gatehouse keys rotate --config FILE --out NEW_KEY_FILE/)
})

t.test('configuration: the resources, and the YAML in effect with every credential masked', async (t) => {
  const html = await page('/admin/config')
  t.match(html, /data-resource="[^"]+"/)
  t.match(html, /Who may use it/)
  t.match(html, /value: &#34;\*\*\*\*&#34;|value: \*\*\*\*/, 'the upstream secret masked')
  t.notMatch(html, /upstream-secret-value/)
  t.notMatch(html, /scrypt\$/, 'no password hash')
  t.notMatch(html, new RegExp(createHash('sha256').update(ADMIN_TOKEN).digest('hex')), 'not even the admin token\'s hash')
  t.match(html, /tokenEndpointAuthMethod: none|publicUrl: http/)
})

t.test('health: the store answers; the rate limits in effect', async (t) => {
  const html = await page('/admin/health')
  t.match(html, /id="store-state">up \(answered a ping in \d+ ms\)/)
  t.match(html, /id="rate-limits">enabled: true/)
})

t.test('keys: configured keys by role and source, the active one first', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-admin-keys-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const files: string[] = []
  for (const name of ['old', 'new']) {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true })
    const file = join(dir, `${name}.pem`)
    await writeFile(file, await exportPKCS8(privateKey), { mode: 0o600 })
    files.push(file)
  }
  const keyed = await consoleGateway(t, upstream.url, {
    keys: [
      { file: files[0], kid: 'es256-old', alg: 'ES256', active: false },
      { file: files[1], kid: 'es256-new', alg: 'ES256', active: true },
    ],
  })
  const browser = new FormBrowser(keyed.origin)
  await signInWithToken(browser, ADMIN_TOKEN)
  const html = (await browser.get(`${keyed.origin}/admin/keys`)).html
  const rows = [...html.matchAll(/<tr data-kid="([^"]+)">([\s\S]*?)<\/tr>/g)].map((m) => [m[1], m[2]])
  t.same(rows.map((r) => r[0]), ['es256-new', 'es256-old'])
  t.match(rows[0]![1], new RegExp(`active: signs new tokens[\\s\\S]*file ${files[1]!.replace(/[.]/g, '\\.')}`))
  t.match(rows[1]![1], new RegExp(`verify only[\\s\\S]*file ${files[0]!.replace(/[.]/g, '\\.')}`))
  t.notMatch(html, /generated development key/)
})
