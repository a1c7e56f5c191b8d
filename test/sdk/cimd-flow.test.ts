/**
 * The official MCP SDK client with a URL client id (`clientMetadataUrl`, SEP-991 / CIMD): the
 * SDK sees client_id_metadata_document_supported in the metadata and uses its document URL as
 * client_id. The document is served by a loopback https server whose test CA the gateway trusts
 * through NODE_EXTRA_CA_CERTS, so that gateway runs as a child process (`gatehouse serve`), with
 * cimd.allowPrivateAddresses on for it alone. The negative cases show the switch off (default),
 * the trust list and a bot-challenge page each refusing on the gateway's own page, never 500.
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
import { startChildGateway } from '../cimd/child-gateway.js'
import { json, makeTestCertificates, startHttpsDocServer, type DocServer } from '../cimd/servers.js'

// A child gateway compiles the sources on the fly: slow on a loaded machine.
t.setTimeout(360_000)

const tls = makeTestCertificates()
t.teardown(() => tls.cleanup())
const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
t.teardown(() => upstream.close())
// The same server answers as https://127.0.0.1:PORT (IP SAN) and https://localhost:PORT (DNS SAN).
const docs = await startHttpsDocServer(tls, '127.0.0.1')
t.teardown(() => docs.close())
const passwordHash = await hashPassword('alice-password')

const REDIRECT = 'http://127.0.0.1:43212/callback'
const clientUrl = `${docs.origin}/clients/sdk.json`
const botUrl = `${docs.origin}/clients/bot.json`
const unlistedUrl = `${docs.origin}/clients/unlisted.json`
const document = (clientId: string) => ({
  client_id: clientId,
  client_name: 'CIMD SDK client',
  redirect_uris: [REDIRECT],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
})
docs.routes.set('/clients/sdk.json', json(document(clientUrl), { 'cache-control': 'max-age=300' }))
docs.routes.set('/clients/unlisted.json', json(document(unlistedUrl)))
// What Cloudflare answers datacenter fetches of some real documents with (IOP-03).
docs.routes.set('/clients/bot.json', (_req, res) =>
  res.writeHead(403, { 'content-type': 'text/html; charset=UTF-8' }).end('<!DOCTYPE html><html><title>Just a moment...</title></html>'),
)

const hits = (server: DocServer, path: string) => server.hits.get(path) ?? 0

const child = await startChildGateway(t, tls, {
  login: { static: { users: [{ username: 'alice', passwordHash, email: 'alice@example.com' }] } },
  cimd: {
    enabled: true,
    allowPrivateAddresses: true,
    trust: { allow: [{ url: clientUrl }, { url: botUrl }] },
  },
  resources: [
    {
      id: 'r0',
      name: 'Resource 0',
      path: '/mcp',
      upstream: upstream.url,
      scopes: [{ name: 'mcp', description: 'Use the tools' }],
      requiredScopes: ['mcp'],
    },
  ],
})

t.test('SDK auth() with clientMetadataUrl: document over https, login, consent with the verified host, tokens, MCP, refresh', async (t) => {
  const metadata = (await (await fetch(`${child.origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>
  t.equal(metadata.client_id_metadata_document_supported, true, 'advertised when CIMD is enabled')

  const provider = new MemoryClientProvider({ redirectUrl: REDIRECT, clientMetadataUrl: clientUrl, clientMetadata: { client_name: 'CIMD SDK client' }, state: 'state-cimd' })
  t.equal(await auth(provider, { serverUrl: child.mcpUrl }), 'REDIRECT')
  t.equal(provider.info?.client_id, clientUrl, 'the SDK chose the URL client id, not registration')
  const authorizationUrl = provider.authorizationUrl!
  t.equal(authorizationUrl.searchParams.get('client_id'), clientUrl)
  t.equal(hits(docs, '/clients/sdk.json'), 0, 'nothing fetched before the authorization request')

  const browser = new FormBrowser(child.origin)
  const login = await browser.get(authorizationUrl.href)
  t.equal(login.status, 200, 'the login page, not an error page')
  t.match(login.html, /Sign in to continue/)
  t.equal(hits(docs, '/clients/sdk.json'), 1, 'the document was fetched once, over https with the test CA')
  const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
  t.equal(consent.status, 200)
  t.match(consent.html, /Allow <span>CIMD SDK client<\/span>/)
  t.match(consent.html, `client id hosted at 127.0.0.1:${docs.port}`, 'the verified host is on the consent page')
  t.match(consent.html, `<code>${clientUrl}</code>`, 'the client id itself is shown')
  const back = await browser.submit(consent, { decision: 'allow' })
  t.equal(back.status, 303)
  const callback = new URL(back.location!)
  t.equal(callback.origin + callback.pathname, REDIRECT)
  t.equal(callback.searchParams.get('state'), 'state-cimd')
  const code = callback.searchParams.get('code')!
  t.ok(code)

  t.equal(await auth(provider, { serverUrl: child.mcpUrl, authorizationCode: code }), 'AUTHORIZED')
  const tokens = provider.savedTokens!
  t.ok(tokens.refresh_token, 'refresh_token is in the effective grant types')
  const payload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  t.match(payload, { client_id: clientUrl, aud: child.mcpUrl, sub: 'static:alice' })

  const client = new Client({ name: 'cimd-sdk-flow', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(child.mcpUrl), { authProvider: provider }))
  t.ok((await client.listTools()).tools.some((tool) => tool.name === 'echo'))
  const echoed = await client.callTool({ name: 'echo', arguments: { text: 'via a URL client id' } })
  t.match(JSON.stringify(echoed.content), /via a URL client id/)
  await client.close()

  const before = tokens.refresh_token
  t.equal(await auth(provider, { serverUrl: child.mcpUrl }), 'AUTHORIZED', 'refreshed without a browser')
  t.not(provider.savedTokens!.refresh_token, before, 'the refresh token rotated')
  const refreshed = JSON.parse(Buffer.from(provider.savedTokens!.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  t.equal(refreshed.client_id, clientUrl)
  const again = new Client({ name: 'cimd-sdk-flow-2', version: '1.0.0' })
  await again.connect(new StreamableHTTPClientTransport(new URL(child.mcpUrl), { authProvider: provider }))
  t.ok((await again.listTools()).tools.length > 0, 'the refreshed token works')
  await again.close()
  t.equal(hits(docs, '/clients/sdk.json'), 1, 'token and refresh used the cached document')
  t.ok(await child.logged(/"msg":"cimd document fetched"/), 'the fetch is logged')
})

t.test('a client id URL not on the allow list is refused before any fetch, even with the address switch on', async (t) => {
  const before = docs.connections
  const browser = new FormBrowser(child.origin)
  const provider = new MemoryClientProvider({ redirectUrl: REDIRECT, clientMetadataUrl: unlistedUrl, clientMetadata: { client_name: 'CIMD SDK client' }, state: 'state-cimd' })
  t.equal(await auth(provider, { serverUrl: child.mcpUrl }), 'REDIRECT')
  const page = await browser.get(provider.authorizationUrl!.href)
  t.equal(page.status, 400)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.equal(page.location, undefined, 'never sent to the unverified redirect URI')
  t.match(page.html, /not allowed by the gateway&#39;s policy/)
  t.match(page.html, `client id hosted at 127.0.0.1:${docs.port}`)
  t.equal(hits(docs, '/clients/unlisted.json'), 0, 'the document server saw no request')
  t.equal(docs.connections, before, 'nor a TLS connection')
  t.ok(await child.logged(/"step":"trust","rule":"cimd\.trust[^"]*"[^\n]*cimd client refused/), 'the refusal is logged with its step and rule')
})

t.test('a bot-challenge page (403 text/html) is a clear invalid_client page, never a 500', async (t) => {
  const browser = new FormBrowser(child.origin)
  const provider = new MemoryClientProvider({ redirectUrl: REDIRECT, clientMetadataUrl: botUrl, clientMetadata: { client_name: 'CIMD SDK client' }, state: 'state-cimd' })
  t.equal(await auth(provider, { serverUrl: child.mcpUrl }), 'REDIRECT')
  const page = await browser.get(provider.authorizationUrl!.href)
  t.equal(page.status, 400)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.equal(page.location, undefined)
  t.match(page.html, /This request cannot continue/)
  t.match(page.html, `the metadata document of this application (at 127.0.0.1:${docs.port}) could not be used`)
  t.match(page.html, /did not answer 200 OK/)
  t.notMatch(page.html, /Just a moment/, 'nothing the remote side sent is echoed')
  t.equal(hits(docs, '/clients/bot.json'), 1)
  // Remembered in the negative cache: a retry does not hit the host again.
  const retry = await browser.get(provider.authorizationUrl!.href)
  t.equal(retry.status, 400)
  t.equal(hits(docs, '/clients/bot.json'), 1, 'negative cache')
  t.ok(await child.logged(/"step":"fetch","rule":"fetch\.status"/), 'logged with its step and rule')
  t.notMatch(child.output(), /"statusCode":500/)
})

t.test('allowPrivateAddresses off (the default): the same URL ends on the gateway error page, nothing is fetched', async (t) => {
  const localhostUrl = `https://localhost:${docs.port}/clients/sdk.json`
  const gw = await startTestGateway(t, {
    resources: [{ upstream: upstream.url }],
    config: {
      login: { static: { users: [{ username: 'alice', passwordHash }] } },
      cimd: { enabled: true, trust: { allow: [{ url: clientUrl }, { url: localhostUrl }] } },
    },
  })
  const before = { hits: hits(docs, '/clients/sdk.json'), connections: docs.connections }
  const browser = new FormBrowser(gw.origin)

  // The IP-literal URL: refused by the URL rules, before trust and before any I/O.
  const provider = new MemoryClientProvider({ redirectUrl: REDIRECT, clientMetadataUrl: clientUrl, clientMetadata: { client_name: 'CIMD SDK client' }, state: 'state-cimd' })
  t.equal(await auth(provider, { serverUrl: gw.mcpUrl() }), 'REDIRECT')
  t.equal(provider.info?.client_id, clientUrl)
  const page = await browser.get(provider.authorizationUrl!.href)
  t.equal(page.status, 400)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.equal(page.location, undefined, 'no Location header')
  t.match(page.html, /not an acceptable metadata document URL: the client id must name a host, not an IP address/)
  t.match(gw.logs.find((l) => l.msg === 'cimd client refused'), { step: 'url', rule: 'url.ip-literal' })

  // A DNS name that resolves to loopback: allowed by trust, refused by the fetch step's address check.
  const viaName = new MemoryClientProvider({ redirectUrl: REDIRECT, clientMetadataUrl: localhostUrl, clientMetadata: { client_name: 'CIMD SDK client' }, state: 'state-cimd' })
  t.equal(await auth(viaName, { serverUrl: gw.mcpUrl() }), 'REDIRECT')
  const named = await browser.get(viaName.authorizationUrl!.href)
  t.equal(named.status, 400)
  t.equal(named.location, undefined)
  t.match(named.html, `the metadata document of this application (at localhost:${docs.port}) could not be used`)
  t.match(named.html, /resolves to an address the gateway does not connect to/)
  t.match(gw.logs.filter((l) => l.msg === 'cimd client refused').at(-1), { step: 'fetch', rule: 'fetch.not_allowed_address' })

  t.equal(hits(docs, '/clients/sdk.json'), before.hits, 'no request reached the document server')
  t.equal(docs.connections, before.connections, 'not even a TLS connection')
  t.notOk(gw.logs.some((l) => l.statusCode === 500 || l.level === 50), 'no 500, no error log')
})
