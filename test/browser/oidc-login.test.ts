/**
 * Signing in at an upstream OpenID Provider, in a real browser (headless Chromium): the MCP
 * client's authorization URL → the gateway's consent page with one "Allow and continue with
 * <IdP>" button per provider → oidc-provider's own login and consent pages → the gateway's
 * callback → the client's redirect URI with code, state and iss (MCPA-80, MCPS-01..06).
 *
 * What only a browser shows: Chromium applies the consent page's CSP `form-action` to the whole
 * redirect chain after the form POST, so the page must name the origin of the IdP's
 * authorization endpoint, also when that differs from the issuer's (simulated by a second
 * loopback listener of the same oidc-provider) and also on a fresh gateway whose first page is
 * rendered before discovery has run. Also: keyboard-only use, the refused person's page and its
 * return link, Deny, two providers, and that the gateway's pages load nothing at all.
 *
 * oidc-provider's development pages import a web font from a public host: the browser resolves
 * no name but localhost and every non-loopback request is aborted, so nothing leaves the machine.
 * Screenshots land in test-artifacts/browser/ (gitignored), named in the test output.
 */
import { createHash, randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Browser, Page, Response } from 'playwright-core'
import t, { type Test } from 'tap'
import { chromiumForTests, NO_NAME_RESOLUTION } from '../helpers/chromium.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'
import { claimsOf } from '../login/harness.js'
import { IDP_CLIENT_ID, IDP_CLIENT_SECRET, startTestIdp, type TestIdp } from '../login/idp.js'
import { arrival as arrivalAt, checkPageHeaders, checkStyleApplied, DARK_PHONE, screenshot, startCallbackServer, tabOrder as tabOrderOf } from './page-checks.js'

const browser = await chromiumForTests(t, { extraArgs: [NO_NAME_RESOLUTION] })
if (browser) await t.test('upstream OIDC login in Chromium', (t) => suite(t, browser))

