/** CimdClients: trust → cache → single-flight fetch → validation → policy, with real client document shapes. */
import t from 'tap'
import { loadConfigObject } from '../../src/config/load.js'
import { FetchError, type FetchedJson } from '../../src/oauth/clients/cimd/fetch.js'
import { cacheLifetimeSeconds } from '../../src/oauth/clients/cimd/cache-lifetime.js'
import { CimdRefusal } from '../../src/oauth/clients/cimd/refusal.js'
import { CimdClients } from '../../src/oauth/clients/cimd/resolve.js'
import { MemoryStore } from '../../src/store/memory.js'

const CLAUDE_CODE = 'https://claude.ai/oauth/claude-code-client-metadata'
const VSCODE = 'https://vscode.dev/oauth/client-metadata.json'
const DESKTOP = 'https://claude.ai/oauth/claude-desktop-client-metadata'
const CHATGPT = 'https://chatgpt.com/oauth/client-metadata.json'

const fixtures: Record<string, unknown> = {
  // IOP-01: portless loopback redirect URIs.
  [CLAUDE_CODE]: {
    client_id: CLAUDE_CODE,
    client_name: 'Claude Code',
    redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
  // A logo on another domain (never fetched or hot-linked by the gateway).
  [VSCODE]: {
    client_id: VSCODE,
    client_name: 'Visual Studio Code',
    client_uri: 'https://code.visualstudio.com',
    logo_uri: 'https://code.visualstudio.com/assets/favicon.ico',
    redirect_uris: ['http://127.0.0.1:33418/', 'https://vscode.dev/redirect'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
  },
  // Lists a grant type the gateway does not support: dropped by the default policy.
  [DESKTOP]: {
    client_id: DESKTOP,
    client_name: 'Claude',
    redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
  // private_key_jwt with jwks_uri (MCPA-34, CIMD-38).
  [CHATGPT]: {
    client_id: CHATGPT,
    client_name: 'ChatGPT',
    redirect_uris: ['https://chatgpt.com/connector_platform_oauth_redirect'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks_uri: 'https://chatgpt.com/oauth/jwks.json',
  },
}

const base = { publicUrl: 'https://gw.example.net', resources: [{ id: 'r', name: 'R', path: '/mcp', upstream: 'http://127.0.0.1:9' }] }

function setup(cimd: Record<string, unknown> = {}, docs: Record<string, unknown> = fixtures) {
  const config = loadConfigObject({ ...base, cimd: { enabled: true, trust: { allow: [{ host: 'claude.ai' }, { host: 'vscode.dev' }, { host: 'chatgpt.com' }, { host: '*.example.org' }] }, ...cimd } }, 'test')
  const store = new MemoryStore()
  let clock = 1_700_000_000_000
  const fetches: string[] = []
  const headers: Partial<FetchedJson> = {}
  const fetcher = {
    delayMs: 0,
    fail: undefined as FetchError | undefined,
    async fetchJson(url: string): Promise<FetchedJson> {
      fetches.push(url)
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs))
      if (this.fail) throw this.fail
      if (!(url in docs)) throw new FetchError('status', '404')
      const text = typeof docs[url] === 'string' ? (docs[url] as string) : JSON.stringify(docs[url])
      return { json: JSON.parse(text), text, cacheControl: undefined, expires: undefined, date: undefined, age: undefined, ...headers }
    },
  }
  const warnings: object[] = []
  const logged: { level: string; msg: string; obj: Record<string, unknown> }[] = []
  const clients = new CimdClients({
    config: config.cimd,
    store,
    fetcher,
    selfOrigin: 'https://gw.example.net',
    now: () => clock,
    log: {
      info: (o, msg) => logged.push({ level: 'info', msg, obj: o as Record<string, unknown> }),
      warn: (o, msg) => {
        warnings.push(o)
        logged.push({ level: 'warn', msg, obj: o as Record<string, unknown> })
      },
    },
  })
  return { clients, store, fetches, fetcher, headers, warnings, logged, advance: (s: number) => (clock += s * 1000) }
}

const refusal = async (p: Promise<unknown>) => {
  try {
    await p
    return undefined
  } catch (err) {
    if (!(err instanceof CimdRefusal)) throw err
    return err
  }
}

t.test('real client document shapes (IOP-01..04)', async (t) => {
  const { clients, warnings } = setup()
  const code = (await clients.find(CLAUDE_CODE))!
  t.match(code, { clientId: CLAUDE_CODE, name: 'Claude Code', source: 'cimd', authMethod: 'none', verifiedAs: 'client id hosted at claude.ai' })
  t.same(code.redirectUris, ['http://localhost/callback', 'http://127.0.0.1/callback'])
  const vscode = (await clients.find(VSCODE))!
  t.equal(vscode.name, 'Visual Studio Code', 'a logo on another domain is fine (not fetched)')
  const desktop = (await clients.find(DESKTOP))!
  t.same(desktop.grantTypes, ['authorization_code', 'refresh_token'], 'the unsupported grant type is dropped by the default policy')
  const chatgpt = (await clients.find(CHATGPT))!
  t.match(chatgpt, { authMethod: 'private_key_jwt', keys: { jwksUri: 'https://chatgpt.com/oauth/jwks.json' }, signingAlg: 'ES256' }, 'MCPA-34: ChatGPT\'s private_key_jwt document is accepted')
  t.match(chatgpt.fingerprint, /^[A-Za-z0-9_-]{43}$/, 'SEC-23: a security fingerprint')
  t.match(chatgpt.displayFingerprint, /^[A-Za-z0-9_-]{43}$/, 'and a display fingerprint')
  t.same(warnings, [], 'nothing refused')
  t.equal(await clients.find('not-a-url'), undefined, 'non-URL ids belong to other sources')
})

t.test('with an operator policy without subset_of, an unsupported grant type is refused, not a crash', async (t) => {
  const { clients } = setup({ metadataPolicy: { client_name: { essential: true } } })
  t.match(await refusal(clients.find(DESKTOP)), { rule: 'grant_types', description: /subset_of can drop it/ })
})

t.test('refusals name the rule; before any fetch for URL and trust rules (SEC-01, SEC-04, SEC-05)', async (t) => {
  const { clients, fetches } = setup({ trust: { allow: [{ host: '*.example.org' }], deny: [{ host: 'bad.example.org' }] } })
  t.match(await refusal(clients.find('https://bad.example.org/c')), { step: 'trust', description: /cimd\.trust\.deny\[0\] \(host bad\.example\.org\)/ })
  t.match(await refusal(clients.find('https://other.net/c')), { step: 'trust', description: /no entry matches/ })
  t.match(await refusal(clients.find('http://a.example.org/c')), { step: 'url', rule: 'url.scheme' })
  t.match(await refusal(clients.find('https://a.example.org/x/../c')), { step: 'url', rule: 'url.dot-segment' })
  t.match(await refusal(clients.find('https://gw.example.net/c')), { step: 'url', rule: 'url.self' })
  t.same(fetches, [], 'no fetch happened')
})

t.test('document validation (SEC-16, SEC-17, CIMD-12..19, OQ-03, OQ-05)', async (t) => {
  const id = 'https://a.example.org/client'
  const good = { client_id: id, redirect_uris: ['https://a.example.org/cb'] }
  const cases: [string, unknown, RegExp][] = [
    ['client_id mismatch', { ...good, client_id: 'https://a.example.org/client/' }, /client_id/],
    ['client_id port variant', { ...good, client_id: 'https://a.example.org:443/client' }, /client_id/],
    ['no redirect_uris', { client_id: id }, /redirect_uris/],
    ['empty redirect_uris', { ...good, redirect_uris: [] }, /redirect_uris/],
    ['http non-loopback redirect', { ...good, redirect_uris: ['http://a.example.org/cb'] }, /redirect_uris/],
    ['private-use scheme redirect', { ...good, redirect_uris: ['com.example.app:/cb'] }, /redirect_uris/],
    ['javascript redirect', { ...good, redirect_uris: ['javascript:alert(1)'] }, /redirect_uris/],
    ['client_secret', { ...good, client_secret: 's' }, /client_secret/],
    ['shared-secret method', { ...good, token_endpoint_auth_method: 'client_secret_basic' }, /token_endpoint_auth_method/],
    ['private key in jwks', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', d: 'x' }] } }, /jwks/],
    ['jwks and jwks_uri', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [] }, jwks_uri: 'https://a/j' }, /jwks and jwks_uri must not both appear/],
    ['SEC-33 private_key_jwt without keys', { ...good, token_endpoint_auth_method: 'private_key_jwt' }, /private_key_jwt needs jwks or jwks_uri \(SEC-33\)/],
    ['SEC-33 private_key_jwt with an empty jwks', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [] } }, /jwks holds no keys/],
    ['SEC-32 RSA private key in jwks', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'RSA', n: 'x', e: 'AQAB', p: 'y' }] } }, /private or symmetric key material/],
    ['SEC-32 symmetric key in jwks', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, /private or symmetric key material/],
    ['key without kty', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ x: 'a' }] } }, /without kty/],
    ['SEC-32 http jwks_uri', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'http://a.example.org/jwks' }, /jwks_uri must be an https URL/],
    ['SEC-09 IP-literal jwks_uri', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://169.254.169.254/jwks' }, /jwks_uri breaks the URL rule url.ip-literal/],
    ['SEC-09 jwks_uri with userinfo', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://u:p@a.example.org/jwks' }, /jwks_uri breaks the URL rule url.userinfo/],
    ['SEC-05 jwks_uri at the gateway', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://gw.example.net/oauth/jwks' }, /jwks_uri points at the gateway itself/],
    ['SEC-31 signing alg HS256', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://a.example.org/jwks', token_endpoint_auth_signing_alg: 'HS256' }, /token_endpoint_auth_signing_alg must be one of ES256/],
    ['SEC-31 signing alg none', { ...good, token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://a.example.org/jwks', token_endpoint_auth_signing_alg: 'none' }, /token_endpoint_auth_signing_alg must be one of/],
    ['keys without a method', { ...good, jwks: { keys: [] } }, /token_endpoint_auth_method/],
    ['response type token', { ...good, response_types: ['token'] }, /response_types/],
    ['not an object', '[1,2]', /document/],
    ['duplicate key', `{"client_id":"${id}","redirect_uris":["https://a.example.org/cb"],"client_id":"${id}"}`, /client_id appears twice/],
    ['bad types', { ...good, client_name: 5 }, /client_name/],
  ]
  for (const [name, doc, re] of cases) {
    const { clients, store } = setup({}, { [id]: doc })
    const r = await refusal(clients.find(id))
    t.match(r?.description, re, name)
    t.equal(r?.status, 400, `${name}: 400 invalid_client, never 500`)
    t.equal(await store.get('cimd-doc:' + (await import('node:crypto')).createHash('sha256').update(id).digest('base64url')), undefined, `${name}: not cached (CIMD-30)`)
  }
  const { clients } = setup({}, { [id]: { ...good, __proto__: { polluted: true } } })
  t.equal((await clients.find(id))?.name, 'a.example.org', 'OQ-03 no client_name: the verified host; __proto__ is just a key')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('cache lifetime from headers, clamped (SEC-20, CIMD-28)', async (t) => {
  const bounds = { minSeconds: 60, maxSeconds: 86400, defaultSeconds: 3600 }
  const now = Date.parse('2026-01-01T00:00:00Z')
  const life = (h: Partial<FetchedJson>) => cacheLifetimeSeconds({ cacheControl: undefined, expires: undefined, date: undefined, age: undefined, ...h }, bounds, now)
  t.equal(life({ cacheControl: 'public, max-age=600' }), 600)
  t.equal(life({ cacheControl: 'max-age=600', age: '100' }), 500, 'Age subtracted')
  t.equal(life({ cacheControl: 'max-age=5' }), 60, 'raised to the minimum')
  t.equal(life({ cacheControl: 'no-store' }), 60, 'no-store raised to the minimum (documented deviation)')
  t.equal(life({ cacheControl: 'max-age=9999999' }), 86400, 'lowered to the maximum')
  t.equal(life({ cacheControl: 's-maxage=120, max-age=600' }), 120)
  t.equal(life({ expires: 'Thu, 01 Jan 2026 02:00:00 GMT', date: 'Thu, 01 Jan 2026 00:00:00 GMT' }), 7200, 'Expires − Date')
  t.equal(life({ expires: 'garbage' }), 60, 'invalid Expires is already expired')
  t.equal(life({}), 3600, 'nothing said: the default')
})

t.test('cache: hit, expiry, negative cache, single-flight, cache off (SEC-14, SEC-19)', async (t) => {
  const s = setup()
  s.headers.cacheControl = 'max-age=300'
  await s.clients.find(CLAUDE_CODE)
  await s.clients.find(CLAUDE_CODE)
  t.equal(s.fetches.length, 1, 'second use from the cache')
  s.advance(301)
  await s.clients.find(CLAUDE_CODE)
  t.equal(s.fetches.length, 2, 'refetched after the lifetime (CIMD-22)')

  const n = setup({ cache: { negativeSeconds: 1 } })
  n.fetcher.fail = new FetchError('content_type')
  const first = await refusal(n.clients.find(CLAUDE_CODE))
  t.match(first, { step: 'fetch', rule: 'fetch.content_type', description: /other than JSON/ })
  n.fetcher.fail = undefined
  const second = await refusal(n.clients.find(CLAUDE_CODE))
  t.match(second, { rule: 'fetch.content_type' }, 'the failure is remembered')
  t.equal(n.fetches.length, 1, 'no refetch within negativeSeconds')
  await new Promise((r) => setTimeout(r, 1100)) // the store's own TTL clock
  t.ok(await n.clients.find(CLAUDE_CODE), 'after negativeSeconds it is fetched again and works')
  t.equal(n.fetches.length, 2)

  const f = setup()
  f.fetcher.delayMs = 50
  const all = await Promise.all(Array.from({ length: 20 }, () => f.clients.find(CLAUDE_CODE)))
  t.equal(f.fetches.length, 1, '20 concurrent first uses → 1 fetch')
  t.ok(all.every((c) => c?.clientId === CLAUDE_CODE))

  const off = setup({ cache: { enabled: false } })
  await off.clients.find(CLAUDE_CODE)
  await off.clients.find(CLAUDE_CODE)
  t.equal(off.fetches.length, 2, 'cache off: every use fetches (ATL-04)')

  const p = setup()
  await p.clients.find(CLAUDE_CODE)
  t.equal(await p.clients.purge(), 1, 'purge empties the cache')
  await p.clients.find(CLAUDE_CODE)
  t.equal(p.fetches.length, 2)
})

t.test('private_key_jwt documents: inline jwks, and the metadata policy cannot downgrade to none (SEC-30, SEC-33)', async (t) => {
  const id = 'https://a.example.org/client'
  const key = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pOyStikYjKIWI5a0', kid: 'k1' }
  const doc = { client_id: id, redirect_uris: ['https://a.example.org/cb'], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key] } }
  const { clients } = setup({}, { [id]: doc })
  const client = (await clients.find(id))!
  t.equal(client.authMethod, 'private_key_jwt')
  t.same(client.keys, { jwks: { keys: [key] } }, 'the inline keys travel with the client')
  t.equal(client.signingAlg, undefined)

  const downgrade = setup({ metadataPolicy: { token_endpoint_auth_method: { value: 'none' }, grant_types: { default: ['authorization_code'] } } }, { [id]: doc })
  t.match(await refusal(downgrade.clients.find(id)), { step: 'document', rule: 'token_endpoint_auth_method', description: /must not be downgraded by the metadata policy \(SEC-30\)/ })
})

t.test('SEC-23 change detection: a changed security member is logged by name; SEC-34 reordering and display changes are not security changes', async (t) => {
  const id = 'https://a.example.org/client'
  const base = { client_id: id, client_name: 'A', redirect_uris: ['https://a.example.org/cb', 'http://127.0.0.1/cb'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://a.example.org/jwks' }
  const docs: Record<string, unknown> = { [id]: base }
  const s = setup({ cache: { enabled: false } }, docs)
  const changes = () => s.logged.filter((l) => l.msg === 'cimd document changed')
  const first = (await s.clients.find(id))!
  t.same(changes(), [], 'the first fetch has nothing to compare with')
  docs[id] = { ...base, redirect_uris: [...base.redirect_uris].reverse() }
  const reordered = (await s.clients.find(id))!
  t.equal(reordered.fingerprint, first.fingerprint, 'order of redirect_uris is not a change')
  t.same(changes(), [])

  docs[id] = { ...base, client_name: 'A renamed', logo_uri: 'https://a.example.org/logo.png' }
  const renamed = (await s.clients.find(id))!
  t.equal(renamed.fingerprint, first.fingerprint, 'a new name is not a security change')
  t.not(renamed.displayFingerprint, first.displayFingerprint, 'but changes the display fingerprint')
  t.same(changes(), [])
  t.match(s.logged.find((l) => l.msg === 'cimd document display changed')?.obj, { clientId: id, changed: ['client_name', 'logo_uri'] })

  docs[id] = { ...base, client_name: 'A renamed', logo_uri: 'https://a.example.org/logo.png', redirect_uris: ['https://evil.example.org/cb'], jwks_uri: 'https://a.example.org/jwks-2' }
  const changed = (await s.clients.find(id))!
  t.not(changed.fingerprint, first.fingerprint)
  t.equal(changes().length, 1, 'SEC-23: logged once')
  const entry = changes()[0]!
  t.equal(entry.level, 'warn')
  t.match(entry.obj, { clientId: id, host: 'a.example.org', changed: ['redirect_uris', 'jwks_uri'] })
  t.notMatch(JSON.stringify(entry.obj), /evil|jwks-2/, 'member names only, never their values')

  await s.clients.find(id)
  t.equal(changes().length, 1, 'the same document again: no new event')
})

t.test('SEC-23: the last fingerprint is shared through the store, so another replica reports the change', async (t) => {
  const id = 'https://a.example.org/client'
  const docs: Record<string, unknown> = { [id]: { client_id: id, redirect_uris: ['https://a.example.org/cb'] } }
  const one = setup({ cache: { enabled: false } }, docs)
  await one.clients.find(id)
  const two = new CimdClients({ config: loadConfigObject({ ...base, cimd: { enabled: true, trust: { any: true }, cache: { enabled: false } } }, 't').cimd, store: one.store, fetcher: one.fetcher, selfOrigin: 'https://gw.example.net', log: { info: () => {}, warn: (o, msg) => one.logged.push({ level: 'warn', msg, obj: o as Record<string, unknown> }) } })
  docs[id] = { client_id: id, redirect_uris: ['https://a.example.org/cb'], scope: 'mcp admin' }
  await two.find(id)
  t.match(one.logged.find((l) => l.msg === 'cimd document changed')?.obj, { changed: ['scope'] })
})
