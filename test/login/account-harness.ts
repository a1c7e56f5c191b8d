/**
 * One gateway with two people (alice, bob) and two pre-registered clients, and a person's
 * browser that connects a client through /authorize and signs in at /account: what the account
 * page tests (inject-level and Chromium) share.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { testPasswordHash } from '../helpers/passwords.js'
import { FormBrowser, type Visit } from '../helpers/form-browser.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'

export const PASSWORD = 'correct horse battery staple'
const passwordHash = await testPasswordHash(PASSWORD)
const REDIRECT = 'http://127.0.0.1:43210/callback'

export async function accountGateway(t: Test, upstreamUrl: string): Promise<TestGateway> {
  return startTestGateway(t, {
    resources: [{ upstream: upstreamUrl, scopes: [{ name: 'mcp' }, { name: 'admin' }] }],
    config: {
      login: { static: { users: [{ username: 'alice', passwordHash }, { username: 'bob', passwordHash }] } },
      clients: ['notes-app', 'mail-app'].map((id) => ({ clientId: id, name: `The ${id}`, redirectUris: ['http://127.0.0.1/callback'] })),
    },
  })
}

export const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { grant_id: string }

/** A person's browser: signs in at /account and goes through /authorize for a client. */
export class Person {
  readonly browser: FormBrowser
  constructor(
    readonly gw: TestGateway,
    readonly username: string,
  ) {
    this.browser = new FormBrowser(gw.origin)
  }

  /** The account page, signing in first when the browser has no session yet. */
  async signIn(): Promise<Visit> {
    const page = await this.browser.get(`${this.gw.origin}/account`)
    if (!page.html.includes('action="/account/login"')) return page
    const done = await this.browser.submit(page, { username: this.username, password: PASSWORD })
    if (done.status !== 303) throw new Error(`sign-in answered ${done.status}: ${done.html.slice(0, 200)}`)
    return this.browser.get(done.location!)
  }

  /** Authorizes `clientId` and redeems the code: the tokens of a new grant. */
  async connect(clientId: string, scope = 'mcp'): Promise<{ access_token: string; refresh_token: string }> {
    const verifier = randomBytes(32).toString('base64url')
    const url = new URL('/oauth/authorize', this.gw.origin)
    const query = {
      response_type: 'code',
      client_id: clientId,
      redirect_uri: REDIRECT,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: this.gw.mcpUrl(),
      scope,
      state: 'x',
    }
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
    let page = await this.browser.get(url.href)
    for (let step = 0; page.status === 200 && step < 2; step++) {
      page = page.html.includes('action="/oauth/authorize/login"')
        ? await this.browser.submit(page, { username: this.username, password: PASSWORD })
        : await this.browser.submit(page, { decision: 'allow' })
    }
    const code = new URL(page.location!).searchParams.get('code')!
    const res = await fetch(`${this.gw.origin}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: clientId, redirect_uri: REDIRECT }),
    })
    return (await res.json()) as { access_token: string; refresh_token: string }
  }
}

/** An MCP ping with the token: 200 through to the upstream, 401 when the token is refused. */
export function mcpCall(gw: TestGateway, token: string): Promise<Response> {
  return fetch(gw.mcpUrl(), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  })
}

