/**
 * MCP-aware authorization through the real gateway: tool-level scopes with an SDK client that
 * steps up (MCPA-43..45), header/body consistency for 2026-07-28 (MCPT-12), denied calls,
 * filtered lists over JSON and SSE, and the audit trail.
 */
import t from 'tap'
import { auth, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js'
import { testPasswordHash } from '../helpers/passwords.js'
import { connectSdk1Client, connectSdk2Client, MODERN_PROTOCOL_VERSION, modernRequest, postJsonRpc } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream, startSdk2Upstream } from '../fixtures/mcp-upstream.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { startTestGateway } from '../helpers/gateway.js'

const scopes = [
  { name: 'files:read', description: 'Read files' },
  { name: 'files:admin', description: 'Delete files' },
]
const policy = {
  filterLists: true,
  rules: [
    { id: 'deletes-need-admin', method: 'tools/call', name: 'delete_*', scopes: ['files:read', 'files:admin'] },
    { id: 'no-secrets', method: 'resources/read', name: 'file:///secrets/*', action: 'deny', reason: 'secrets are read in the vault, not through agents' },
    { id: 'no-purge', method: 'tools/call', name: 'purge_*', action: 'deny' },
    { id: 'open-prompts', method: 'prompts/get', scopes: [] },
  ],
}
const names = (tools: { name: string }[]) => tools.map((x) => x.name).sort()

t.test('a call that needs more scope: 403 step-up challenge; re-authorization with the larger scope gets through', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, {
    resources: [{ upstream: upstream.url, scopes, requiredScopes: ['files:read'], policy: { rules: policy.rules } }],
    config: {
      login: { static: { users: [{ username: 'alice', passwordHash: await testPasswordHash('alice-password') }] } },
      // The 1.x SDK answers insufficient_scope with a refresh when it holds a refresh token, which
      // cannot widen the scope; a client without refresh tokens re-authorizes, as step-up needs.
      clients: [{ clientId: 'app', name: 'App', redirectUris: ['http://127.0.0.1/callback'], grantTypes: ['authorization_code'] }],
    },
  })
  const browser = new FormBrowser(gw.origin)
  let verifier = ''
  let authorizationUrl: URL | undefined
  const provider: OAuthClientProvider & { saved?: OAuthTokens } = {
    redirectUrl: 'http://127.0.0.1:40001/callback',
    clientMetadata: { redirect_uris: ['http://127.0.0.1:40001/callback'] },
    clientInformation: () => ({ client_id: 'app' }),
    tokens() {
      return this.saved
    },
    saveTokens(tokens) {
      this.saved = tokens
    },
    redirectToAuthorization: (url) => {
      authorizationUrl = url
    },
    saveCodeVerifier: (v) => {
      verifier = v
    },
    codeVerifier: () => verifier,
  }
  const consentAndGetCode = async () => {
    let page = await browser.get(authorizationUrl!.href)
    if (/Sign in/.test(page.html)) page = await browser.submit(page, { username: 'alice', password: 'alice-password' })
    return { page, code: async () => new URL((await browser.submit(page, { decision: 'allow' })).location!).searchParams.get('code')! }
  }

  t.equal(await auth(provider, { serverUrl: gw.mcpUrl(), scope: 'files:read' }), 'REDIRECT')
  const first = await consentAndGetCode()
  t.equal(await auth(provider, { serverUrl: gw.mcpUrl(), authorizationCode: await first.code() }), 'AUTHORIZED')
  t.equal(provider.saved!.scope, 'files:read')

  const transport = new StreamableHTTPClientTransport(new URL(gw.mcpUrl()), { authProvider: provider })
  const client = new Client({ name: 'step-up', version: '1.0.0' })
  await client.connect(transport)
  t.match(await client.callTool({ name: 'read_file', arguments: { path: '/a' } }), { content: [{}] }, 'the base scope suffices for read_file')

  const before = upstream.requests.length
  const raw = await postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 41, method: 'tools/call', params: { name: 'delete_file', arguments: { path: '/a' } } }, {
    authorization: `Bearer ${provider.saved!.access_token}`,
    'mcp-session-id': upstream.sessionIds()[0]!,
    'mcp-protocol-version': '2025-11-25',
  })
  t.equal(raw.status, 403)
  const challenge = raw.headers.get('www-authenticate')!
  t.match(challenge, /error="insufficient_scope"/)
  t.match(challenge, /scope="files:read files:admin"/, 'the challenge names everything the call needs (MCPA-F05)')
  t.match(challenge, /resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp"/)
  t.match(JSON.parse(raw.text), { jsonrpc: '2.0', id: 41, error: { code: -32005 } }, 'insufficientScope, not a policy refusal')
  t.equal(upstream.requests.length, before, 'the refused call never reached the upstream')

  // The SDK's transport reacts to the 403 by starting a step-up authorization itself.
  authorizationUrl = undefined
  await t.rejects(client.callTool({ name: 'delete_file', arguments: { path: '/a' } }))
  t.ok(authorizationUrl, 'the SDK asked for re-authorization')
  t.match(authorizationUrl!.searchParams.get('scope') ?? '', /files:admin/, 'with the challenged scope')
  const second = await consentAndGetCode()
  t.match(second.page.html, /<li class="new"><code>files:admin<\/code>/, 'consent shows what is new')
  await transport.finishAuth(await second.code())
  t.match(provider.saved!.scope, /files:admin/)
  t.match(await client.callTool({ name: 'delete_file', arguments: { path: '/a' } }), { content: [{}] }, 'after step-up the call goes through')
  await client.close()

  const decisions = gw.logs.filter((l) => l.audit === 'mcp.decision')
  t.ok(decisions.some((d) => d.decision === 'deny' && d.rule === 'deletes-need-admin' && d.name === 'delete_file' && d.sub === 'static:alice' && d.clientId === 'app'))
  t.ok(decisions.some((d) => d.decision === 'allow' && d.rule === 'deletes-need-admin'))
  t.ok(decisions.some((d) => d.decision === 'allow' && d.rule === 'default' && d.name === 'read_file'))
  t.notOk(decisions.some((d) => 'arguments' in d), 'arguments are not logged unless asked for')
})

