/**
 * The pages a person sees at the authorization endpoint, in a real browser (headless Chromium):
 * login → consent → back to the client with a code; a wrong password; Deny; a remembered
 * session and consent that skip both pages; a step-up to a new scope that asks again.
 * Also what only a browser shows: the response headers the pages carry, that they load
 * nothing from anywhere else, that their inline style passes their own CSP, and the basics
 * of accessibility (labels, lang, title, keyboard reachability).
 *
 * Screenshots land in test-artifacts/browser/ (gitignored), named in the test output.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Browser, Page, Response } from 'playwright-core'
import t, { type Test } from 'tap'
import { hashPassword } from '../../src/login/passwords.js'
import { chromiumForTests } from '../helpers/chromium.js'
import { startTestGateway } from '../helpers/gateway.js'
import { arrival as arrivalAt, checkPageHeaders, checkStyleApplied, DARK_PHONE, screenshot, startCallbackServer, tabOrder as tabOrderOf } from './page-checks.js'

const browser = await chromiumForTests(t)
if (browser) await suite(browser)

async function suite(browser: Browser): Promise<void> {
  const callback = await startCallbackServer(t)
  const gw = await startTestGateway(t, {
    resources: [
      {
        name: 'Team files',
        upstream: 'http://127.0.0.1:9/mcp', // never called: only the authorization pages are used
        scopes: [
          { name: 'mcp', description: 'Use the tools' },
          { name: 'admin', description: 'Administer' },
        ],
      },
    ],
    config: {
      login: {
        static: {
          users: [
            { username: 'alice', passwordHash: await hashPassword('alice-password'), name: 'Alice', email: 'alice@example.com' },
            // Other people, so that alice's remembered consent does not skip their consent pages.
            { username: 'bob', passwordHash: await hashPassword('bob-password'), name: 'Bob', email: 'bob@example.com' },
            { username: 'carol', passwordHash: await hashPassword('carol-password'), name: 'Carol' },
          ],
        },
      },
      clients: [{ clientId: 'inspector', name: 'MCP Inspector', redirectUris: ['http://127.0.0.1/callback'] }],
    },
  })
  const redirectUri = `${callback.origin}/callback`
  const allowedOrigins = new Set([gw.origin, callback.origin])

  /** A fresh context (no cookies) whose every request and console error is recorded. */
  async function newContext(t: Test, options: Parameters<Browser['newContext']>[0] = {}) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 760 }, ...options })
    context.setDefaultTimeout(10_000)
    t.teardown(() => context.close())
    const requests: { url: string; type: string }[] = []
    const consoleErrors: string[] = []
    context.on('request', (r) => requests.push({ url: r.url(), type: r.resourceType() }))
    context.on('console', (m) => {
      // Chromium logs every 4xx document; the wrong-password page is a 401 on purpose.
      if (m.type() === 'error' && !m.text().includes('status of 401 (Unauthorized)')) consoleErrors.push(m.text())
    })
    context.on('weberror', (e) => consoleErrors.push(String(e.error())))
    const page = await context.newPage()
    /** Nothing but the gateway and the client's redirect target was ever asked for; no CSP violation. */
    const checkTraffic = (t: Test) => {
      const foreign = requests.filter((r) => !allowedOrigins.has(new URL(r.url).origin))
      t.same(foreign, [], 'no request left the gateway and the redirect target (no external resources)')
      const subresources = requests.filter((r) => r.type !== 'document')
      t.same(subresources, [], 'the pages load no subresources at all (inline style only)')
      t.same(consoleErrors, [], 'no console error (a CSP violation would show here)')
    }
    return { context, page, requests, checkTraffic }
  }

  /** An authorization URL like a client builds it, with its PKCE verifier. */
  function authorization(scope: string, state: string) {
    const verifier = randomBytes(32).toString('base64url')
    const url = new URL('/oauth/authorize', gw.origin)
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'inspector',
      redirect_uri: redirectUri,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state,
      scope,
      resource: gw.mcpUrl(),
    }).toString()
    return { url: url.href, verifier, state }
  }

  /**
   * Does something that posts a form to `path`; resolves with the gateway's answer to it once
   * the document it leads to (that answer, or where it redirects) has loaded.
   */
  async function posting(page: Page, path: string, action: () => Promise<void>): Promise<Response> {
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
      page.waitForEvent('load'),
      action(),
    ])
    return response
  }

  const cspOf = async (response: Response) => (await response.allHeaders())['content-security-policy'] ?? ''

  /** lang, a title, one h1, a label for every input, the page's own style applied (its CSP hash is right). */
  async function checkPageBasics(t: Test, page: Page, title: RegExp) {
    t.equal(await page.locator('html').getAttribute('lang'), 'en', 'the page declares its language')
    t.match(await page.title(), title, 'the page has a meaningful title')
    t.equal(await page.locator('h1').count(), 1, 'one h1')
    const inputs = page.locator('input:not([type=hidden]), select, textarea')
    for (const input of await inputs.all()) {
      const id = await input.getAttribute('id')
      t.ok(id, 'every visible input has an id')
      const label = page.locator(`label[for="${id}"]`)
      t.equal(await label.count(), 1, `input #${id} has a label`)
      const text = (await label.innerText()).trim()
      t.ok(text, `the label of #${id} says something`)
      t.equal(await page.getByLabel(text, { exact: true }).getAttribute('id'), id, `the label "${text}" names #${id}`)
    }
    const snapshot = await page.locator('body').ariaSnapshot()
    t.notMatch(snapshot, /- (textbox|button)(\s*\[|:|$)/m, 'no unnamed textbox or button in the accessibility tree')
    await checkStyleApplied(t, page)
    const overflow = await page.evaluate<boolean>('document.documentElement.scrollWidth > document.documentElement.clientWidth')
    t.notOk(overflow, 'nothing overflows horizontally')
  }

  /** The focused element, e.g. `input#username`, `button[allow] Allow`; `body` when none. */
  const focused = (page: Page) =>
    page.evaluate<string>(`(() => {
      const el = document.activeElement
      if (!el || el === document.body) return 'body'
      const tag = el.tagName.toLowerCase()
      if (tag === 'button') return 'button' + (el.value ? '[' + el.value + ']' : '') + ' ' + el.textContent.trim()
      return tag + (el.id ? '#' + el.id : '')
    })()`)

  const tabOrder = (page: Page, presses: number) => tabOrderOf(page, presses, focused)

  const arrival = (t: Test, page: Page, before: number) => arrivalAt(t, page, callback, before)

  async function exchange(code: string, verifier: string) {
    const res = await fetch(`${gw.origin}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        client_id: 'inspector',
        code_verifier: verifier,
        resource: gw.mcpUrl(),
      }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }

  async function signIn(page: Page, username: string, password: string): Promise<Response> {
    // Typed with the keyboard into the fields found by their labels, submitted with Enter.
    await page.getByLabel('Username', { exact: true }).click()
    await page.keyboard.type(username)
    await page.getByLabel('Password', { exact: true }).click()
    await page.keyboard.type(password)
    return posting(page, '/oauth/authorize/login', () => page.keyboard.press('Enter'))
  }

  async function definitions(page: Page): Promise<Record<string, string>> {
    const terms = await page.locator('dl > dt').allInnerTexts()
    const values = await page.locator('dl > dd').allInnerTexts()
    return Object.fromEntries(terms.map((term, i) => [term.trim(), (values[i] ?? '').trim()]))
  }

  await t.test('one browser: login, consent, remembered session and consent, step-up', async (t) => {
    const { context, page, checkTraffic } = await newContext(t)

    await t.test('first authorization: login page, consent page, Allow, code', async (t) => {
      const first = authorization('mcp', 'first/state + &=?')
      const loginResponse = (await page.goto(first.url))!
      t.equal(loginResponse.status(), 200)
      t.equal(new URL(page.url()).pathname, '/oauth/authorize')
      await checkPageHeaders(t, loginResponse, 'login page')
      t.match(await cspOf(loginResponse), `form-action 'self' ${callback.origin}`, 'login form may land on the client')
      await checkPageBasics(t, page, /^Sign in · Gatehouse$/)
      t.equal(await page.locator('h1').innerText(), 'Sign in to continue')
      t.match(await page.locator('main').innerText(), 'MCP Inspector (registered by the operator) wants to use Team files on your behalf.')
      t.equal(await focused(page), 'input#username', 'the username field has focus on arrival')
      await screenshot(t, page, 'login')
      t.same(await tabOrder(page, 2), ['input#password', 'button Sign in'], 'Tab reaches the password and Sign in')

      const consentResponse = await signIn(page, 'alice', 'alice-password')
      t.equal(consentResponse.status(), 200, 'login accepted: the consent page')
      await checkPageHeaders(t, consentResponse, 'consent page')
      t.match(await cspOf(consentResponse), `form-action 'self' ${callback.origin}`, 'consent form may land on the client')
      await checkPageBasics(t, page, /^Allow access · Gatehouse$/)
      t.equal(await page.locator('h1').innerText(), 'Allow MCP Inspector to use Team files?')
      t.match(await page.locator('main').innerText(), 'Signed in as alice@example.com')
      const shown = await definitions(page)
      t.match(shown, {
        Application: /^MCP Inspector\b/,
        'Client ID': 'inspector',
        'Sends you back to': callback.origin,
        'MCP server': gw.mcpUrl(),
      })
      t.equal(await page.locator('dd strong').innerText(), callback.origin, 'the redirect origin is set in bold')
      t.same(await page.locator('ul.scopes > li').allInnerTexts(), ['mcp — Use the tools'], 'each scope with its description')
      t.equal(await page.locator('ul.scopes .badge').count(), 0, 'nothing is new on a first consent')
      const warning = page.getByRole('note')
      t.match(await warning.innerText(), 'This application runs on your computer.', 'the loopback warning')
      t.match(await warning.innerText(), `listening on ${new URL(callback.origin).host}`)
      t.same(await tabOrder(page, 2), ['button[allow] Allow', 'button[deny] Deny'], 'Tab reaches Allow, then Deny')
      await page.locator('body').click({ position: { x: 5, y: 5 } }) // drop the focus again for the screenshot
      await screenshot(t, page, 'consent')

      const before = callback.received.length
      const back = await posting(page, '/oauth/authorize/consent', () => page.getByRole('button', { name: 'Allow' }).click())
      t.equal(back.status(), 303, 'Allow answers with a 303 to the client')
      t.match((await back.allHeaders())['cache-control'], /no-store/, 'the redirect that carries the code is not stored')
      const query = await arrival(t, page, before)
      t.ok(query.get('code'), 'a code')
      t.equal(query.get('state'), first.state, 'the state, unchanged')
      t.equal(query.get('iss'), gw.origin, 'iss is the gateway origin (RFC 9207)')
      const token = await exchange(query.get('code')!, first.verifier)
      t.equal(token.status, 200, 'the code redeems at the token endpoint')
      t.equal(token.body.scope, 'mcp')
    })

    await t.test('second authorization, same scopes: neither login nor consent', async (t) => {
      const second = authorization('mcp', 'second')
      const before = callback.received.length
      const response = (await page.goto(second.url))!
      t.equal(new URL(response.url()).origin, callback.origin, 'straight to the client')
      const hop = response.request().redirectedFrom()
      t.equal(hop?.url(), second.url, 'by one redirect from the authorization endpoint')
      t.equal((await hop?.response())?.status(), 302)
      t.notOk(hop?.redirectedFrom(), 'and nothing before it: no page was shown')
      const query = await arrival(t, page, before)
      t.ok(query.get('code'))
      t.equal(query.get('state'), 'second')
      t.equal(query.get('iss'), gw.origin)
      const token = await exchange(query.get('code')!, second.verifier)
      t.equal(token.status, 200)
    })

    await t.test('third authorization with an extra scope: consent again, the new scope marked', async (t) => {
      const third = authorization('mcp admin', 'third')
      const consentResponse = (await page.goto(third.url))!
      t.equal(consentResponse.status(), 200, 'the session still holds: no login page')
      t.equal(await page.title(), 'Allow access · Gatehouse')
      await checkPageHeaders(t, consentResponse, 'step-up consent page')
      await checkPageBasics(t, page, /^Allow access · Gatehouse$/)
      const scopes = page.locator('ul.scopes > li')
      t.equal(await scopes.count(), 2)
      t.match(await scopes.nth(0).innerText(), /^mcp — Use the tools$/, 'the granted scope, not marked')
      t.equal(await scopes.nth(0).locator('.badge').count(), 0)
      t.match(await scopes.nth(1).innerText(), /^admin — Administer\s*new$/, 'the new scope with its description')
      t.equal(await scopes.nth(1).locator('.badge').innerText(), 'new', 'marked new')
      t.equal(await scopes.nth(1).getAttribute('class'), 'new')
      await screenshot(t, page, 'consent-step-up')

      const before = callback.received.length
      await posting(page, '/oauth/authorize/consent', () => page.getByRole('button', { name: 'Allow' }).click())
      const query = await arrival(t, page, before)
      t.equal(query.get('state'), 'third')
      t.equal(query.get('iss'), gw.origin)
      const token = await exchange(query.get('code')!, third.verifier)
      t.equal(token.status, 200)
      t.equal(token.body.scope, 'mcp admin', 'the code carries both scopes')
    })

    const cookies = await context.cookies(gw.origin)
    t.same(
      cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite })),
      [{ name: 'gatehouse-session', httpOnly: true, sameSite: 'Lax' }],
      'only the HttpOnly, SameSite=Lax session cookie is left (the binding cookie was cleared)',
    )
    checkTraffic(t)
  })

  await t.test('another browser and person: wrong password, then Deny with the keyboard', async (t) => {
    const { page, checkTraffic } = await newContext(t)
    const request = authorization('mcp', 'deny-me')
    await page.goto(request.url)
    const errorResponse = await signIn(page, 'bob', 'not-the-password')
    t.equal(errorResponse.status(), 401)
    await checkPageHeaders(t, errorResponse, 'login error page')
    t.equal(await page.locator('h1').innerText(), 'Sign in to continue', 'still the login page')
    t.equal(await page.getByRole('alert').innerText(), 'The username or password is not right.', 'the error, announced')
    t.equal(await page.getByLabel('Username', { exact: true }).inputValue(), 'bob', 'the username is kept')
    t.equal(await page.getByLabel('Password', { exact: true }).inputValue(), '', 'the password is not echoed back')
    t.equal(await page.getByRole('button', { name: 'Allow' }).count(), 0, 'no consent page')
    await checkPageBasics(t, page, /^Sign in · Gatehouse$/)
    await screenshot(t, page, 'login-error')

    // The retry on the same page: username kept, so only the password is typed.
    await page.getByLabel('Password', { exact: true }).click()
    await page.keyboard.type('bob-password')
    const consentResponse = await posting(page, '/oauth/authorize/login', () => page.keyboard.press('Enter'))
    t.equal(consentResponse.status(), 200, 'the retry from the error page works')
    t.equal(await page.title(), 'Allow access · Gatehouse')
    t.match(await page.locator('main').innerText(), 'Signed in as bob@example.com')

    // Keyboard only: Tab to Deny, press Enter.
    t.same(await tabOrder(page, 2), ['button[allow] Allow', 'button[deny] Deny'])
    await screenshot(t, page, 'consent-keyboard-focus')
    const before = callback.received.length
    const back = await posting(page, '/oauth/authorize/consent', () => page.keyboard.press('Enter'))
    t.equal(back.status(), 303)
    const query = await arrival(t, page, before)
    t.equal(query.get('error'), 'access_denied')
    t.equal(query.get('state'), 'deny-me')
    t.equal(query.get('iss'), gw.origin)
    t.notOk(query.get('code'), 'no code')
    checkTraffic(t)
  })

  await t.test('a third person, dark colour scheme on a phone-sized screen', async (t) => {
    const { page, checkTraffic } = await newContext(t, DARK_PHONE)
    await page.goto(authorization('mcp admin', 'dark').url)
    t.equal(await page.title(), 'Sign in · Gatehouse')
    const overflow = 'document.documentElement.scrollWidth > document.documentElement.clientWidth'
    t.notOk(await page.evaluate<boolean>(overflow), 'the login page fits the width')
    await screenshot(t, page, 'login-dark-mobile')
    await signIn(page, 'carol', 'carol-password')
    t.equal(await page.title(), 'Allow access · Gatehouse')
    t.notOk(await page.evaluate<boolean>(overflow), 'the consent page fits the width')
    await screenshot(t, page, 'consent-dark-mobile')
    checkTraffic(t)
  })
}
