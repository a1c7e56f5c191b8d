/**
 * A gateway set up for the token-endpoint suites: one user, two resources, clients of every
 * authentication method, and helpers that drive /authorize like a browser to get codes.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { testPasswordHash } from './passwords.js'
import { FormBrowser } from './form-browser.js'
import { startTestGateway, type TestGateway } from './gateway.js'
import { reservePort } from './ports.js'

export const USER = { username: 'alice', password: 'correct horse battery staple', sub: 'static:alice' }
export const passwordHash = await testPasswordHash(USER.password)
/** Registered for every client; any loopback port matches at /authorize (O21-04). */
export const REGISTERED_REDIRECT = 'http://127.0.0.1/callback'
export const REDIRECT = 'http://127.0.0.1:43210/callback'
/** Never reached: these tests stop at the authorization server. */
export const UPSTREAM = 'http://127.0.0.1:9/mcp'

export interface Client {
  readonly id: string
  readonly auth: 'none' | 'basic' | 'post'
  readonly secret?: string
}
export const PUBLIC: Client = { id: 'public-app', auth: 'none' }
export const OTHER_PUBLIC: Client = { id: 'other-public-app', auth: 'none' }
export const BASIC: Client = { id: 'basic-app', auth: 'basic', secret: 'basic-app-secret-3f9a0c7d1e5b8a2f6c4d9e0b' }
export const POST: Client = { id: 'post-app', auth: 'post', secret: 'post-app-secret-8b2e4f6a1c3d5e7f9a0b2c4d' }
/** A secret full of characters that must be form-encoded in a Basic credential (RFC 6749 §2.3.1). */
export const SPECIAL: Client = { id: 'special-app', auth: 'basic', secret: 'sp%c!al s3cret:+/&=?#[]@ü€😀-0123456789abcdef' }
/** grantTypes without refresh_token. */
export const NO_REFRESH: Client = { id: 'no-refresh-app', auth: 'none' }

export const METHOD = { none: 'none', basic: 'client_secret_basic', post: 'client_secret_post' } as const

export function registration(c: Client, extra: Record<string, unknown> = {}) {
  return {
    clientId: c.id,
    name: `App ${c.id}`,
    redirectUris: [REGISTERED_REDIRECT],
    tokenEndpointAuthMethod: METHOD[c.auth],
    ...(c.secret !== undefined && { secret: c.secret }),
    ...extra,
  }
}

export async function startHarness(t: Test, authorizationServer: Record<string, unknown> = {}): Promise<Harness> {
  const port = await reservePort(t)
  const gw = await startTestGateway(t, {
    port,
    resources: [{ upstream: UPSTREAM }, { upstream: UPSTREAM }],
    config: {
      // A host name rather than 127.0.0.1, so resource indicators can differ in host case (MCPA-49).
      publicUrl: `http://localhost:${port}`,
      authorizationServer: { refreshReuseGraceSeconds: 1, codeTtlSeconds: 10, ...authorizationServer },
      login: { static: { users: [{ username: USER.username, passwordHash }] } },
      clients: [
        registration(PUBLIC),
        registration(OTHER_PUBLIC),
        registration(BASIC),
        registration(POST),
        registration(SPECIAL),
        registration(NO_REFRESH, { grantTypes: ['authorization_code'] }),
      ],
    },
  })
  return new Harness(gw)
}

export interface Answer {
  status: number
  headers: Headers
  body: any
}
export interface Code {
  code: string
  verifier: string
  /** What the authorization request sent as redirect_uri (undefined: none). */
  redirectUri: string | undefined
}
export interface TokenSet {
  access_token: string
  token_type: string
  expires_in: number
  scope: string
  refresh_token?: string
}
export type Fields = Record<string, string | undefined> | [string, string][]

export class Harness {
  readonly browser: FormBrowser
  /** Every secret value the tests handled; none may appear in the log (MCPA-62). */
  readonly secrets = new Set<string>([USER.password, BASIC.secret!, POST.secret!, SPECIAL.secret!])

  constructor(readonly gw: TestGateway) {
    this.browser = new FormBrowser(gw.origin)
  }

  /** The canonical URI of resource 0 (/mcp) or 1 (/r1/mcp). */
  resource(i: 0 | 1 = 0): string {
    return this.gw.config.resources[i]!.uri
  }

  /** A code through /oauth/authorize: login the first time, consent when the scopes are new. */
  async code(
    client: Client,
    o: { resource?: string; scope?: string; redirectUri?: string | null; verifier?: string; challenge?: string; extra?: Record<string, string> } = {},
  ): Promise<Code> {
    const verifier = o.verifier ?? pkceVerifier()
    const redirectUri = o.redirectUri === null ? undefined : (o.redirectUri ?? REDIRECT)
    const url = new URL('/oauth/authorize', this.gw.origin)
    const query: Record<string, string> = {
      response_type: 'code',
      client_id: client.id,
      code_challenge: o.challenge ?? challengeOf(verifier),
      code_challenge_method: 'S256',
      resource: o.resource ?? this.resource(0),
      scope: o.scope ?? 'mcp admin',
      state: randomBytes(8).toString('hex'),
      ...(redirectUri !== undefined && { redirect_uri: redirectUri }),
      ...o.extra,
    }
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
    let page = await this.browser.get(url.href)
    for (let step = 0; page.status === 200 && step < 2; step++) {
      page = page.html.includes('action="/oauth/authorize/login"')
        ? await this.browser.submit(page, { username: USER.username, password: USER.password })
        : await this.browser.submit(page, { decision: 'allow' })
    }
    const code = page.location === undefined ? null : new URL(page.location).searchParams.get('code')
    if (!code) throw new Error(`authorization gave no code: ${page.status} ${page.location ?? page.html.slice(0, 300)}`)
    this.secrets.add(code).add(verifier)
    return { code, verifier, redirectUri }
  }

