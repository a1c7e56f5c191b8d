/**
 * Red team: Client ID Metadata Document intake and fetching (SEC-01..15, SEC-24/25, CIMD-05,
 * CIMD-08, CIMD-12, CIMD-24/25, CIMD-42, CIMD-45).
 *
 * - Pure rules and the resolver with a recording fetcher: URL forms that the trust policy and
 *   the fetcher could read differently are refused before any fetch.
 * - Address classification on the addresses themselves and through a resolver stub; no packet
 *   leaves loopback.
 * - An in-process gateway (development switches allowHttp/allowPrivateAddresses on, so it can
 *   fetch from a loopback document server this test starts) for hostile servers and hostile
 *   documents: every refusal is the gateway's 400 page, never a redirect or a 500, and the
 *   consent page never carries markup or script from a document.
 */
import { gzipSync } from 'node:zlib'
import { createHash, randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { loadConfigObject } from '../../src/config/load.js'
import { testPasswordHash } from '../helpers/passwords.js'
import { FetchError, SafeFetcher, specialUseRange, type FetchedJson } from '../../src/oauth/clients/cimd/fetch.js'
import { CimdRefusal } from '../../src/oauth/clients/cimd/refusal.js'
import { CimdClients } from '../../src/oauth/clients/cimd/resolve.js'
import { checkClientIdUrl } from '../../src/policy/cimd-url-rules.js'
import { validateEffective } from '../../src/oauth/clients/cimd/document.js'
import { MemoryStore } from '../../src/store/memory.js'
import { authorizeUrl as authorizeUrlAt } from '../helpers/authorize-url.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { startTestGateway } from '../helpers/gateway.js'
import { json, startHttpDocServer } from '../cimd/servers.js'

t.setTimeout(120_000)

// ─── A real gateway and a loopback document server for the hostile servers and documents ──────────────────────────────────

const docs = await startHttpDocServer()
t.teardown(() => docs.close())
const base = `http://127.0.0.1:${docs.port}`
const REDIRECT = 'http://127.0.0.1:43299/callback'
const doc = (clientId: string, extra: Record<string, unknown> = {}) => ({
  client_id: clientId,
  client_name: 'Probe client',
  redirect_uris: [REDIRECT],
  token_endpoint_auth_method: 'none',
  ...extra,
})
const gw = await startTestGateway(t, {
  resources: [{ upstream: 'http://127.0.0.1:9/mcp' }],
  config: {
    login: { static: { users: [{ username: 'alice', passwordHash: await testPasswordHash('alice-password') }] } },
    cimd: {
      enabled: true,
      allowHttp: true,
      allowPrivateAddresses: true,
      trust: { allow: [{ prefix: `${base}/clients/` }] },
      fetch: { timeoutMs: 1500, connectTimeoutMs: 1000 },
    },
  },
})

const verifier = randomBytes(32).toString('base64url')
const authorizeUrl = (clientId: string) =>
  authorizeUrlAt(gw.origin, {
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    state: 'st',
    resource: gw.mcpUrl(),
  })
const hits = (path: string) => docs.hits.get(path) ?? 0

async function refusedPage(t: Test, what: string, clientId: string, pattern?: RegExp) {
  const started = Date.now()
  const res = await fetch(authorizeUrl(clientId), { redirect: 'manual' })
  const html = await res.text()
  t.equal(res.status, 400, `${what}: 400`)
  t.equal(res.headers.get('location'), null, `${what}: never a redirect (SEC-26)`)
  t.match(res.headers.get('content-type'), /^text\/html/, `${what}: the gateway's page`)
  if (pattern) t.match(html, pattern, `${what}: names the rule`)
  return { html, ms: Date.now() - started }
}


const rules = { allowHttp: false, allowQuery: false, maxUrlLength: 2048, allowPrivateAddresses: false }
const ruleOf = (url: string) => {
  const r = checkClientIdUrl(url, rules)
  return r.ok ? 'ok' : r.rule
}

t.test('SEC-01 SEC-04 CIMD-05: client id forms the trust policy and the fetcher would read differently are refused', async (t) => {
  const cases: [string, string][] = [
    ['backslash turns the wildcard-matching authority into another host', 'https://evil.test\\.example.com/client.json'],
    ['backslash dot segments escape an allowed path prefix', 'https://good.example.com/clients/..\\evil/client.json'],
    ['backslash as path separator', 'https://good.example.com\\clients\\x.json'],
    ['percent-encoded host', 'https://evil%2etest/client.json'],
    ['percent-encoded host letter', 'https://ex%61mple.com/client.json'],
    ['upper-case host', 'https://EVIL.test/client.json'],
    ['explicit default port :443', 'https://evil.test:443/client.json'],
    ['port with leading zeros', 'https://evil.test:0443/client.json'],
    ['trailing dot host', 'https://evil.test./client.json'],
    ['pipe, braces, caret, backtick, quotes, angle brackets', 'https://evil.test/a|b{c}^`"<>'],
    ['upper-case scheme', 'HTTPS://evil.test/client.json'],
    ['encoded dot segments %2e%2e', 'https://good.example.com/clients/%2e%2e/evil.json'],
    ['mixed encoded dot segment .%2E', 'https://good.example.com/clients/.%2E/evil.json'],
    ['userinfo', 'https://good.example.com@evil.test/client.json'],
    ['IPv4-mapped IPv6 literal', 'https://[::ffff:169.254.169.254]/client.json'],
    ['decimal IPv4 literal', 'https://2852039166/client.json'],
    ['raw IDN homograph (Cyrillic а)', 'https://\u0441laude.ai/oauth/client.json'],
    ['fragment', 'https://good.example.com/client.json#x'],
    ['extremely long URL', `https://good.example.com/${'a'.repeat(3000)}`],
    ['tab inside', 'https://good.example.com/cli\tent.json'],
  ]
  for (const [what, url] of cases) t.not(ruleOf(url), 'ok', `${what}: refused (${ruleOf(url)})`)
  const punycode = new URL('https://\u0441laude.ai/').hostname
  t.equal(ruleOf(`https://${punycode}/oauth/client.json`), 'ok', `the homograph's punycode form ${punycode} is a plain, distinct name`)
  t.equal(ruleOf('https://good.example.com:8443/clients/x.json'), 'ok', 'CIMD-03: a non-default port is fine')
  t.equal(ruleOf("https://good.example.com/clients/a-b_c~d!$&'()*+,;=:@x.json"), 'ok', 'every RFC 3986 path character is fine')
})

t.test('SEC-04: the resolver refuses those forms before the trust policy or any fetch', async (t) => {
  const config = loadConfigObject(
    {
      publicUrl: 'https://gw.example.net',
      resources: [{ id: 'r', name: 'R', path: '/mcp', upstream: 'http://127.0.0.1:9' }],
      cimd: { enabled: true, trust: { allow: [{ host: '*.example.com' }, { prefix: 'https://good.example.com/clients/' }], deny: [{ host: 'evil.test' }] } },
    },
    'test',
  )
  const fetches: string[] = []
  const clients = new CimdClients({
    config: config.cimd,
    store: new MemoryStore(),
    selfOrigin: 'https://gw.example.net',
    fetcher: {
      async fetchJson(url: string): Promise<FetchedJson> {
        fetches.push(url)
        throw new FetchError('status', '404')
      },
    },
  })
  for (const url of [
    'https://evil.test\\.example.com/client.json',
    'https://good.example.com/clients/..\\..\\evil/client.json',
    'https://evil%2etest/client.json',
    'https://EVIL.test/client.json',
    'https://evil.test./client.json',
    'https://evil.test:443/client.json',
    'https://gw.example.net./client.json',
    'https://GW.example.net/client.json',
  ]) {
    let refusal: unknown
    try {
      await clients.resolve(url)
    } catch (err) {
      refusal = err
    }
    t.ok(refusal instanceof CimdRefusal && (refusal.step === 'url' || refusal.step === 'trust'), `${url}: refused at ${(refusal as CimdRefusal)?.step}`)
  }
  t.same(fetches, [], 'not one fetch')
})

t.test('SEC-09 SEC-05: a jwks_uri under the same rules: never the gateway itself in another spelling', async (t) => {
  const effective = (jwksUri: string) => {
    try {
      validateEffective(
        {
          client_id: 'https://c.example.com/client.json',
          redirect_uris: ['https://c.example.com/cb'],
          token_endpoint_auth_method: 'private_key_jwt',
          jwks_uri: jwksUri,
        },
        'https://c.example.com/client.json',
        { assertionAlgorithms: ['ES256'], urlRules: rules, selfOrigin: 'https://gw.example.net' },
      )
      return 'ok'
    } catch (err) {
      return (err as Error).message
    }
  }
  for (const uri of ['https://gw.example.net/oauth/jwks', 'https://GW.example.net/oauth/jwks', 'https://gw.example.net:443/oauth/jwks', 'https://gw.example.net./oauth/jwks', 'https://gw%2eexample.net/oauth/jwks', 'https://x.example.com\\@gw.example.net/oauth/jwks', 'https://169.254.169.254/jwks', 'http://c.example.com/jwks']) {
    t.match(effective(uri), /jwks_uri/, `${uri}: refused`)
  }
  t.equal(effective('https://c.example.com/jwks.json'), 'ok', 'control: the client\'s own https key set')
})

t.test('SEC-06 CIMD-42: special-use addresses, including the spellings ipaddr.js calls unicast', async (t) => {
  for (const a of ['::7f00:1', '::127.0.0.1', '::a9fe:a9fe', '::ffff:a9fe:a9fe', '0:0:0:0:0:ffff:7f00:1', '::ffff:0:7f00:1', '64:ff9b::a9fe:a9fe', 'fe80::1%eth0', '::', '0.0.0.0', '100.64.0.1', '198.18.0.1', 'fd00:ec2::254', '::ffff:100.64.0.1']) {
    t.ok(specialUseRange(a), `${a}: ${specialUseRange(a)}`)
  }
  t.equal(specialUseRange('93.184.216.34'), undefined, 'control: public')
  t.equal(specialUseRange('2606:4700::1111'), undefined, 'control: public v6')
})

t.test('SEC-06 SEC-07: names resolving to such addresses are refused before any connection (resolver stub)', async (t) => {
  const server = await startHttpDocServer()
  t.teardown(() => server.close())
  server.routes.set('/doc', json({ ok: true }))
  const answers: Record<string, string[]> = {
    'compat.test': ['::7f00:1'],
    'compat-metadata.test': ['::a9fe:a9fe'],
    'translated.test': ['::ffff:0:7f00:1'],
    'zero.test': ['0.0.0.0'],
    'unspecified6.test': ['::'],
    'cgnat.test': ['100.64.0.1'],
    'mixed-v6.test': ['2606:4700::1111', 'fe80::1'],
  }
  const fetcher = new SafeFetcher({
    maxBytes: 5120,
    connectTimeoutMs: 1000,
    timeoutMs: 1500,
    maxConcurrent: 4,
    allowPrivateAddresses: false,
    resolver: async (host) => (answers[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
  })
  t.teardown(() => fetcher.close())
  for (const host of Object.keys(answers)) {
    let kind = 'ok'
    try {
      await fetcher.fetchJson(`http://${host}:${server.port}/doc`)
    } catch (err) {
      kind = err instanceof FetchError ? err.kind : String(err)
    }
    t.equal(kind, 'not_allowed_address', host)
  }
  t.equal(server.connections, 0, 'no connection reached the loopback server')
})

t.test('SEC-04 CIMD-05: a backslash path cannot leave the trusted prefix on the real gateway', async (t) => {
  docs.routes.set('/evil.json', json(doc(`${base}/clients/..\\evil.json`)))
  await refusedPage(t, 'backslash dot segments', `${base}/clients/..\\evil.json`, /characters a URL cannot have/)
  await refusedPage(t, 'encoded dot segments', `${base}/clients/%2e%2e/evil.json`, /\. or \.\. path segments/)
  await refusedPage(t, 'a very long client id', `${base}/clients/${'a'.repeat(3000)}`, /longer than/)
  t.equal(hits('/evil.json'), 0, 'the document outside the prefix was never fetched')
})

t.test('CIMD-12 SEC-02: a document whose client_id differs by case, slash, port or encoding is refused', async (t) => {
  const url = `${base}/clients/exact.json`
  for (const [i, variant] of [url.replace('/clients/', '/Clients/'), `${url}/`, url.replace('127.0.0.1', '127.0.0.1.'), url.replace('exact', '%65xact'), ` ${url}`].entries()) {
    const path = `/clients/exact${i}.json`
    docs.routes.set(path, json(doc(variant.replace('exact.json', `exact${i}.json`).replace('exact/', `exact${i}/`).replace('%65xact.json', `%65xact${i}.json`))))
    await refusedPage(t, `client_id ${variant}`, `${base}${path}`, /client_id is not exactly the URL/)
  }
})

t.test('SEC-13 CIMD-45: oversized, compressed and never-ending bodies are refused in time', async (t) => {
  const bigDoc = JSON.stringify(doc(`${base}/clients/gzip.json`, { padding: 'x'.repeat(200_000) }))
  docs.routes.set('/clients/gzip.json', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(bigDoc))
  })
  await refusedPage(t, 'gzip body (a bomb once inflated)', `${base}/clients/gzip.json`, /something other than JSON/)
  docs.routes.set('/clients/chunked.json', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    for (let i = 0; i < 20; i++) res.write('x'.repeat(1024))
    res.end()
  })
  await refusedPage(t, 'chunked body over the cap without content-length', `${base}/clients/chunked.json`, /larger than the gateway accepts/)
  docs.routes.set('/clients/liar.json', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '10' })
    res.end(JSON.stringify(doc(`${base}/clients/liar.json`)).slice(0, 10))
  })
  await refusedPage(t, 'content-length shorter than the document', `${base}/clients/liar.json`)
  docs.routes.set('/clients/slow.json', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{')
    const timer = setInterval(() => res.write(' '), 200)
    res.on('close', () => clearInterval(timer))
  })
  const slow = await refusedPage(t, 'slowloris: a byte every 200 ms', `${base}/clients/slow.json`, /did not answer in time/)
  t.ok(slow.ms < 5000, `refused after ${slow.ms} ms (timeoutMs 1500)`)
  docs.routes.set('/clients/html.json', (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>challenge</html>'))
  await refusedPage(t, 'HTML bot challenge', `${base}/clients/html.json`, /something other than JSON/)
  docs.routes.set('/clients/not-json.json', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"client_id": '))
  await refusedPage(t, 'truncated JSON', `${base}/clients/not-json.json`)
  docs.routes.set('/clients/dup.json', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(`{"client_id":"${base}/clients/dup.json","redirect_uris":["https://evil.example/cb"],"redirect_uris":["${REDIRECT}"],"client_name":"x"}`))
  await refusedPage(t, 'duplicate keys (SEC-16)', `${base}/clients/dup.json`, /appears twice/)
  docs.routes.set('/clients/proto.json', json({ ...doc(`${base}/clients/proto.json`), ['__proto__']: { token_endpoint_auth_method: 'private_key_jwt' }, constructor: { prototype: { admin: true } } }))
  const proto = await fetch(authorizeUrl(`${base}/clients/proto.json`), { redirect: 'manual' })
  await proto.text()
  t.not(proto.status, 500, `__proto__ keys: ${proto.status}, never a 500`)
  t.equal(({} as Record<string, unknown>).admin, undefined, 'no prototype pollution')
})

t.test('CIMD-25 SEC-10: a redirect (to loopback or anywhere) is refused and never followed', async (t) => {
  docs.routes.set('/internal/admin.json', json(doc(`${base}/clients/redirect.json`)))
  for (const status of [301, 302, 303, 307, 308]) {
    docs.routes.set(`/clients/redirect-${status}.json`, (_req, res) => res.writeHead(status, { location: `${base}/internal/admin.json` }).end())
    await refusedPage(t, `${status} to loopback`, `${base}/clients/redirect-${status}.json`, /redirect, which is not followed/)
  }
  t.equal(hits('/internal/admin.json'), 0, 'the redirect target was never fetched')
})

t.test('SEC-25 SEC-24 SEC-09: markup, script URIs and bidi tricks in a document never reach the page as such', async (t) => {
  const url = `${base}/clients/xss.json`
  docs.routes.set(
    '/clients/xss.json',
    json(
      doc(url, {
        client_name: '"><script>alert(1)</script><img src=x onerror=alert(2)>\u202egnp.exe\u200b\u2066',
        logo_uri: 'javascript:alert(3)',
        tos_uri: 'javascript:alert(4)',
        policy_uri: 'data:text/html,<script>alert(5)</script>',
        client_uri: 'https://evil.example/"><script>alert(6)</script>',
      }),
    ),
  )
  const browser = new FormBrowser(gw.origin)
  const login = await browser.get(authorizeUrl(url))
  t.equal(login.status, 200, 'the client is valid: login page')
  const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
  t.equal(consent.status, 200, 'consent page')
  for (const [what, page] of [['login page', login], ['consent page', consent]] as const) {
    t.notMatch(page.html, /<script/i, `${what}: no script element`)
    t.notMatch(page.html, /<img/i, `${what}: no image (no hot-linked logo)`)
    t.notMatch(page.html, /<[^>]*\son\w+=/i, `${what}: no event handler attribute inside a tag`)
    t.notMatch(page.html, /javascript:/i, `${what}: no javascript: URI`)
    t.notMatch(page.html, /data:text/i, `${what}: no data: URI`)
    t.notMatch(page.html, /[\u202a-\u202e\u2066-\u2069\u200b-\u200f]/, `${what}: no bidi or zero-width characters`)
    t.match(page.html, /&#60;script&#62;/, `${what}: the name is shown escaped`)
    t.match(page.headers.get('content-security-policy'), /default-src 'none'/, `${what}: CSP blocks scripts anyway`)
    t.match(page.headers.get('content-security-policy'), /frame-ancestors 'none'/, `${what}: not frameable (BCP-14)`)
  }
  t.match(consent.html, new RegExp(`client id hosted at 127\\.0\\.0\\.1:${docs.port}`), 'SEC-24: the verified host beside the name')
  t.match(consent.html, /http:\/\/127\.0\.0\.1:43299/, 'SEC-24: the redirect origin')
})

t.test('SEC-25: a homoglyph name cannot hide the verified host', async (t) => {
  const url = `${base}/clients/homoglyph.json`
  docs.routes.set('/clients/homoglyph.json', json(doc(url, { client_name: '\u0421laude (by Anthropic)' })))
  const browser = new FormBrowser(gw.origin)
  const login = await browser.get(authorizeUrl(url))
  const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
  t.match(consent.html, /<dt>Verified<\/dt><dd>client id hosted at 127\.0\.0\.1:/, 'the host the document came from is shown as verified')
  t.match(consent.html, /<dt>Client ID<\/dt><dd><code>http:\/\/127\.0\.0\.1:/, 'and the full client id')
})

t.test('SEC-36: refusals do not leak what the remote side sent; no secret and no 500 in the log', async (t) => {
  t.notMatch(gw.logText(), /<html>challenge<\/html>/, 'the challenge page body is not logged')
  t.notMatch(gw.logText(), /"level":50/, 'no error-level log line')
  t.notMatch(gw.logText(), /alice-password/, 'the password is not logged')
})
