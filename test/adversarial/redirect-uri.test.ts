/**
 * Red team: redirect URI tricks at the authorization endpoint (O21-02, O21-03, O21-04, O21-09,
 * BCP-01, BCP-04, SEC-28, MCPS-04). Every refused form must end on the gateway's own page (400,
 * HTML, no Location); an accepted one continues to the login page. Real HTTP, real gateway.
 */
import { createHash, randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { testPasswordHash } from '../helpers/passwords.js'
import { authorizeUrl as authorizeUrlAt, type AuthorizeParams } from '../helpers/authorize-url.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { startTestGateway } from '../helpers/gateway.js'

const verifier = randomBytes(32).toString('base64url')
const challenge = createHash('sha256').update(verifier).digest('base64url')
const gw = await startTestGateway(t, {
  resources: [{ upstream: 'http://127.0.0.1:9/mcp' }],
  config: {
    login: { static: { users: [{ username: 'alice', passwordHash: await testPasswordHash('alice-password') }] } },
    clients: [
      { clientId: 'loop', name: 'Loop', redirectUris: ['http://127.0.0.1/callback', 'http://localhost/callback', 'http://[::1]/callback'] },
      { clientId: 'loop-ip', name: 'Loop IP only', redirectUris: ['http://127.0.0.1:7000/cb?mode=a'] },
      { clientId: 'web', name: 'Web', redirectUris: ['https://app.example.com/cb'] },
      { clientId: 'multi', name: 'Multi', redirectUris: ['https://app.example.com/a', 'https://app.example.com/b'] },
      { clientId: 'native', name: 'Native', redirectUris: ['com.example.app:/oauth/cb'] },
    ],
  },
})

const authorizeUrl = (params: AuthorizeParams, extra: [string, string][] = []) =>
  authorizeUrlAt(gw.origin, { code_challenge: challenge, state: 'st', resource: gw.mcpUrl(), ...params }, extra)

const get = (url: string) => fetch(url, { redirect: 'manual' })

async function refusedOnPage(t: Test, what: string, url: string) {
  const res = await get(url)
  const html = await res.text()
  t.equal(res.status, 400, `${what}: 400`)
  t.equal(res.headers.get('location'), null, `${what}: no redirect (O21-09)`)
  t.match(res.headers.get('content-type'), /^text\/html/, `${what}: the gateway's page`)
  t.notMatch(html, /evil/i, `${what}: the refused URI is not reflected`)
}

async function accepted(t: Test, what: string, url: string) {
  const res = await get(url)
  const html = await res.text()
  t.equal(res.status, 200, `${what}: accepted (login page)`)
  t.match(html, /action="\/oauth\/authorize\/login"/, `${what}: login form`)
}

t.test('O21-03 MCPS-04 BCP-01: a non-loopback redirect URI matches only as the exact registered string', async (t) => {
  const refused: [string, string][] = [
    ['host case', 'https://APP.example.com/cb'],
    ['scheme case', 'HTTPS://app.example.com/cb'],
    ['path case', 'https://app.example.com/CB'],
    ['trailing slash', 'https://app.example.com/cb/'],
    ['dot segments', 'https://app.example.com/x/../cb'],
    ['encoded dot segments', 'https://app.example.com/x/%2e%2e/cb'],
    ['percent-encoded path character', 'https://app.example.com/%63b'],
    ['encoded slash traversal to evil', 'https://app.example.com/cb%2F..%2Fevil'],
    ['backslash', 'https://app.example.com\\cb'],
    ['userinfo https://good@evil', 'https://app.example.com@evil.example/cb'],
    ['userinfo https://evil@good', 'https://evil.example@app.example.com/cb'],
    ['backslash userinfo', 'https://app.example.com\\@evil.example/cb'],
    ['fragment', 'https://app.example.com/cb#evil'],
    ['empty fragment', 'https://app.example.com/cb#'],
    ['empty query', 'https://app.example.com/cb?'],
    ['added query', 'https://app.example.com/cb?next=https://evil.example'],
    ['explicit default port', 'https://app.example.com:443/cb'],
    ['another port on a non-loopback host (BCP-01)', 'https://app.example.com:8443/cb'],
    ['http on a non-loopback host (BCP-04)', 'http://app.example.com/cb'],
    ['trailing dot host', 'https://app.example.com./cb'],
    ['trailing space', 'https://app.example.com/cb '],
    ['encoded trailing space', 'https://app.example.com/cb%20'],
    ['suffix host', 'https://app.example.com.evil.example/cb'],
    ['javascript: scheme', 'javascript:alert(1)//https://app.example.com/cb'],
    ['data: scheme', 'data:text/html,<script>alert(1)</script>'],
  ]
  for (const [what, uri] of refused) await refusedOnPage(t, what, authorizeUrl({ redirect_uri: uri }))
  await accepted(t, 'the exact registered URI', authorizeUrl({}))
})

t.test('O21-04 SEC-28: loopback redirect URIs ignore only the port; everything else compares as written', async (t) => {
  for (const uri of ['http://127.0.0.1:43210/callback', 'http://localhost:1/callback', 'http://[::1]:65535/callback', 'http://127.0.0.1/callback']) {
    await accepted(t, uri, authorizeUrl({ client_id: 'loop', redirect_uri: uri }))
  }
  await accepted(t, 'registered port and query, another port', authorizeUrl({ client_id: 'loop-ip', redirect_uri: 'http://127.0.0.1:7001/cb?mode=a' }))
  const refused: [string, string][] = [
    ['127.0.0.2 (another loopback address, not registered)', 'http://127.0.0.2:5555/callback'],
    ['IPv4-mapped IPv6 [::ffff:127.0.0.1]', 'http://[::ffff:127.0.0.1]:5555/callback'],
    ['IPv4-mapped IPv6 in hex', 'http://[::ffff:7f00:1]:5555/callback'],
    ['uncompressed ::1', 'http://[0:0:0:0:0:0:0:1]:5555/callback'],
    ['localhost. (trailing dot)', 'http://localhost.:5555/callback'],
    ['LOCALHOST (case; O21-03 compares strings)', 'http://LOCALHOST:5555/callback'],
    ['127.1 short form', 'http://127.1:5555/callback'],
    ['decimal 2130706433', 'http://2130706433:5555/callback'],
    ['hex 0x7f000001', 'http://0x7f000001:5555/callback'],
    ['octal 0177.0.0.1', 'http://0177.0.0.1:5555/callback'],
    ['dot segments hidden by URL parsing', 'http://127.0.0.1:5555/x/../callback'],
    ['backslash path', 'http://127.0.0.1:5555\\callback'],
    ['trailing slash', 'http://127.0.0.1:5555/callback/'],
    ['path case', 'http://127.0.0.1:5555/Callback'],
    ['added query', 'http://127.0.0.1:5555/callback?x=1'],
    ['fragment', 'http://127.0.0.1:5555/callback#x'],
    ['userinfo', 'http://evil@127.0.0.1:5555/callback'],
    ['port-shaped userinfo https://good@evil', 'http://127.0.0.1:5555@evil.example/callback'],
    ['https instead of http', 'https://127.0.0.1:5555/callback'],
    ['port out of range', 'http://127.0.0.1:99999/callback'],
    ['empty port', 'http://127.0.0.1:/callback'],
    ['leading zeros in port', 'http://127.0.0.1:005555/callback'],
  ]
  for (const [what, uri] of refused) await refusedOnPage(t, what, authorizeUrl({ client_id: 'loop', redirect_uri: uri }))
  // SEC-28: hosts compare exactly; the loopback port exception never changes the host.
  await refusedOnPage(t, 'localhost asked, only 127.0.0.1 registered', authorizeUrl({ client_id: 'loop-ip', redirect_uri: 'http://localhost:7000/cb?mode=a' }))
  await refusedOnPage(t, 'registered query dropped', authorizeUrl({ client_id: 'loop-ip', redirect_uri: 'http://127.0.0.1:7000/cb' }))
  await refusedOnPage(t, 'registered query changed', authorizeUrl({ client_id: 'loop-ip', redirect_uri: 'http://127.0.0.1:7000/cb?mode=b' }))
  // The port exception is for loopback hosts only (BCP-01).
  await refusedOnPage(t, 'non-loopback with a port added', authorizeUrl({ client_id: 'web', redirect_uri: 'https://app.example.com:1234/cb' }))
})

t.test('RFC 8252 §7.1: a native private-use scheme matches exactly; other schemes never', async (t) => {
  await accepted(t, 'the registered private-use URI', authorizeUrl({ client_id: 'native', redirect_uri: 'com.example.app:/oauth/cb' }))
  for (const [what, uri] of [
    ['authority form', 'com.example.app://oauth/cb'],
    ['scheme case', 'COM.EXAMPLE.APP:/oauth/cb'],
    ['another path', 'com.example.app:/oauth/cb/evil'],
    ['dot segments', 'com.example.app:/oauth/x/../cb'],
    ['a look-alike scheme', 'com.example.app.evil:/oauth/cb'],
    ['javascript:', 'javascript:alert(document.domain)'],
    ['file:', 'file:///etc/passwd'],
  ] as const) {
    await refusedOnPage(t, what, authorizeUrl({ client_id: 'native', redirect_uri: uri }))
  }
})

t.test('O21-09 RFC 6749 §3.1: duplicate or missing parameters never lead to a redirect', async (t) => {
  await refusedOnPage(t, 'redirect_uri omitted with several registered', authorizeUrl({ client_id: 'multi', redirect_uri: undefined }))
  await refusedOnPage(t, 'redirect_uri twice (both registered)', authorizeUrl({ client_id: 'multi', redirect_uri: 'https://app.example.com/a' }, [['redirect_uri', 'https://app.example.com/b']]))
  await refusedOnPage(t, 'redirect_uri twice (one evil)', authorizeUrl({}, [['redirect_uri', 'https://evil.example/cb']]))
  await refusedOnPage(t, 'client_id twice', authorizeUrl({}, [['client_id', 'loop']]))
  await refusedOnPage(t, 'empty redirect_uri with several registered', authorizeUrl({ client_id: 'multi', redirect_uri: '' }))
  await refusedOnPage(t, 'an unknown client with an evil redirect', authorizeUrl({ client_id: 'nobody', redirect_uri: 'https://evil.example/cb' }))
  // One registered URI: omitted is fine (RFC 6749 §3.1.2.3), and the code goes exactly there.
  await accepted(t, 'redirect_uri omitted with one registered', authorizeUrl({ redirect_uri: undefined }))
})

t.test('O21-02: a code is delivered to the requested loopback URI as written, registered query kept', async (t) => {
  const browser = new FormBrowser(gw.origin)
  let page = await browser.get(authorizeUrl({ client_id: 'loop-ip', redirect_uri: 'http://127.0.0.1:7123/cb?mode=a', scope: 'mcp' }))
  page = await browser.submit(page, { username: 'alice', password: 'alice-password' })
  if (page.status === 200) page = await browser.submit(page, { decision: 'allow' })
  t.equal(page.status, 303)
  const target = new URL(page.location!)
  t.equal(`${target.origin}${target.pathname}`, 'http://127.0.0.1:7123/cb', 'the port asked for, the registered path')
  t.equal(target.searchParams.get('mode'), 'a', 'O21-02: the registered query is kept')
  t.ok(target.searchParams.get('code'), 'a code')
  t.equal(target.searchParams.get('iss'), gw.config.issuer, 'ISS-01')
})

t.test('BCP-05: no CORS on the authorization endpoint', async (t) => {
  const res = await fetch(authorizeUrl({}), { redirect: 'manual', headers: { origin: 'https://evil.example' } })
  await res.text()
  t.equal(res.headers.get('access-control-allow-origin'), null)
  const preflight = await fetch(`${gw.origin}/oauth/authorize`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } })
  await preflight.text()
  t.equal(preflight.headers.get('access-control-allow-origin'), null, 'no preflight approval either')
  t.not(preflight.status, 500)
})

t.test('no 500 and nothing unexpected in the log', async (t) => {
  t.notMatch(gw.logText(), /"level":50/, 'no error-level log line')
})
