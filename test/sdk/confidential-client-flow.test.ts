/**
 * SDK 1.x auth() with a pre-registered confidential client, for each secret-based method
 * Gatehouse offers (RFC 6749 §2.3.1): the SDK picks the method from the client's registration
 * and the metadata, authenticates at the token endpoint with the secret, and the token works
 * through the gateway; the upstream never sees it (MCPA-60). A wrong secret is refused
 * (invalid_client) and leaves the client without tokens.
 */
import t from 'tap'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { hashPassword } from '../../src/login/passwords.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { MemoryClientProvider } from '../helpers/sdk-provider.js'
import { startTestGateway } from '../helpers/gateway.js'

const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
t.teardown(() => upstream.close())
const passwordHash = await hashPassword('alice-password')
const SECRET = 'sdk-confidential-secret-0123456789abcdef'

for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
  t.test(`SDK 1.x auth() with a pre-registered confidential client (${method})`, async (t) => {
    const gw = await startTestGateway(t, {
      resources: [{ upstream: upstream.url }],
      config: {
        login: { static: { users: [{ username: 'alice', passwordHash }] } },
        clients: [{ clientId: 'sdk-confidential', name: 'Confidential client', redirectUris: ['http://127.0.0.1/callback'], tokenEndpointAuthMethod: method, secret: SECRET }],
      },
    })
    const mcpUrl = gw.mcpUrl()
    const seen: { authorization: string | null; body: string }[] = []
    const fetchFn = async (input: string | URL, init?: RequestInit) => {
      if (String(input).endsWith('/oauth/token')) seen.push({ authorization: new Headers(init?.headers).get('authorization'), body: String(init?.body ?? '') })
      return fetch(input, init)
    }
    const signIn = async (provider: MemoryClientProvider) => {
      t.equal(await auth(provider, { serverUrl: mcpUrl, fetchFn }), 'REDIRECT')
      const browser = new FormBrowser(gw.origin)
      const login = await browser.get(provider.authorizationUrl!.href)
      const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
      // Consent is remembered per person and client: the second time sign-in leads straight back.
      const back = consent.location ? consent : await browser.submit(consent, { decision: 'allow' })
      return new URL(back.location!).searchParams.get('code')!
    }
    const info = { client_id: 'sdk-confidential', client_secret: SECRET, token_endpoint_auth_method: method }
    const provider = new MemoryClientProvider({ info, redirectUrl: 'http://127.0.0.1:43214/callback' })
    t.equal(await auth(provider, { serverUrl: mcpUrl, authorizationCode: await signIn(provider), fetchFn }), 'AUTHORIZED')
    const sent = seen.at(-1)!
    if (method === 'client_secret_basic') t.match(sent.authorization, /^Basic /, 'the secret went in the Authorization header')
    else t.match(sent.body, /client_secret=/, 'the secret went in the form body')

    const client = new Client({ name: 'sdk-confidential', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }))
    t.ok((await client.listTools()).tools.some((tool) => tool.name === 'echo'), 'tools/list')
    await client.callTool({ name: 'echo', arguments: { text: 'confidential' } })
    await client.close()
    const token = provider.savedTokens!.access_token
    for (const r of upstream.requests) {
      t.equal(r.headers['authorization'], undefined, 'no Authorization upstream (MCPA-60)')
      t.notOk(r.body.includes(token), 'the token appears nowhere upstream')
    }

    const wrong = new MemoryClientProvider({ info: { ...info, client_secret: `${SECRET}x` }, redirectUrl: 'http://127.0.0.1:43214/callback' })
    await t.rejects(auth(wrong, { serverUrl: mcpUrl, authorizationCode: await signIn(wrong), fetchFn }), /invalid_client|Invalid client|authentication/i, 'a wrong secret: invalid_client')
    t.equal(wrong.savedTokens, undefined, 'and no tokens')
  })
}
