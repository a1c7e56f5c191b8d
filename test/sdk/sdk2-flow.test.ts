/**
 * The 2.x SDK client (@modelcontextprotocol/client) through the whole chain, against a 2.x
 * upstream (@modelcontextprotocol/server, createMcpHandler): its own auth() discovers the
 * gateway from the MCP URL (PRM, RFC 8414), authorizes with PKCE and a resource indicator
 * (MCPA-46), a person signs in and consents, the code is exchanged; then the client connects in
 * each of its version-negotiation modes (legacy: the 2025 initialize handshake; auto: a
 * server/discover probe; pinned to 2026-07-28), lists and calls a tool. On the upstream's side,
 * the client's token never arrived (MCPA-60) and the revision each mode speaks is what reached it.
 */
import t from 'tap'
import {
  auth,
  Client,
  StreamableHTTPClientTransport,
  type OAuthClientProvider,
} from '@modelcontextprotocol/client'
import { hashPassword } from '../../src/login/passwords.js'
import { MODERN_PROTOCOL_VERSION } from '../fixtures/mcp-clients.js'
import { startSdk2Upstream } from '../fixtures/mcp-upstream.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { startTestGateway } from '../helpers/gateway.js'

type Provider = OAuthClientProvider & { authorizationUrl?: URL; saved?: { access_token: string } }

/** What a 2.x client application keeps: in memory, with the URL it would open in a browser. */
function memoryProvider(clientId: string, redirectUrl: string): Provider {
  let tokens: { access_token: string; token_type: string } | undefined
  let verifier = ''
  const provider: Provider = {
    get redirectUrl() {
      return redirectUrl
    },
    get clientMetadata() {
      return { client_name: 'SDK 2.x client', redirect_uris: [redirectUrl], token_endpoint_auth_method: 'none' }
    },
    state: () => 'state-sdk2',
    clientInformation: () => ({ client_id: clientId }),
    tokens: () => tokens,
    saveTokens: (t) => {
      tokens = t
      provider.saved = t
    },
    redirectToAuthorization: (url) => {
      provider.authorizationUrl = url
    },
    saveCodeVerifier: (v) => {
      verifier = v
    },
    codeVerifier: () => verifier,
  }
  return provider
}

const upstream = await startSdk2Upstream()
t.teardown(() => upstream.close())
const passwordHash = await hashPassword('alice-password')
const textOf = (result: unknown) =>
  ((result as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('')

const modes = [
  { label: 'legacy (2025 initialize handshake)', mode: 'legacy' as const, expectModern: false },
  { label: 'auto (server/discover probe)', mode: 'auto' as const, expectModern: true },
  { label: 'pinned to 2026-07-28', mode: { pin: MODERN_PROTOCOL_VERSION }, expectModern: true },
]

for (const m of modes) {
  t.test(`SDK 2.x auth() and client, ${m.label}, against a 2.x upstream`, async (t) => {
    const gw = await startTestGateway(t, {
      resources: [{ upstream: upstream.url, scopes: [{ name: 'mcp', description: 'Use the tools' }] }],
      config: {
        login: { static: { users: [{ username: 'alice', passwordHash }] } },
        clients: [{ clientId: 'sdk2-client', name: 'SDK 2.x client', redirectUris: ['http://127.0.0.1/callback'] }],
      },
    })
    const mcpUrl = gw.mcpUrl()
    const provider = memoryProvider('sdk2-client', 'http://127.0.0.1:43213/callback')

    t.equal(await auth(provider, { serverUrl: mcpUrl }), 'REDIRECT', 'discovered from the MCP URL, off to /authorize')
    const authorizationUrl = provider.authorizationUrl!
    t.equal(authorizationUrl.origin + authorizationUrl.pathname, `${gw.origin}/oauth/authorize`)
    t.equal(authorizationUrl.searchParams.get('resource'), mcpUrl, 'the resource indicator (MCPA-46)')
    t.equal(authorizationUrl.searchParams.get('code_challenge_method'), 'S256')

    const browser = new FormBrowser(gw.origin)
    const login = await browser.get(authorizationUrl.href)
    const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
    const back = await browser.submit(consent, { decision: 'allow' })
    t.equal(back.status, 303)
    const callback = new URL(back.location!)
    t.equal(callback.searchParams.get('iss'), gw.config.issuer, 'RFC 9207 iss, which the 2.x client checks (MCPA-F01)')
    const iss = callback.searchParams.get('iss')!
    t.equal(await auth(provider, { serverUrl: mcpUrl, authorizationCode: callback.searchParams.get('code')!, iss }), 'AUTHORIZED')
    const token = provider.saved!.access_token

    const seenBefore = upstream.requests.length
    const client = new Client({ name: 'sdk2-oauth', version: '2.0.0' }, { versionNegotiation: { mode: m.mode } })
    await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }))
    t.teardown(() => client.close())
    t.ok((await client.listTools()).tools.some((tool) => tool.name === 'echo'), 'tools/list')
    t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: `via ${m.label}` } })), `via ${m.label}`, 'tools/call')

    const seen = upstream.requests.slice(seenBefore)
    t.ok(seen.length > 0, 'the calls reached the upstream')
    for (const r of seen) {
      t.equal(r.headers['authorization'], undefined, `${r.method} ${r.headers['mcp-method'] ?? ''}: no Authorization upstream (MCPA-60)`)
      t.notOk(JSON.stringify(r.headers).includes(token) || r.body.includes(token), 'the token appears nowhere upstream')
    }
    const call = seen.find((r) => r.body.includes('"tools/call"'))!
    if (m.expectModern) {
      t.equal(call.headers['mcp-protocol-version'], MODERN_PROTOCOL_VERSION, 'the call spoke 2026-07-28')
      t.equal(call.headers['mcp-name'], 'echo', 'with its mirrored headers (MCPT-11)')
      t.notOk(seen.some((r) => r.body.includes('"initialize"')), 'no initialize handshake')
    } else {
      t.ok(seen.some((r) => r.body.includes('"initialize"')), 'the 2025 initialize handshake')
      t.not(call.headers['mcp-protocol-version'], MODERN_PROTOCOL_VERSION, 'the call spoke a 2025 revision')
    }
  })
}
