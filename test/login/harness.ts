/**
 * One gateway signing people in at a real IdP (test/login/idp.ts), an upstream MCP server
 * behind it, and the steps a person takes: open /authorize, approve, sign in at the IdP, come back.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Test } from 'tap'
import { authorizeUrl } from '../helpers/authorize-url.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'
import { WebBrowser, type WebVisit } from '../helpers/web-browser.js'
import { IDP_CLIENT_ID, IDP_CLIENT_SECRET, startTestIdp, type TestIdp } from './idp.js'

export const CLIENT_ID = 'test-client'
export const CLIENT_REDIRECT = 'http://127.0.0.1:43210/callback'

export interface LoginSetup {
  gw: TestGateway
  idp: TestIdp
  /** A new browser that trusts the IdP's test CA. */
  browser(): WebBrowser
  /** Starts an authorization at the gateway (PKCE S256); returns the page and what the client kept. */
  authorize(browser: WebBrowser, extra?: Record<string, string>): Promise<{ page: WebVisit; state: string; verifier: string }>
}

export interface SetupOptions {
  upstreamUrl: string
  access?: Record<string, unknown>
  resource?: Record<string, unknown>
  login?: Record<string, unknown>
  provider?: Record<string, unknown>
  store?: Record<string, unknown>
  config?: Record<string, unknown>
  /** An IdP already running (a second replica); default a new one. */
  idp?: TestIdp
  port?: number
}

export async function loginSetup(t: Test, options: SetupOptions): Promise<LoginSetup> {
  const port = options.port ?? (await reservePort(t))
  const idp = options.idp ?? (await startTestIdp(t, { redirectUris: [`http://127.0.0.1:${port}/oauth/callback/corp`] }))
  const gw = await startTestGateway(t, {
    port,
    ...(options.store && { store: options.store }),
    resources: [
      {
        upstream: options.upstreamUrl,
        access: options.access ?? { emailDomains: ['example.com'] },
        scopes: [{ name: 'mcp', description: 'Use the tools' }, { name: 'admin' }],
        ...options.resource,
      },
    ],
    config: {
      clients: [{ clientId: CLIENT_ID, name: 'Test MCP client', redirectUris: ['http://127.0.0.1/callback'] }],
      login: {
        oidc: [
          {
            id: 'corp',
            name: 'Corp SSO',
            issuer: idp.issuer,
            clientId: IDP_CLIENT_ID,
            clientSecret: IDP_CLIENT_SECRET,
            scopes: ['openid', 'email', 'profile', 'groups'],
            caFile: idp.caFile,
            ...options.provider,
          },
        ],
        ...options.login,
      },
      ...options.config,
    },
  })
  const ca = readFileSync(idp.caFile, 'utf8')
  return {
    gw,
    idp,
    browser: () => new WebBrowser({ ca }),
    async authorize(browser, extra = {}) {
      const verifier = randomBytes(32).toString('base64url')
      const state = randomBytes(8).toString('hex')
      const url = authorizeUrl(gw.origin, {
        client_id: CLIENT_ID,
        redirect_uri: CLIENT_REDIRECT,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        state,
        resource: gw.mcpUrl(),
        ...extra,
      })
      return { page: await browser.get(url), state, verifier }
    },
  }
}

/**
 * At the IdP: follows its redirects, fills its login form with `login` when it shows one, and
 * returns the redirect that leaves the IdP (to the gateway's callback) without following it.
 */
export async function signInAtIdp(browser: WebBrowser, idp: TestIdp, toIdp: WebVisit, login: string): Promise<{ callback: string; sawLoginForm: boolean }> {
  let visit = await browser.followWithin(toIdp, idp.issuer)
  let sawLoginForm = false
  for (let i = 0; visit.status === 200 && /name="prompt" value="login"/.test(visit.html); i++) {
    if (i > 2) throw new Error('the IdP keeps asking to log in')
    sawLoginForm = true
    const action = /<form[^>]*action="([^"]+)"/.exec(visit.html)![1]!
    const posted = await browser.post(new URL(action, visit.url).href, { prompt: 'login', login, password: 'any' })
    visit = await browser.followWithin(posted, idp.issuer)
  }
  if (!visit.location) throw new Error(`the IdP did not send the browser back: ${visit.status} ${visit.html.slice(0, 300)}`)
  return { callback: visit.location, sawLoginForm }
}

/** Approves the consent-before-login page with the provider's button: the redirect to the IdP. */
export async function approve(browser: WebBrowser, page: WebVisit, provider = 'corp'): Promise<WebVisit> {
  return browser.submit(page, { provider })
}

/** The whole person's part: approve, sign in at the IdP, come back to the gateway. */
export async function approveAndSignIn(setup: LoginSetup, browser: WebBrowser, page: WebVisit, login: string): Promise<WebVisit> {
  const toIdp = await approve(browser, page)
  if (toIdp.status !== 303) throw new Error(`approval answered ${toIdp.status}: ${toIdp.html.slice(0, 300)}`)
  const { callback } = await signInAtIdp(browser, setup.idp, toIdp, login)
  return browser.get(callback)
}

/** Exchanges a code at the gateway's token endpoint. */
export async function redeem(gw: TestGateway, code: string, verifier: string): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${gw.origin}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: CLIENT_ID, redirect_uri: CLIENT_REDIRECT }),
  })
  return { status: res.status, body: (await res.json()) as Record<string, any> }
}

export function claimsOf(jwt: string): Record<string, any> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, any>
}