async function suite(t: Test, browser: Browser): Promise<void> {
  t.setTimeout(240_000)
  const callback = await startCallbackServer(t)

  // Gateway ports first: each IdP registers the callback URLs of the gateways that use it.
  const ports = { main: await reservePort(t), fresh: await reservePort(t), splitWarm: await reservePort(t), splitFresh: await reservePort(t) }
  const callbackAt = (port: number, id: string) => `http://127.0.0.1:${port}/oauth/callback/${id}`
  /** Asks for consent on its own pages too, like most company IdPs do for a new application. */
  const corp = await startTestIdp(t, { redirectUris: [callbackAt(ports.main, 'corp'), callbackAt(ports.fresh, 'corp')], consentPrompt: true })
  const partner = await startTestIdp(t, { redirectUris: [callbackAt(ports.main, 'partner')] })
  /** Its authorization endpoint is on https://127.0.0.1:OTHER, its issuer on https://localhost:PORT. */
  const split = await startTestIdp(t, {
    redirectUris: [callbackAt(ports.splitWarm, 'split'), callbackAt(ports.splitFresh, 'split')],
    separateAuthorizationOrigin: true,
    consentPrompt: true,
  })
  t.not(new URL(split.authorizationOrigin).origin, new URL(split.issuer).origin, 'the split IdP sends browsers to another origin than its issuer')

  const provider = (id: string, name: string, idp: TestIdp) => ({
    id,
    name,
    issuer: idp.issuer,
    clientId: IDP_CLIENT_ID,
    clientSecret: IDP_CLIENT_SECRET,
    scopes: ['openid', 'email', 'profile', 'groups'],
    caFile: idp.caFile,
  })
  const gateway = (port: number, providers: ReturnType<typeof provider>[]) =>
    startTestGateway(t, {
      port,
      resources: [
        {
          name: 'Team files',
          upstream: 'http://127.0.0.1:9/mcp', // never called: only the authorization pages are used
          access: { emailDomains: ['example.com'] },
          scopes: [
            { name: 'mcp', description: 'Use the tools' },
            { name: 'admin', description: 'Administer' },
          ],
        },
      ],
      config: {
        clients: [{ clientId: 'inspector', name: 'MCP Inspector', redirectUris: ['http://127.0.0.1/callback'] }],
        login: { oidc: providers },
      },
    })
  const gw = {
    /** Two providers; discovery is done before the browser comes. */
    main: await gateway(ports.main, [provider('corp', 'Corp SSO', corp), provider('partner', 'Partner ID', partner)]),
    /** Nothing has rendered a page yet when the browser comes: its first page is rendered before discovery. */
    fresh: await gateway(ports.fresh, [provider('corp', 'Corp SSO', corp)]),
    splitWarm: await gateway(ports.splitWarm, [provider('split', 'Split SSO', split)]),
    splitFresh: await gateway(ports.splitFresh, [provider('split', 'Split SSO', split)]),
  }
  const gatewayOrigins = new Set(Object.values(gw).map((g) => g.origin))
  const isLoopback = (url: URL) => url.hostname === '127.0.0.1' || url.hostname === 'localhost'
  const originOf = (url: string) => {
    try {
      return new URL(url).origin
    } catch {
      return ''
    }
  }
  const discoveries = (idp: TestIdp) => idp.requests.filter((p) => p === '/.well-known/openid-configuration').length
  const authorizationRequests = (idp: TestIdp) => idp.requests.filter((p) => p === '/auth').length

  /**
   * A fresh context (no cookies) that trusts the IdPs' test certificates, aborts every request
   * to a non-loopback host, and records every request, console message and page error.
   */
  async function newContext(t: Test, options: Parameters<Browser['newContext']>[0] = {}) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 800 }, ignoreHTTPSErrors: true, ...options })
    context.setDefaultTimeout(10_000)
    t.teardown(() => context.close())
    const requests: { url: string; type: string; from: string }[] = []
    const messages: { type: string; text: string; url: string }[] = []
    const pageErrors: string[] = []
    await context.route(
      (url) => !isLoopback(url),
      (route) => route.abort('blockedbyclient'),
    )
    context.on('request', (r) => {
      let from = ''
      try {
        from = r.frame().url()
      } catch {
        // a request without a frame (none expected)
      }
      requests.push({ url: r.url(), type: r.resourceType(), from })
    })
    context.on('console', (m) => messages.push({ type: m.type(), text: m.text(), url: m.location().url || (m.page()?.url() ?? '') }))
    context.on('weberror', (e) => pageErrors.push(String(e.error())))
    const page = await context.newPage()

    /**
     * No CSP violation anywhere; the gateway's pages loaded no subresource and logged no error;
     * nothing was fetched from a non-loopback host (the IdP's font import was aborted).
     */
    const checkTraffic = (t: Test, expectedStatus?: number) => {
      const violations = messages.filter((m) => /content security policy|refused to/i.test(m.text))
      t.same(violations, [], 'no CSP violation in the console at any step')
      const gatewaySubresources = requests.filter((r) => r.type !== 'document' && gatewayOrigins.has(originOf(r.from)))
      t.same(gatewaySubresources, [], 'the gateway pages load no subresources at all (inline style only)')
      const gatewayErrors = messages.filter(
        (m) =>
          m.type === 'error' &&
          gatewayOrigins.has(originOf(m.url)) &&
          !(expectedStatus !== undefined && m.text.includes(`status of ${expectedStatus}`)),
      )
      t.same(gatewayErrors, [], 'no console error on the gateway pages')
      t.same(pageErrors, [], 'no page error')
      const foreign = requests.filter((r) => !isLoopback(new URL(r.url)))
      t.same(
        foreign.filter((r) => gatewayOrigins.has(originOf(r.from))),
        [],
        'no request to anything but loopback servers from a gateway page (no external resources)',
      )
      if (foreign.length > 0) t.comment(`aborted, asked for by IdP pages: ${[...new Set(foreign.map((r) => originOf(r.url)))].join(' ')}`)
    }
    return { context, page, checkTraffic }
  }

  /** An authorization URL like an MCP client builds it, with its PKCE verifier. */
  function authorization(gateway: TestGateway, state: string, scope = 'mcp') {
    const verifier = randomBytes(32).toString('base64url')
    const url = new URL('/oauth/authorize', gateway.origin)
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'inspector',
      redirect_uri: `${callback.origin}/callback`,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state,
      scope,
      resource: gateway.mcpUrl(),
    }).toString()
    return { url: url.href, verifier, state }
  }

  async function exchange(gateway: TestGateway, code: string, verifier: string) {
    const res = await fetch(`${gateway.origin}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: `${callback.origin}/callback`,
        client_id: 'inspector',
        code_verifier: verifier,
        resource: gateway.mcpUrl(),
      }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }

  /**
   * Renders consent pages outside the browser (the first starts discovery) until discovery is
   * done: the page names each IdP's authorization origin and the IdP has served its metadata.
   */
  async function warmUp(gateway: TestGateway, idps: TestIdp[]) {
    for (let i = 0; i < 50; i++) {
      const res = await fetch(authorization(gateway, 'warm-up').url)
      const csp = res.headers.get('content-security-policy') ?? ''
      await res.arrayBuffer()
      if (idps.every((idp) => discoveries(idp) > 0 && csp.includes(idp.authorizationOrigin))) {
        await sleep(200) // the discovery answer has been read by now
        return
      }
      await sleep(100)
    }
    throw new Error(`discovery at ${gateway.origin} did not finish`)
  }

  /** The sources of the page's CSP form-action directive. */
  async function formAction(response: Response): Promise<string[]> {
    const csp = (await response.allHeaders())['content-security-policy'] ?? ''
    const directive = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('form-action '))
    return directive ? directive.split(/\s+/).slice(1) : []
  }

  async function definitions(page: Page): Promise<Record<string, string>> {
    const terms = await page.locator('dl > dt').allInnerTexts()
    const values = await page.locator('dl > dd').allInnerTexts()
    return Object.fromEntries(terms.map((term, i) => [term.trim(), (values[i] ?? '').trim()]))
  }

  /** The focused element: `button[provider=corp] Allow and …`, `input[login]`, `a#return …`; `body` when none. */
  const focused = (page: Page) =>
    page.evaluate<string>(`(() => {
      const el = document.activeElement
      if (!el || el === document.body) return 'body'
      const tag = el.tagName.toLowerCase()
      const id = el.id ? '#' + el.id : ''
      const name = el.name ? '[' + el.name + (tag === 'button' && el.value ? '=' + el.value : '') + ']' : ''
      const text = tag === 'button' || tag === 'a' ? ' ' + el.textContent.trim() : ''
      return tag + id + name + text
    })()`)

  const tabOrder = (page: Page, presses: number) => tabOrderOf(page, presses, focused)

  /**
   * The consent page shown before the upstream login: its headers and CSP (form-action names the
   * client and every IdP's authorization origin), the verified client facts, the scopes, one
   * button per provider, Deny, the basics of accessibility, and that its style applied.
   */
  async function checkUpstreamConsent(t: Test, page: Page, response: Response, gateway: TestGateway, idps: TestIdp[], buttons: string[]) {
    t.equal(response.status(), 200, 'the consent page')
    t.equal(new URL(page.url()).pathname, '/oauth/authorize')
    await checkPageHeaders(t, response, 'consent page')
    const targets = await formAction(response)
    t.ok(targets.includes(callback.origin), 'form-action names the client (Deny lands there)')
    for (const idp of idps) {
      t.ok(targets.includes(idp.authorizationOrigin), `form-action names ${idp.authorizationOrigin}, where Allow sends the browser`)
    }
    t.equal(await page.locator('html').getAttribute('lang'), 'en', 'the page declares its language')
    t.equal(await page.title(), 'Allow access · Gatehouse')
    t.equal(await page.locator('h1').count(), 1, 'one h1')
    t.equal(await page.locator('h1').innerText(), 'Allow MCP Inspector to use Team files?')
    t.match(await page.locator('main').innerText(), 'You will sign in next')
    t.same(
      await definitions(page),
      {
        Application: 'MCP Inspector',
        Verified: 'registered by the operator',
        'Client ID': 'inspector',
        'Sends you back to': callback.origin,
        'MCP server': gateway.mcpUrl(),
      },
      'the verified client facts',
    )
    t.equal(await page.locator('dd strong').innerText(), callback.origin, 'the redirect origin is set in bold')
    t.same(await page.locator('ul.scopes > li').allInnerTexts(), ['mcp — Use the tools'], 'each scope with its description')
    const warning = page.getByRole('note')
    t.match(await warning.innerText(), 'This application runs on your computer.', 'the loopback warning')
    t.match(await warning.innerText(), `listening on ${new URL(callback.origin).host}`)
    t.same(await page.locator('form button').allInnerTexts(), [...buttons, 'Deny'], 'one button per provider, then Deny')
    for (const name of buttons) t.equal(await page.getByRole('button', { name }).count(), 1, `"${name}" is a named button`)
    t.equal(await page.locator('input:not([type=hidden])').count(), 0, 'no password form (no gateway accounts)')
    await checkStyleApplied(t, page)
    t.equal(await page.locator('button.primary').innerText(), buttons[0], 'the first provider is the primary action')
    const snapshot = await page.locator('body').ariaSnapshot()
    t.notMatch(snapshot, /- (textbox|button|link)(\s*\[|:|$)/m, 'no unnamed control in the accessibility tree')
  }

  const cookieNames = async (page: Page, gateway: TestGateway) => (await page.context().cookies(gateway.origin)).map((c) => c.name).filter((n) => n.startsWith('gatehouse-')).sort()

  /**
   * The person's part at the IdP, keyboard only: its login form and, when
   * the IdP asks, its consent. Resolves once the browser has left the IdP.
   */
  async function atIdp(t: Test, page: Page, idp: TestIdp, login: string, shots?: string) {
    await page.waitForURL((u) => u.origin === idp.authorizationOrigin && u.pathname.startsWith('/interaction/'))
    t.pass(`at the IdP's login page on ${idp.authorizationOrigin}`)
    // The IdP's pages are not ours: their autofocus may land after load on a busy machine, so
    // the field is focused explicitly; the keyboard-only checks are for the gateway's pages.
    await page.locator('input[name="login"]').focus()
    if (shots) await screenshot(t, page, `${shots}-idp-login`)
    await page.keyboard.type(login)
    await page.keyboard.press('Tab')
    await page.keyboard.type('any password')
    await page.keyboard.press('Enter')
    if (idp === corp || idp === split) {
      const proceed = page.getByRole('button', { name: 'Continue' })
      await proceed.waitFor()
      t.equal(new URL(page.url()).origin, idp.authorizationOrigin, "the IdP's own consent page")
      await proceed.focus()
      if (shots) await screenshot(t, page, `${shots}-idp-consent`)
      await page.keyboard.press('Enter')
    }
    await page.waitForURL((u) => !u.origin.startsWith('https:'))
  }

  /** Waits for the browser to arrive at the client's redirect URI; the query it received. */
  const arrival = (t: Test, page: Page, before: number) => arrivalAt(t, page, callback, before)

  /** Clicks (or presses Enter on) an Allow button; fails fast and says why when the browser does not reach the IdP. */
  async function allowAndLeave(t: Test, page: Page, idp: TestIdp, action: () => Promise<void>) {
    const before = authorizationRequests(idp)
    const violation = new Promise<string>((resolve) =>
      page.on('console', (m) => {
        if (/content security policy/i.test(m.text())) resolve(m.text())
      }),
    )
    await action()
    const reached = await Promise.race([
      page.waitForURL((u) => u.origin === idp.authorizationOrigin, { timeout: 10_000 }).then(() => 'reached'),
      violation,
    ])
    t.equal(reached, 'reached', `the browser is sent to ${idp.authorizationOrigin} (not blocked by the page's CSP)`)
    t.equal(authorizationRequests(idp), before + 1, "it reached the IdP's authorization endpoint")
    return reached === 'reached'
  }

  /** A whole login from the consent page on: Allow with `button`, the IdP, back; returns the code's token. */
  async function allowedLogin(
    t: Test,
    page: Page,
    gateway: TestGateway,
    idp: TestIdp,
    request: ReturnType<typeof authorization>,
    options: { button: string; login: string; keyboard?: boolean; shots?: string },
  ) {
    t.same(await cookieNames(page, gateway), ['gatehouse-authz'], 'MCPS-06: before Allow only the binding cookie, no state cookie')
    const reached = await allowAndLeave(t, page, idp, async () => {
      if (options.keyboard) await page.keyboard.press('Enter')
      else await page.getByRole('button', { name: options.button }).click()
    })
    if (!reached) return undefined
    t.same(await cookieNames(page, gateway), ['gatehouse-authz', 'gatehouse-oidc-state'], 'the state cookie is set by the approval')
    const before = callback.received.length
    await atIdp(t, page, idp, options.login, options.shots)
    const query = await arrival(t, page, before)
    t.ok(query.get('code'), 'a code')
    t.equal(query.get('state'), request.state, 'the state, unchanged')
    t.equal(query.get('iss'), gateway.origin, 'iss is the gateway (RFC 9207)')
    t.same(await cookieNames(page, gateway), ['gatehouse-session'], 'state and binding cookies are gone, the session stays')
    const token = await exchange(gateway, query.get('code') ?? '', request.verifier)
    t.equal(token.status, 200, 'the code redeems at the token endpoint')
    return typeof token.body.access_token === 'string' ? claimsOf(token.body.access_token) : undefined
  }

  await t.test('a fresh gateway, first page rendered before discovery: consent → IdP login and consent → code', async (t) => {
    const { page, checkTraffic } = await newContext(t)
    t.equal(discoveries(corp), 0, 'nothing has asked the IdP for its metadata yet')
    const request = authorization(gw.fresh, 'fresh/state + &=?')
    const response = (await page.goto(request.url))!
    await checkUpstreamConsent(t, page, response, gw.fresh, [corp], ['Allow and continue with Corp SSO'])
    await page.locator('body').click({ position: { x: 5, y: 5 } })
    await screenshot(t, page, 'oidc-consent')
    const claims = await allowedLogin(t, page, gw.fresh, corp, request, { button: 'Allow and continue with Corp SSO', login: 'alice', shots: 'oidc' })
    t.equal(claims?.sub, 'corp:alice', 'the token is for corp:alice')
    t.equal(claims?.email, 'alice@example.com', 'with the verified email')
    checkTraffic(t)
  })

  await t.test('two providers, discovery done: two buttons, each leads to its own IdP', async (t) => {
    await warmUp(gw.main, [corp, partner])

    await t.test('the second button: Partner ID', async (t) => {
      const { page, checkTraffic } = await newContext(t)
      const request = authorization(gw.main, 'partner-1')
      const response = (await page.goto(request.url))!
      const buttons = ['Allow and continue with Corp SSO', 'Allow and continue with Partner ID']
      await checkUpstreamConsent(t, page, response, gw.main, [corp, partner], buttons)
      await screenshot(t, page, 'oidc-consent-two-providers')
      const corpBefore = authorizationRequests(corp)
      const claims = await allowedLogin(t, page, gw.main, partner, request, { button: 'Allow and continue with Partner ID', login: 'alice' })
      t.equal(claims?.sub, 'partner:alice', 'signed in at Partner ID: partner:alice')
      t.equal(authorizationRequests(corp), corpBefore, 'Corp SSO was never asked')

      // The same browser again: the session and the remembered consent skip every page.
      const again = authorization(gw.main, 'partner-2')
      const partnerBefore = authorizationRequests(partner)
      const before = callback.received.length
      const response2 = (await page.goto(again.url))!
      t.equal(new URL(response2.url()).origin, callback.origin, 'straight back to the client')
      t.notOk(response2.request().redirectedFrom()?.redirectedFrom(), 'by one redirect: no page was shown')
      const query = await arrival(t, page, before)
      t.equal(query.get('state'), 'partner-2')
      t.equal(query.get('iss'), gw.main.origin)
      t.equal(authorizationRequests(partner), partnerBefore, 'the IdP was not asked again')
      const token = await exchange(gw.main, query.get('code') ?? '', again.verifier)
      t.equal(token.status, 200)
      t.equal(claimsOf(String(token.body.access_token)).sub, 'partner:alice', 'the same person')
      checkTraffic(t)
    })

    await t.test('the first button, keyboard only: Corp SSO', async (t) => {
      const { page, checkTraffic } = await newContext(t)
      const request = authorization(gw.main, 'corp-keyboard')
      await page.goto(request.url)
      t.same(
        await tabOrder(page, 3),
        [
          'button[provider=corp] Allow and continue with Corp SSO',
          'button[provider=partner] Allow and continue with Partner ID',
          'button[decision=deny] Deny',
        ],
        'Tab reaches each Allow button, then Deny',
      )
      await page.keyboard.press('Shift+Tab')
      await page.keyboard.press('Shift+Tab')
      t.equal(await focused(page), 'button[provider=corp] Allow and continue with Corp SSO', 'Shift+Tab goes back')
      await screenshot(t, page, 'oidc-consent-keyboard-focus')
      const partnerBefore = authorizationRequests(partner)
      const claims = await allowedLogin(t, page, gw.main, corp, request, { button: 'Allow and continue with Corp SSO', login: 'alice', keyboard: true })
      t.equal(claims?.sub, 'corp:alice', 'signed in at Corp SSO: corp:alice')
      t.same(claims?.groups, ['engineering', 'mcp-users'], 'with the groups')
      t.equal(authorizationRequests(partner), partnerBefore, 'Partner ID was never asked')
      checkTraffic(t)
    })
  })

  await t.test('a refused person: the 403 page, and its link hands access_denied back', async (t) => {
    const { page, checkTraffic } = await newContext(t)
    const request = authorization(gw.main, 'refused')
    await page.goto(request.url)
    await page.keyboard.press('Tab')
    const reached = await allowAndLeave(t, page, corp, () => page.keyboard.press('Enter'))
    if (!reached) return
    const refusal = page.waitForResponse((r) => new URL(r.url()).pathname === '/oauth/callback/corp')
    await atIdp(t, page, corp, 'mallory')
    const response = await refusal
    t.equal(response.status(), 403, 'the callback answers 403')
    t.equal(new URL(page.url()).origin, gw.main.origin, 'the page is the gateway’s')
    await checkPageHeaders(t, response, 'refusal page')
    t.equal(await page.title(), 'Access not allowed · Gatehouse')
    t.equal(await page.locator('h1').innerText(), 'Access not allowed')
    const said = await page.getByRole('alert').innerText()
    t.equal(said, 'Your account is not allowed to use Team files. Ask the people who run it if you need access.', 'the reason in plain words')
    t.notMatch(await page.locator('main').innerText(), /example\.com|emailDomains|mallory|rule/i, 'no internal rule details')
    const link = page.getByRole('link', { name: 'Return to the application' })
    const href = new URL((await link.getAttribute('href'))!)
    t.equal(href.origin + href.pathname, `${callback.origin}/callback`, 'the link goes to the verified redirect URI')
    t.equal(href.searchParams.get('error'), 'access_denied', 'carrying error=access_denied')
    t.same(await cookieNames(page, gw.main), [], 'no session for a refused person; state and binding cookies are gone')
    await screenshot(t, page, 'oidc-refused')

    t.equal((await tabOrder(page, 1))[0], 'a#return Return to the application', 'Tab reaches the link')
    const before = callback.received.length
    await page.keyboard.press('Enter')
    const query = await arrival(t, page, before)
    t.equal(query.get('error'), 'access_denied')
    t.equal(query.get('state'), 'refused')
    t.equal(query.get('iss'), gw.main.origin)
    t.notOk(query.get('code'), 'no code')
    checkTraffic(t, 403)
  })

  await t.test('Deny on the consent page, dark colour scheme on a phone: access_denied to the client, no IdP reached', async (t) => {
    const { page, checkTraffic } = await newContext(t, DARK_PHONE)
    const request = authorization(gw.main, 'deny-me')
    await page.goto(request.url)
    t.equal(await page.title(), 'Allow access · Gatehouse')
    t.notOk(await page.evaluate<boolean>('document.documentElement.scrollWidth > document.documentElement.clientWidth'), 'the page fits the width')
    await screenshot(t, page, 'oidc-consent-dark-mobile')
    const asked = authorizationRequests(corp) + authorizationRequests(partner)
    const before = callback.received.length
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/oauth/authorize/upstream'),
      page.getByRole('button', { name: 'Deny' }).click(),
    ])
    t.equal(answer.status(), 303, 'Deny answers with a 303 to the client')
    const query = await arrival(t, page, before)
    t.equal(query.get('error'), 'access_denied')
    t.equal(query.get('state'), 'deny-me')
    t.equal(query.get('iss'), gw.main.origin)
    t.notOk(query.get('code'), 'no code')
    t.equal(authorizationRequests(corp) + authorizationRequests(partner), asked, 'no IdP was asked')
    t.same(await cookieNames(page, gw.main), [], 'MCPS-06: no state cookie, no session; the binding cookie is cleared')
    checkTraffic(t)
  })

  await t.test('an IdP whose authorization endpoint is on another origin than its issuer', async (t) => {
    await t.test('discovery done before the page', async (t) => {
      await warmUp(gw.splitWarm, [split])
      const { page, checkTraffic } = await newContext(t)
      const request = authorization(gw.splitWarm, 'split-warm')
      const response = (await page.goto(request.url))!
      await checkUpstreamConsent(t, page, response, gw.splitWarm, [split], ['Allow and continue with Split SSO'])
      const claims = await allowedLogin(t, page, gw.splitWarm, split, request, { button: 'Allow and continue with Split SSO', login: 'alice' })
      t.equal(claims?.sub, 'split:alice')
      checkTraffic(t)
    })

    await t.test('a fresh gateway: the first page is rendered before discovery', async (t) => {
      const { page, checkTraffic } = await newContext(t)
      const discovered = discoveries(split)
      const request = authorization(gw.splitFresh, 'split-fresh')
      const response = (await page.goto(request.url))!
      t.equal(discoveries(split), discovered + 1, 'asking for this page is what started discovery')
      await checkUpstreamConsent(t, page, response, gw.splitFresh, [split], ['Allow and continue with Split SSO'])
      const claims = await allowedLogin(t, page, gw.splitFresh, split, request, { button: 'Allow and continue with Split SSO', login: 'alice' })
      t.equal(claims?.sub, 'split:alice')
      checkTraffic(t)
    })
  })
}
