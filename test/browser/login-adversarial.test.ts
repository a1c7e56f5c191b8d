/**
 * Red team in a real browser (headless Chromium): another site (localhost is a different site
 * from 127.0.0.1) cannot frame the gateway's pages (BCP-14, MCPS-02), and its auto-submitting
 * forms cannot sign the person out, sign them in as the attacker (login CSRF) or answer a
 * consent (SameSite=Lax binding cookie + CSRF token + Origin check).
 */
import { createServer } from 'node:http'
import t from 'tap'
import { hashPassword } from '../../src/login/passwords.js'
import { authorizeUrl as authorizeUrlAt } from '../helpers/authorize-url.js'
import { chromiumForTests } from '../helpers/chromium.js'
import { startTestGateway } from '../helpers/gateway.js'
import { WebBrowser } from '../helpers/web-browser.js'
import { parseForm } from '../helpers/form-browser.js'

t.setTimeout(90_000)
const browser = await chromiumForTests(t)
if (browser) {
  const gw = await startTestGateway(t, {
    resources: [{ id: 'files', upstream: 'http://127.0.0.1:9/mcp' }],
    config: {
      login: {
        static: {
          users: [
            { username: 'alice', passwordHash: await hashPassword('alice-password') },
            { username: 'mallory', passwordHash: await hashPassword('mallory-password') },
          ],
        },
      },
      clients: [{ clientId: 'web', name: 'Web app', redirectUris: ['http://127.0.0.1/callback'] }],
    },
  })
  const authorizeUrl = () => authorizeUrlAt(gw.origin, { redirect_uri: 'http://127.0.0.1:1/callback', resource: gw.mcpUrl() })
  // The attacker's site: whatever page the test sets, served from localhost (another site).
  let attackPage = ''
  const attacker = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(attackPage))
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => attacker.close(() => resolve())))
  const attackerUrl = `http://localhost:${(attacker.address() as { port: number }).port}/`
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;')
  const autoPost = (action: string, fields: Record<string, string>) =>
    `<form id="f" method="post" action="${esc(action)}">${Object.entries(fields)
      .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
      .join('')}</form><script>document.getElementById('f').submit()</script>`

  t.test('BCP-14: another site cannot frame the login or consent page', async (t) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    attackPage = `<iframe id="x" src="${esc(authorizeUrl())}" width="600" height="600"></iframe>`
    const framed = page.waitForResponse((r) => r.url().startsWith(`${gw.origin}/oauth/authorize`))
    await page.goto(attackerUrl)
    const response = await framed
    t.match(response.headers()['content-security-policy'], /frame-ancestors 'none'/)
    await page.waitForTimeout(300)
    const frame = page.frames().find((f) => f !== page.mainFrame())!
    const content = await frame.content().catch(() => '')
    t.notMatch(content, /Sign in to continue/, 'the framed page is not rendered')
  })

  t.test('cross-site auto-submitted forms: no logout, no login CSRF, no consent', async (t) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    // Alice signs in at the gateway and sits on a consent page.
    await page.goto(authorizeUrl())
    await page.fill('#username', 'alice')
    await page.fill('#password', 'alice-password')
    await Promise.all([page.waitForLoadState(), page.click('button[type=submit]')])
    t.match(await page.content(), /Allow/, 'alice sees the consent page')
    const sessionBefore = (await context.cookies()).find((c) => c.name === 'gatehouse-session')!.value
    const consentFields = parseForm(await page.content()).fields

    // 1. A cross-site sign-out form.
    attackPage = autoPost(`${gw.origin}/oauth/logout`, {})
    const logout = page.waitForResponse((r) => r.url() === `${gw.origin}/oauth/logout`)
    await page.goto(attackerUrl)
    t.equal((await logout).status(), 403, 'cross-site logout refused')
    t.equal((await context.cookies()).find((c) => c.name === 'gatehouse-session')?.value, sessionBefore, 'session kept')

    // 2. Login CSRF: mallory's own pending request and credentials, posted from her site.
    const mallory = new WebBrowser()
    const malloryPage = await mallory.get(authorizeUrl())
    attackPage = autoPost(`${gw.origin}/oauth/authorize/login`, { ...parseForm(malloryPage.html).fields, username: 'mallory', password: 'mallory-password' })
    const login = page.waitForResponse((r) => r.url() === `${gw.origin}/oauth/authorize/login`)
    await page.goto(attackerUrl)
    t.equal((await login).status(), 403, 'login CSRF refused: the form is not bound to this browser')
    t.equal((await context.cookies()).find((c) => c.name === 'gatehouse-session')?.value, sessionBefore, 'alice is still alice')

    // 3. A consent answer from the attacker's site, even with the right request id and token.
    attackPage = autoPost(`${gw.origin}/oauth/authorize/consent`, { ...consentFields, decision: 'allow' })
    const consent = page.waitForResponse((r) => r.url() === `${gw.origin}/oauth/authorize/consent`)
    await page.goto(attackerUrl)
    const answer = await consent
    t.equal(answer.status(), 403, 'cross-site consent refused: SameSite=Lax keeps the binding cookie home')
    t.equal(gw.logs.filter((l) => l.audit === 'code.issued').length, 0, 'no code issued')

    // 4. The gateway's own sign-out page still works: the browser names the gateway as the form's
    // Origin (under Referrer-Policy no-referrer it would send "null", and the sign-out was refused).
    await page.goto(`${gw.origin}/oauth/logout`)
    const own = page.waitForResponse((r) => r.url() === `${gw.origin}/oauth/logout` && r.request().method() === 'POST')
    await page.getByRole('button', { name: 'Sign out' }).click()
    const ownAnswer = await own
    t.equal(ownAnswer.request().headers()['origin'], gw.origin, "the form's Origin is the gateway")
    t.equal(ownAnswer.status(), 200, 'signed out from the gateway\'s own page')
    t.notOk((await context.cookies()).find((c) => c.name === 'gatehouse-session')?.value, 'the session cookie is gone')
  })
}
