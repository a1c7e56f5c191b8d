/**
 * The authorization endpoint refuses what it must, in the right place: on a gateway page
 * while client or redirect URI are unverified (O21-09, SEC-26), by redirect to the client
 * (with state and iss) once they are. Metadata publishes exactly what is supported.
 */
import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { testPasswordHash } from '../helpers/passwords.js'
import { authorizeUrl as authorizeUrlAt, type AuthorizeParams } from '../helpers/authorize-url.js'
import { FormBrowser, parseForm } from '../helpers/form-browser.js'
import { startTestGateway } from '../helpers/gateway.js'

const verifier = randomBytes(32).toString('base64url')
const challenge = createHash('sha256').update(verifier).digest('base64url')
const gw = await startTestGateway(t, {
  resources: [
    { id: 'files', upstream: 'http://127.0.0.1:9/mcp', scopes: [{ name: 'files:read', description: 'Read files' }, { name: 'files:write', description: 'Change files' }], requiredScopes: ['files:read'] },
    { id: 'crm', path: '/crm/mcp', upstream: 'http://127.0.0.1:9/mcp', scopes: [{ name: 'crm' }], requiredScopes: ['crm'] },
  ],
  config: {
    login: { static: { users: [{ username: 'alice', passwordHash: await testPasswordHash('alice-password') }] } },
    clients: [
      { clientId: 'cli', name: 'CLI <b>tool</b>', redirectUris: ['http://localhost/callback', 'http://127.0.0.1:7777/cb?x=1'] },
      { clientId: 'web', name: 'Web app', redirectUris: ['https://app.example.com/cb'] },
      // A machine client: redirect URIs of its own, but not the code grant (it may not start a browser flow).
      { clientId: 'no-code', name: 'No code', redirectUris: ['https://app.example.com/cb'], grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', secret: 'no-code-secret-0123456789abcdef0123' },
    ],
  },
})
const files = gw.mcpUrl('files')

const authorizeUrl = (params: AuthorizeParams) => authorizeUrlAt(gw.origin, { code_challenge: challenge, state: 'st-1', resource: files, ...params })

const get = (url: string) => fetch(url, { redirect: 'manual' })

t.test('unverified client or redirect URI: an error page, never a redirect (O21-09, SEC-26, MCPA-69)', async (t) => {
  const cases: [string, string][] = [
    ['unknown client', authorizeUrl({ client_id: 'nobody' })],
    ['missing client_id', authorizeUrl({ client_id: undefined })],
    ['unregistered redirect URI', authorizeUrl({ redirect_uri: 'https://evil.example.com/cb' })],
    ['registered URI with another path', authorizeUrl({ redirect_uri: 'https://app.example.com/cb/../evil' })],
    ['registered URI plus a query', authorizeUrl({ redirect_uri: 'https://app.example.com/cb?next=https://evil.example.com' })],
    ['http variant of an https URI', authorizeUrl({ redirect_uri: 'http://app.example.com/cb' })],
    ['localhost registered, 127.0.0.1 asked (SEC-28)', authorizeUrl({ client_id: 'cli', redirect_uri: 'http://127.0.0.1/callback' })],
    ['loopback with another path', authorizeUrl({ client_id: 'cli', redirect_uri: 'http://localhost:9999/other' })],
    ['loopback without the registered query', authorizeUrl({ client_id: 'cli', redirect_uri: 'http://127.0.0.1:7777/cb' })],
    ['loopback with a fragment', authorizeUrl({ client_id: 'cli', redirect_uri: 'http://localhost:1234/callback#x' })],
    ['ambiguous omitted redirect URI', authorizeUrl({ client_id: 'cli', redirect_uri: undefined })],
  ]
  for (const [what, url] of cases) {
    const res = await get(url)
    t.equal(res.status >= 400 && res.status < 500, true, `${what}: ${res.status}`)
    t.equal(res.headers.get('location'), null, `${what}: no redirect`)
    t.match(res.headers.get('content-type'), /text\/html/, `${what}: a page for the person`)
    t.match(res.headers.get('content-security-policy'), /frame-ancestors 'none'/)
    await res.text()
  }
  const repeated = await get(`${authorizeUrl({})}&client_id=web`)
  t.equal(repeated.status, 400, 'a repeated parameter is refused, not guessed at')
  t.equal(repeated.headers.get('location'), null)
})

t.test('loopback redirect URIs match on any port, only the port (SEC-28, OQ-04)', async (t) => {
  for (const uri of ['http://localhost:50123/callback', 'http://localhost/callback', 'http://127.0.0.1:1/cb?x=1']) {
    const res = await get(authorizeUrl({ client_id: 'cli', redirect_uri: uri }))
    t.equal(res.status, 200, uri)
    t.match(await res.text(), /Sign in to continue/)
  }
})

t.test('verified client: errors go back to the client with state and iss (RFC 9207)', async (t) => {
  const cases: [string, Record<string, string | undefined>, string][] = [
    ['no PKCE (O21-05, BCP-03)', { code_challenge: undefined, code_challenge_method: undefined }, 'invalid_request'],
    ['plain PKCE', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['malformed challenge', { code_challenge: 'short' }, 'invalid_request'],
    ['token response type (implicit)', { response_type: 'token' }, 'unsupported_response_type'],
    ['unknown resource (RI-04)', { resource: 'https://elsewhere.example.com/mcp' }, 'invalid_target'],
    ['resource with a fragment (RI-01)', { resource: `${files}#x` }, 'invalid_target'],
    ['unknown scope', { scope: 'files:read root' }, 'invalid_scope'],
    ['a scope of another resource', { scope: 'crm' }, 'invalid_scope'],
    ['client without the code grant', { client_id: 'no-code' }, 'unauthorized_client'],
  ]
  for (const [what, params, error] of cases) {
    const res = await get(authorizeUrl(params))
    t.equal(res.status, 302, what)
    const target = new URL(res.headers.get('location')!)
    t.equal(target.origin + target.pathname, 'https://app.example.com/cb', what)
    t.equal(target.searchParams.get('error'), error, what)
    t.equal(target.searchParams.get('state'), 'st-1', `${what}: state returned`)
    t.equal(target.searchParams.get('iss'), gw.config.issuer, `${what}: iss returned`)
    t.equal(target.searchParams.get('code'), null)
  }
})

t.test('resource: case-folded scheme and host and a trailing slash are the same resource (MCPA-49, OQ-07)', async (t) => {
  const shouting = files.replace('http://127.0.0.1', 'HTTP://127.0.0.1')
  for (const resource of [shouting, `${files}/`]) {
    const res = await get(authorizeUrl({ resource }))
    t.equal(res.status, 200, resource)
    await res.text()
  }
  const omitted = await get(authorizeUrl({ resource: undefined }))
  t.equal(new URL(omitted.headers.get('location')!).searchParams.get('error'), 'invalid_target', 'two resources, no default: the client must name one (OQ-06)')
})

t.test('forms: only from the page the gateway showed, in the browser it showed it to (MCPS-02)', async (t) => {
  const browser = new FormBrowser(gw.origin)
  const login = await browser.get(authorizeUrl({}))
  const form = parseForm(login.html)
  const stranger = new FormBrowser(gw.origin)
  const forged = await stranger.post(form.action, { ...form.fields, username: 'alice', password: 'alice-password' })
  t.equal(forged.status, 403, 'the same form fields from another browser (no binding cookie)')
  const wrongCsrf = await browser.post(form.action, { ...form.fields, csrf: 'guess', username: 'alice', password: 'alice-password' })
  t.equal(wrongCsrf.status, 403, 'a wrong CSRF token')
  const badPassword = await browser.submit(login, { username: 'alice', password: 'nope' })
  t.equal(badPassword.status, 401)
  t.match(badPassword.html, /not right/)
  const unknownUser = await browser.submit(login, { username: 'mallory', password: 'alice-password' })
  t.equal(unknownUser.status, 401, 'unknown users look like wrong passwords')
  const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
  t.equal(consent.status, 200)
  const consentForm = parseForm(consent.html)
  const crossSite = await stranger.post(consentForm.action, { ...consentForm.fields, decision: 'allow' })
  t.equal(crossSite.status, 403, 'consent cannot be forged from elsewhere')
  const allowed = await browser.submit(consent, { decision: 'allow' })
  t.equal(allowed.status, 303)
  t.ok(new URL(allowed.location!).searchParams.get('code'))
  const twice = await browser.post(consentForm.action, { ...consentForm.fields, decision: 'allow' })
  t.equal(twice.status, 400, 'a completed request cannot issue a second code')
})

t.test('consent page: verified facts beside the untrusted name, escaped; deny → access_denied', async (t) => {
  const browser = new FormBrowser(gw.origin)
  const login = await browser.get(authorizeUrl({ client_id: 'cli', redirect_uri: 'http://localhost:4567/callback', scope: 'files:write' }))
  const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
  t.match(consent.html, /CLI &#60;b&#62;tool&#60;\/b&#62;/, 'the client name is escaped (SEC-25)')
  t.notMatch(consent.html, /<b>tool/)
  t.match(consent.html, /<strong>http:\/\/localhost:4567<\/strong>/, 'redirect origin shown prominently (MCPA-78)')
  t.match(consent.html, /runs on your computer/, 'loopback-only clients get a warning (MCPA-76, SEC-29)')
  t.match(consent.html, /files:read<\/code> — Read files/)
  t.match(consent.html, /files:write<\/code> — Change files/)
  t.match(consent.headers.get('content-security-policy'), /form-action 'self' http:\/\/localhost:4567/)
  const denied = await browser.submit(consent, { decision: 'deny' })
  t.equal(denied.status, 303)
  const target = new URL(denied.location!)
  t.equal(target.searchParams.get('error'), 'access_denied')
  t.equal(target.searchParams.get('state'), 'st-1')
  t.equal(target.searchParams.get('iss'), gw.config.issuer)
})

t.test('step-up: a larger scope asks again and marks what is new (MCPA-45)', async (t) => {
  const browser = new FormBrowser(gw.origin)
  const cli = { client_id: 'cli', redirect_uri: 'http://localhost:4567/callback', resource: gw.mcpUrl('crm') }
  const login = await browser.get(authorizeUrl(cli))
  const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
  t.equal(consent.status, 200, 'first time: the consent page')
  await browser.submit(consent, { decision: 'allow' })
  const same = await browser.get(authorizeUrl(cli))
  t.equal(same.status, 302, 'the same scopes again: no page at all')
  const larger = await browser.get(authorizeUrl({ scope: 'files:read files:write' }))
  t.equal(larger.status, 200)
  t.match(larger.html, /<li class="new"><code>files:write<\/code>/, 'the new scope is marked')
  t.notMatch(larger.html, /<li class="new"><code>files:read<\/code>/)
})

t.test('RFC 8414 metadata and JWKS (ASM-*, MCPA-22, MCPA-F01)', async (t) => {
  const res = await fetch(`${gw.origin}/.well-known/oauth-authorization-server`)
  t.equal(res.status, 200)
  const m = (await res.json()) as Record<string, unknown>
  t.match(m, {
    issuer: gw.config.issuer,
    authorization_endpoint: `${gw.origin}/oauth/authorize`,
    token_endpoint: `${gw.origin}/oauth/token`,
    jwks_uri: `${gw.origin}/oauth/jwks`,
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    authorization_response_iss_parameter_supported: true,
  })
  t.notOk((m.grant_types_supported as string[]).includes('password'), 'no ROPC (BCP-09)')
  t.ok((m.scopes_supported as string[]).includes('offline_access'))
  const prm = (await (await fetch(`${gw.origin}/.well-known/oauth-protected-resource/mcp`)).json()) as { authorization_servers: string[] }
  t.same(prm.authorization_servers, [m.issuer], 'PRM names exactly this issuer (MCPA-F03)')
  const jwks = (await (await fetch(`${gw.origin}/oauth/jwks`)).json()) as { keys: Record<string, unknown>[] }
  t.equal(jwks.keys.length, 1)
  t.match(jwks.keys[0], { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' })
  t.notOk('d' in jwks.keys[0]!, 'public half only')
})