t.test('2026-07-28: an Mcp-Name that disagrees with the body is refused with -32020 (MCPT-12)', async (t) => {
  const upstream = await startSdk2Upstream()
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url, scopes, requiredScopes: ['files:read'], policy }] })
  const token = await gw.mint({ scopes: ['files:read'] })
  const forged = modernRequest(3, 'tools/call', { name: 'delete_file', arguments: { path: '/a' } })
  const res = await postJsonRpc(gw.mcpUrl(), forged.body, { ...forged.headers, 'mcp-name': 'read_file', authorization: `Bearer ${token}` })
  t.equal(res.status, 400)
  t.same(JSON.parse(res.text), { jsonrpc: '2.0', id: 3, error: { code: -32020, message: 'Mcp-Name does not match the body' } })
  t.equal(upstream.requests.length, 0, 'nothing reached the upstream')
  const honest = modernRequest(4, 'tools/call', { name: 'read_file', arguments: { path: '/a' } })
  const ok = await postJsonRpc(gw.mcpUrl(), honest.body, { ...honest.headers, authorization: `Bearer ${token}` })
  t.equal(ok.status, 200)
  const client = await connectSdk2Client(gw.mcpUrl(), { token, protocolVersion: MODERN_PROTOCOL_VERSION })
  t.teardown(() => client.close())
  t.same(names((await client.listTools()).tools), ['countdown', 'echo', 'notify_later', 'read_file', 'whoami'], 'the 2026 client sees the filtered list')
  await t.rejects(client.callTool({ name: 'delete_file', arguments: { path: '/a' } }), 'delete refused for the 2026 client too')
})