  /**
   * A form POST as `client` would send it. Checks what every answer of these endpoints must
   * carry: Cache-Control: no-store, and errors as {error, error_description} JSON (RFC 6749 §5.2).
   */
  async post(t: Test, path: string, fields: Fields, client?: Client, headers: Record<string, string> = {}): Promise<Answer> {
    const creds = credentials(client)
    const pairs = (Array.isArray(fields) ? fields : Object.entries(fields)).filter(
      (p): p is [string, string] => p[1] !== undefined,
    )
    const allHeaders: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      ...creds.headers,
      ...headers,
    }
    if (allHeaders.authorization) this.secrets.add(allHeaders.authorization.replace(/^basic /i, ''))
    const res = await fetch(new URL(path, this.gw.origin), {
      method: 'POST',
      headers: allHeaders,
      body: new URLSearchParams([...Object.entries(creds.fields), ...pairs]).toString(),
    })
    const text = await res.text()
    const answer: Answer = { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) }
    t.equal(res.headers.get('cache-control'), 'no-store', `${path} ${res.status}: Cache-Control: no-store`)
    if (res.status >= 400) {
      t.match(res.headers.get('content-type'), /^application\/json/, 'the error is JSON')
      t.same(Object.keys(answer.body ?? {}).sort(), ['error', 'error_description'], 'the body is {error, error_description}')
      t.match(answer.body?.error_description, /^[\x20\x21\x23-\x5B\x5D-\x7E]+$/, 'error_description uses only NQSCHAR')
    }
    if (typeof answer.body?.access_token === 'string') this.secrets.add(answer.body.access_token)
    if (typeof answer.body?.refresh_token === 'string') this.secrets.add(answer.body.refresh_token)
    return answer
  }

  token(t: Test, fields: Fields, client?: Client): Promise<Answer> {
    return this.post(t, '/oauth/token', fields, client)
  }

  exchange(t: Test, client: Client | undefined, c: Code, extra: Record<string, string | undefined> = {}): Promise<Answer> {
    return this.token(
      t,
      { grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, redirect_uri: c.redirectUri, ...extra },
      client,
    )
  }

  /** Code + exchange, which must succeed. */
  async tokens(t: Test, client: Client, o: Parameters<Harness['code']>[1] = {}): Promise<TokenSet> {
    const res = await this.exchange(t, client, await this.code(client, o))
    if (res.status !== 200) throw new Error(`code exchange failed: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body as TokenSet
  }

  refresh(t: Test, client: Client | undefined, refreshToken: string, extra: Record<string, string | undefined> = {}) {
    return this.token(t, { grant_type: 'refresh_token', refresh_token: refreshToken, ...extra }, client)
  }

  revoke(t: Test, client: Client | undefined, token: string, extra: Record<string, string | undefined> = {}) {
    return this.post(t, '/oauth/revoke', { token, ...extra }, client)
  }

  introspect(t: Test, client: Client | undefined, token: string, extra: Record<string, string | undefined> = {}) {
    return this.post(t, '/oauth/introspect', { token, ...extra }, client)
  }

  /** MCPA-62: no code, verifier, token, client secret or password handled so far is in the log. */
  checkLog(t: Test): void {
    const log = this.gw.logText()
    t.ok(log.includes('"audit":"code.issued"'), 'the log saw the flows')
    const leaked = [...this.secrets].filter((s) => log.includes(s))
    t.same(leaked.map((s) => `${s.slice(0, 6)}…`), [], `none of ${this.secrets.size} secret values is in the log`)
  }
}

/** How `client` authenticates: its registered method, with its real secret. */
export function credentials(client: Client | undefined): { fields: Record<string, string>; headers: Record<string, string> } {
  switch (client?.auth) {
    case undefined:
      return { fields: {}, headers: {} }
    case 'none':
      return { fields: { client_id: client.id }, headers: {} }
    case 'post':
      return { fields: { client_id: client.id, client_secret: client.secret! }, headers: {} }
    case 'basic':
      return { fields: {}, headers: { authorization: basicAuth(client.id, client.secret!) } }
  }
}

/** RFC 6749 §2.3.1: id and secret form-urlencoded, then base64. */
export function basicAuth(id: string, secret: string, encode: (s: string) => string = formEncode): string {
  return `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`, 'utf8').toString('base64')}`
}

export function formEncode(s: string): string {
  return new URLSearchParams({ s }).toString().slice(2)
}

/** RFC 7636 §4.1: 32 random octets, base64url → 43 characters. */
export function pkceVerifier(): string {
  return randomBytes(32).toString('base64url')
}

export function challengeOf(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url')
}

export function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>
}


let clockOffsetMs = 0
export const realNow = performance.now.bind(performance)
/**
 * Moves the monotonic clock the memory store reads for expiry forward (never back), as if the
 * machine had slept: TTLs of 10 s and more are then testable without waiting. Wall-clock time
 * (Date.now: JWT exp, rotation grace) is untouched.
 */
export function advanceStoreClock(ms: number): void {
  if (clockOffsetMs === 0) performance.now = () => realNow() + clockOffsetMs
  clockOffsetMs += ms
}
// ─── End of harness ──────────────────────────────────────────────────────────────────────

