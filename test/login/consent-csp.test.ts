/**
 * The consent page's CSP `form-action` and discovery. Chromium applies form-action to the
 * redirect that follows a form POST, so the page must name the origin of the IdP's
 * authorization endpoint, which only discovery tells and which can differ from the issuer's
 * (test/browser/oidc-login.test.ts shows the blocked click in Chromium). The page therefore
 * waits for discovery, but only briefly: an IdP that never answers must not hold it long.
 */
import { createServer, type Socket } from 'node:net'
import t from 'tap'
import { reservePort } from '../helpers/ports.js'
import { approve, loginSetup } from './harness.js'
import { startTestIdp } from './idp.js'

t.setTimeout(60_000)
const upstreamUrl = 'http://127.0.0.1:9/mcp' // never called: only the authorization pages are used

function formAction(csp: string | null): string[] {
  const directive = (csp ?? '').split(';').map((d) => d.trim()).find((d) => d.startsWith('form-action '))
  return directive ? directive.split(/\s+/).slice(1) : []
}

t.test('a fresh gateway: its first consent page names an authorization endpoint on another origin than the issuer', async (t) => {
  const port = await reservePort(t)
  const idp = await startTestIdp(t, { redirectUris: [`http://127.0.0.1:${port}/oauth/callback/corp`], separateAuthorizationOrigin: true })
  t.not(idp.authorizationOrigin, idp.issuer, 'the IdP sends browsers to another origin than its issuer')
  const setup = await loginSetup(t, { upstreamUrl, idp, port })
  const browser = setup.browser()
  t.equal(idp.requests.length, 0, 'nothing has asked the IdP anything yet')
  const { page } = await setup.authorize(browser)
  t.equal(page.status, 200)
  t.ok(formAction(page.headers.get('content-security-policy')).includes(idp.authorizationOrigin), 'the first page already names it')
  const toIdp = await approve(browser, page)
  t.equal(toIdp.status, 303)
  t.equal(new URL(toIdp.location!).origin, idp.authorizationOrigin, 'where Allow redirects is what the page named')
})

t.test('an IdP that accepts connections and never answers holds the consent page only briefly', async (t) => {
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => silent.close(() => resolve()))
  })
  const issuer = `https://127.0.0.1:${(silent.address() as { port: number }).port}`
  // The IdP helper is only there for its CA file; the provider points at the silent server.
  const setup = await loginSetup(t, { upstreamUrl, provider: { issuer, timeoutSeconds: 30 } })
  const started = Date.now()
  const { page } = await setup.authorize(setup.browser())
  const elapsed = Date.now() - started
  t.equal(page.status, 200, 'the consent page renders')
  t.ok(elapsed >= 2_500 && elapsed < 6_000, `after waiting for discovery about 3 s, not the 30 s IdP timeout (${elapsed} ms)`)
  t.ok(formAction(page.headers.get('content-security-policy')).includes(issuer), 'naming the issuer origin meanwhile')
  t.ok(sockets.size > 0, 'discovery was under way')
})