t.test('denied calls get a JSON-RPC error; open rules need no scope', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url, scopes, requiredScopes: ['files:read'], policy: { ...policy, auditArguments: true } }] })
  const admin = await gw.mint({ scopes: ['files:read', 'files:admin'] })
  const secret = await postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 'r1', method: 'resources/read', params: { uri: 'file:///secrets/db.txt' } }, { authorization: `Bearer ${admin}` })
  t.equal(secret.status, 200, 'answered, not failed: the session goes on')
  t.same(JSON.parse(secret.text), {
    jsonrpc: '2.0',
    id: 'r1',
    error: { code: -32006, message: "the gateway's policy refuses this call: secrets are read in the vault, not through agents" },
  })
  t.equal(secret.headers.get('www-authenticate'), null, 'no step-up can help a denied call')
  const noScope = await gw.mint({ scopes: [] })
  const prompt = await postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 2, method: 'prompts/get', params: { name: 'greeting' } }, { authorization: `Bearer ${noScope}` })
  t.equal(prompt.status, 200, 'prompts/get is open to any valid token')
  const list = await postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 3, method: 'tools/list' }, { authorization: `Bearer ${noScope}` })
  t.equal(list.status, 403, 'everything else still needs the base scope')
  const batch = await postJsonRpc(
    gw.mcpUrl(),
    [
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read_file', arguments: { path: '/a' } } },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'delete_file', arguments: { path: '/a' } } },
    ],
    { authorization: `Bearer ${await gw.mint({ scopes: ['files:read'] })}`, 'mcp-protocol-version': '2025-03-26' },
  )
  t.equal(batch.status, 403, 'a 2025-03-26 batch is checked element by element: one refused element refuses it')
  t.match(JSON.parse(batch.text), { id: 2, error: { code: -32005 } }, 'the element that needs a scope: insufficientScope')
  const withArgs = gw.logs.find((l) => l.audit === 'mcp.decision' && l.name === 'file:///secrets/db.txt')
  t.ok(withArgs, 'the denial is audited')
  t.ok(gw.logs.some((l) => l.audit === 'mcp.decision' && l.name === 'read_file' && JSON.stringify(l.arguments) === '{"path":"/a"}'), 'auditArguments: true logs arguments')
})

for (const jsonResponse of [true, false]) {
  t.test(`tools/list is filtered to what the token may call (${jsonResponse ? 'JSON' : 'SSE'} answer)`, async (t) => {
    const upstream = await startSdk1Upstream({ stateful: true, jsonResponse })
    t.teardown(() => upstream.close())
    const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url, scopes, requiredScopes: ['files:read'], policy }] })
    const reader = await connectSdk1Client(gw.mcpUrl(), { token: await gw.mint({ scopes: ['files:read'] }) })
    t.teardown(() => reader.close())
    const admin = await connectSdk1Client(gw.mcpUrl(), { token: await gw.mint({ sub: 'root', scopes: ['files:read', 'files:admin'] }) })
    t.teardown(() => admin.close())
    const readerTools = names((await reader.listTools()).tools)
    const adminTools = names((await admin.listTools()).tools)
    t.notOk(readerTools.includes('delete_file'), 'hidden from a token that may not call it')
    t.ok(readerTools.includes('read_file'))
    t.ok(adminTools.includes('delete_file'), 'shown to one that may')
    t.equal(adminTools.length, readerTools.length + 1)
    const resources = (await reader.listResources()).resources
    t.ok(resources.length > 0, 'other lists pass through when nothing is filtered out')
    // Non-list answers are untouched and still stream.
    t.match(await reader.callTool({ name: 'echo', arguments: { text: 'x' } }), { content: [{ text: 'x' }] })
  })
}

for (const generation of ['SDK 1.x', 'SDK 2.x'] as const) {
  t.test(`${generation}: a call the policy refuses is an error of that call, with the rule's reason; the session goes on`, async (t) => {
    const upstream = generation === 'SDK 1.x' ? await startSdk1Upstream({ stateful: true, jsonResponse: false }) : await startSdk2Upstream()
    t.teardown(() => upstream.close())
    const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url, scopes, requiredScopes: ['files:read'], policy }] })
    const token = await gw.mint({ scopes: ['files:read', 'files:admin'] })
    const client = generation === 'SDK 1.x' ? await connectSdk1Client(gw.mcpUrl(), { token }) : await connectSdk2Client(gw.mcpUrl(), { token })
    t.teardown(() => client.close())
    const refused = await client.readResource({ uri: 'file:///secrets/db.txt' }).then(
      () => undefined,
      (err: unknown) => err as { code?: unknown; message?: string },
    )
    t.ok(refused, 'the SDK raises it')
    t.equal(refused?.code, -32006, 'as a JSON-RPC error of that request (policyDenied), not an HTTP failure')
    t.match(refused?.message ?? '', /secrets are read in the vault, not through agents/, "with the rule's public reason")
    const echo = await client.callTool({ name: 'echo', arguments: { text: 'still here' } })
    t.match(JSON.stringify(echo), /still here/, 'the next allowed call works in the same session')
    t.ok(gw.logs.some((l) => l.audit === 'mcp.decision' && l.decision === 'deny' && l.rule === 'no-secrets'), 'audited')
  })
}

