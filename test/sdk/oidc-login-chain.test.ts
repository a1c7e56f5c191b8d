/**
 * The whole chain with a real upstream IdP, driven by the MCP SDK's own auth(): MCP client →
 * gateway /authorize → consent (before any IdP contact) → IdP login → callback → code →
 * tokens → MCP tools/call through the gateway, with the person's email and groups carried in
 * the token and in the identity headers the upstream receives; then refresh.
 */
import t from 'tap'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { MemoryClientProvider } from '../helpers/sdk-provider.js'
import { CLIENT_ID, claimsOf, loginSetup, signInAtIdp } from '../login/harness.js'

t.setTimeout(60_000)
const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
t.teardown(() => upstream.close())

t.test('SDK auth() through an upstream OIDC login, then an MCP tools/call (MCPA-80)', async (t) => {
  const setup = await loginSetup(t, {
    upstreamUrl: upstream.url,
    access: { emailDomains: ['example.com'], groupsAnyOf: ['mcp-users'] },
    resource: { identityHeaders: { subject: 'X-User', email: 'X-User-Email', groups: 'X-User-Groups' } },
  })
  const { gw, idp } = setup
  const mcpUrl = gw.mcpUrl()
  const provider = new MemoryClientProvider({ info: { client_id: CLIENT_ID }, redirectUrl: 'http://127.0.0.1:43210/callback' })
  t.equal(await auth(provider, { serverUrl: mcpUrl }), 'REDIRECT')

  const browser = setup.browser()
  const consent = await browser.get(provider.authorizationUrl!.href)
  t.equal(consent.status, 200)
  t.match(consent.html, /Allow <span>Test MCP client<\/span>/, 'the page before the IdP is the consent (MCPS-01)')
  t.match(consent.html, /http:\/\/127\.0\.0\.1:43210/, 'the redirect origin is shown (MCPS-02, MCPA-78)')
  t.match(consent.html, /Allow and continue with Corp SSO/)
  t.notOk(consent.html.includes('name="password"'), 'no password form without static users')
  t.match(consent.headers.get('content-security-policy'), new RegExp(`form-action 'self' http://127.0.0.1:43210 ${idp.issuer.replace(/\./g, '\\.')}`))

  const toIdp = await browser.submit(consent, { provider: 'corp' })
  t.equal(toIdp.status, 303)
  const idpUrl = new URL(toIdp.location!)
  t.equal(idpUrl.origin, idp.issuer)
  t.equal(idpUrl.searchParams.get('redirect_uri'), `${gw.origin}/oauth/callback/corp`)
  t.equal(idpUrl.searchParams.get('code_challenge_method'), 'S256', 'PKCE upstream too')
  t.ok(idpUrl.searchParams.get('nonce'))
  t.ok(idpUrl.searchParams.get('state'))
  t.not(idpUrl.searchParams.get('state'), 'state-123', 'the upstream state is the gateway\'s own, not the client\'s')

  const { callback, sawLoginForm } = await signInAtIdp(browser, idp, toIdp, 'alice')
  t.ok(sawLoginForm, 'the IdP asked alice to sign in')
  t.ok(new URL(callback).searchParams.get('iss'), 'the IdP sent iss (RFC 9207), checked by openid-client')
  const back = await browser.get(callback)
  t.equal(back.status, 303)
  const redirect = new URL(back.location!)
  t.equal(redirect.origin + redirect.pathname, 'http://127.0.0.1:43210/callback')
  t.equal(redirect.searchParams.get('state'), 'state-123')
  t.equal(redirect.searchParams.get('iss'), gw.config.issuer)
  const code = redirect.searchParams.get('code')!

  t.equal(await auth(provider, { serverUrl: mcpUrl, authorizationCode: code }), 'AUTHORIZED')
  const tokens = provider.savedTokens!
  t.match(claimsOf(tokens.access_token), {
    sub: 'corp:alice',
    email: 'alice@example.com',
    groups: ['engineering', 'mcp-users'],
    aud: mcpUrl,
    client_id: CLIENT_ID,
  })

  const client = new Client({ name: 'oidc-chain', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }))
  const result = await client.callTool({ name: 'echo', arguments: { text: 'hello' } })
  t.match(JSON.stringify(result.content), /hello/)
  await client.close()
  const seen = upstream.requests.filter((r) => r.method === 'POST').at(-1)!
  t.equal(seen.headers['x-user'], 'corp:alice')
  t.equal(seen.headers['x-user-email'], 'alice@example.com', 'email reaches the upstream')
  t.equal(seen.headers['x-user-groups'], 'engineering,mcp-users', 'groups reach the upstream, comma-joined')
  t.notOk(seen.headers.cookie, 'no gateway cookie upstream')

  // Refresh: the grant carries email and groups, so the refreshed token does too.
  t.equal(await auth(provider, { serverUrl: mcpUrl }), 'AUTHORIZED')
  t.match(claimsOf(provider.savedTokens!.access_token), { sub: 'corp:alice', email: 'alice@example.com', groups: ['engineering', 'mcp-users'] })

  const logs = gw.logs
  t.ok(logs.some((l) => l.audit === 'login.succeeded' && l.sub === 'corp:alice' && l.provider === 'corp'))
  t.ok(logs.some((l) => l.audit === 'consent.granted' && l.sub === 'corp:alice'))
  t.ok(logs.some((l) => l.audit === 'code.issued'))
  t.notMatch(gw.logText(), code, 'no code in the log')
  t.notMatch(gw.logText(), idpUrl.searchParams.get('state')!, 'no upstream state in the log')
})
