/**
 * `gatehouse cimd inspect` and `gatehouse cimd purge` against a loopback https document server
 * with a test CA: in-process through the dispatcher the binary uses (the CA handed to the
 * command's fetcher), and once as a real child process that trusts the CA through
 * NODE_EXTRA_CA_CERTS, as an operator's would. Inspect reads the configured store's cache and
 * never writes it; purge works on a shared (Redis) store only.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { loadConfigObject } from '../../src/config/load.js'
import { SafeFetcher } from '../../src/oauth/clients/cimd/fetch.js'
import { CimdClients } from '../../src/oauth/clients/cimd/resolve.js'
import { RedisStore } from '../../src/store/redis.js'
import { runCli, runInProcess } from '../helpers/cli.js'
import { redisForTests } from '../helpers/redis.js'
import { json, makeTestCertificates, startHttpsDocServer } from './servers.js'

const tls = makeTestCertificates()
t.teardown(() => tls.cleanup())
const docs = await startHttpsDocServer(tls, '127.0.0.1')
t.teardown(() => docs.close())
const hits = (path: string) => docs.hits.get(path) ?? 0

const url = (path: string) => `${docs.origin}${path}`
const GOOD = '/clients/desktop.json'
const NARROW = '/clients/refresh-only.json'
const BOT = '/clients/bot.json'
const UNLISTED = '/clients/unlisted.json'
// Claude Desktop's shape: it lists a grant type the gateway does not support (dropped by policy).
docs.routes.set(
  GOOD,
  json(
    {
      client_id: url(GOOD),
      client_name: 'Desktop client',
      redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    },
    { 'cache-control': 'public, max-age=600' },
  ),
)
// Valid as a document, but the default policy requires authorization_code.
docs.routes.set(NARROW, json({ client_id: url(NARROW), redirect_uris: ['http://127.0.0.1/callback'], grant_types: ['refresh_token'] }))
docs.routes.set(BOT, (_req, res) => res.writeHead(403, { 'content-type': 'text/html' }).end('<html>Just a moment...</html>'))
docs.routes.set(UNLISTED, json({ client_id: url(UNLISTED), redirect_uris: ['http://127.0.0.1/callback'] }))
// ChatGPT's shape: private_key_jwt with a jwks_uri (two keys, one rotated in).
const KEYED = '/clients/keyed.json'
docs.routes.set(
  KEYED,
  json({ client_id: url(KEYED), client_name: 'Keyed', redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks_uri: url('/clients/keyed-jwks.json') }),
)
docs.routes.set(
  '/clients/keyed-jwks.json',
  json({ keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pOyStikYjKIWI5a0', kid: 'key-2026-01', alg: 'ES256' }, { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: 'key-2026-02' }] }),
)

const run = (args: string[]) => runInProcess(args, {}, { extraCaCertificates: tls.caPem })

const cimd = {
  enabled: true,
  allowPrivateAddresses: true,
  // The longest negative TTL: on a slow machine the Redis case outlasts the default 30 s.
  cache: { negativeSeconds: 3600 },
  trust: { allow: [{ prefix: `${docs.origin}/clients/desktop.json` }, { url: url(NARROW) }, { url: url(BOT) }, { url: url(KEYED) }] },
}
const resources = [{ id: 'a', name: 'A', path: '/mcp', upstream: 'http://127.0.0.1:1/mcp', scopes: [{ name: 'mcp' }], requiredScopes: ['mcp'] }]

async function configFile(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const file = join(tls.caFile, '..', name)
  await writeFile(file, JSON.stringify({ publicUrl: 'http://127.0.0.1:9', cimd, resources, ...extra }))
  return file
}

t.test('inspect with a memory store: every step of an accepted client id, and the effective client', async (t) => {
  const file = await configFile('memory.json')
  const res = await run(['cimd', 'inspect', url(GOOD), '--config', file])
  t.equal(res.code, 0, res.stderr)
  const out = res.stdout
  t.match(out, `client id  ${url(GOOD)}`)
  t.match(out, /settings {3}cimd enabled; store memory; allowPrivateAddresses \(development\)/)
  t.match(out, /^url {8}passes the URL rules$/m)
  t.match(out, /^trust {6}allowed by cimd\.trust\.allow\[0\] \(prefix .*desktop\.json\)$/m)
  t.match(out, /^cache {6}not cached$/m)
  t.match(out, /^fetch {6}fetched \d+ bytes$/m)
  t.match(out, /cache-control: public, max-age=600/)
  t.match(out, /^document {3}valid$/m)
  t.match(out, /^cache {6}the gateway would have cached for 600 s \(inspect does not write the cache\)$/m)
  t.match(out, /^policy {5}effective grant_types authorization_code refresh_token$/m, 'the unsupported grant type was dropped by policy')
  t.match(out, /^result {5}ACCEPTED$/m)
  t.match(out, /name "Desktop client"/)
  t.match(out, `verified as: client id hosted at 127.0.0.1:${docs.port}`)
  t.match(out, /redirect_uris: http:\/\/127\.0\.0\.1\/callback http:\/\/localhost\/callback/)
  t.match(out, /token_endpoint_auth_method: none/)
  // The lines come in the order the gateway decides.
  const order = ['url', 'trust', 'cache', 'fetch', 'document', 'policy', 'result', 'client'].map((s) => out.search(new RegExp(`^${s} +(?!id )`, 'm')))
  t.same(order, [...order].sort((a, b) => a - b), 'steps in decision order')
  t.equal(hits(GOOD), 1)
})

t.test('inspect a private_key_jwt client: auth method, key set source and kids; the key set is fetched, nothing written', async (t) => {
  const file = await configFile('keyed.json')
  const res = await run(['cimd', 'inspect', url(KEYED), '--config', file])
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /^result {5}ACCEPTED$/m)
  t.match(res.stdout, /token_endpoint_auth_method: private_key_jwt/)
  t.match(res.stdout, `keys       jwks_uri ${url('/clients/keyed-jwks.json')}`)
  t.match(res.stdout, /token_endpoint_auth_signing_alg: ES256/)
  t.match(res.stdout, /2 key\(s\): key-2026-01 EC\/P-256 ES256, key-2026-02 OKP\/Ed25519/)
  t.match(res.stdout, /fingerprint: [A-Za-z0-9_-]{43} \(display [A-Za-z0-9_-]{43}\)/)
  t.equal(hits('/clients/keyed-jwks.json'), 1)
})

t.test('inspect: refusals name their step and rule, exit 1; trust refuses before any fetch', async (t) => {
  const file = await configFile('refusals.json')
  const unlisted = await run(['cimd', 'inspect', url(UNLISTED), '--config', file])
  t.equal(unlisted.code, 1, unlisted.stderr)
  t.match(unlisted.stdout, /^trust {6}refused: cimd\.trust\.allow \(no entry matches\)$/m)
  t.match(unlisted.stdout, /^result {5}REFUSED \(invalid_client\) at step trust, rule cimd\.trust\.allow \(no entry matches\)$/m)
  t.match(unlisted.stdout, /shown to the user: this application \(client id hosted at 127\.0\.0\.1:\d+\) is not allowed/)
  t.notMatch(unlisted.stdout, /^fetch /m)
  t.equal(hits(UNLISTED), 0, 'the document server saw nothing')

  const narrow = await run(['cimd', 'inspect', url(NARROW), '--config', file])
  t.equal(narrow.code, 1)
  t.match(narrow.stdout, /^policy {5}refused: cimd\.metadataPolicy\.grant_types$/m)
  t.match(narrow.stdout, /REFUSED \(invalid_client\) at step policy, rule cimd\.metadataPolicy\.grant_types/)
  t.match(narrow.stdout, /the gateway's metadata policy refuses this application/)

  const bot = await run(['cimd', 'inspect', url(BOT), '--config', file])
  t.equal(bot.code, 1)
  t.match(bot.stdout, /^fetch {6}refused: fetch\.status$/m)
  t.match(bot.stdout, /shown to the user: .*did not answer 200 OK/)
  t.match(bot.stdout, /log detail: 403/)
  t.notMatch(bot.stdout, /Just a moment/)

  const privateOff = await configFile('private-off.json', { cimd: { ...cimd, allowPrivateAddresses: false } })
  const before = hits(GOOD)
  const off = await run(['cimd', 'inspect', url(GOOD), '--config', privateOff])
  t.equal(off.code, 1)
  t.match(off.stdout, /^url {8}refused: url\.ip-literal$/m)
  t.match(off.stdout, /^hint {7}.*cimd\.allowPrivateAddresses: true$/m, 'the refusal names the development switch (issue 21)')
  t.notMatch(bot.stdout, /^hint/m, 'no hint where the switch would not help')
  t.equal(hits(GOOD), before, 'nothing fetched with the switch off')

  const disabled = await configFile('disabled.json', { cimd: { ...cimd, enabled: false } })
  const dis = await run(['cimd', 'inspect', url(GOOD), '--config', disabled])
  t.equal(dis.code, 1, 'a client the configuration would refuse is not "accepted"')
  t.match(dis.stdout, /cimd DISABLED/)
  t.match(dis.stdout, /would be accepted, but cimd\.enabled is false/)

  const notUrl = await run(['cimd', 'inspect', 'test-client', '--config', file])
  t.equal(notUrl.code, 1)
  t.match(notUrl.stdout, /NOT A URL CLIENT ID/)
})

t.test('the binary trusts the document server through NODE_EXTRA_CA_CERTS; a refusal exits 1', async (t) => {
  const file = await configFile('binary.json')
  const before = hits(BOT)
  const bot = await runCli(['cimd', 'inspect', url(BOT), '--config', file], { NODE_EXTRA_CA_CERTS: tls.caFile })
  t.equal(bot.code, 1, bot.stderr)
  // An answer from the server (403), not a TLS failure: the child trusted the test CA.
  t.match(bot.stdout, /^fetch {6}refused: fetch\.status$/m)
  t.match(bot.stdout, /log detail: 403/)
  t.equal(hits(BOT), before + 1, 'one fetch')
})

t.test('usage: purge needs a shared store, inspect exactly one URL', async (t) => {
  const file = await configFile('usage.json')
  const purge = await run(['cimd', 'purge', '--config', file])
  t.equal(purge.code, 2)
  t.match(purge.stderr, /cimd purge works on the Redis store of a deployment/)
  const none = await run(['cimd', 'inspect', '--config', file])
  t.equal(none.code, 2)
  t.match(none.stderr, /exactly one client id URL/)
  const bare = await run(['cimd'])
  t.equal(bare.code, 2)
  t.match(bare.stderr, /cimd inspect URL --config FILE \| cimd purge/)
  const help = await run(['help'])
  t.match(help.stdout, /gatehouse cimd inspect URL --config FILE/, 'help is asked for: stdout')
  t.match(help.stdout, /gatehouse cimd purge \[URL\] --config FILE/)
})

t.test('on Redis: inspect shows the shared cache without writing it; purge empties one URL or everything', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const file = await configFile('redis.json', { store: { type: 'redis', redis: { url: redis.url, keyPrefix: redis.keyPrefix } } })
  // Cache records only: fingerprints (SEC-23) and fetch counters (SEC-14) are not cache and survive a purge.
  const cimdKeys = async () => (await redis.raw.keys(`${redis.keyPrefix}cimd-*`)).filter((k) => /^cimd-(doc|fail|jwks):/.test(k.slice(redis.keyPrefix.length))).sort()

  const first = await run(['cimd', 'inspect', url(GOOD), '--config', file])
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, /store redis/)
  t.match(first.stdout, /^cache {6}not cached$/m)
  const bot = await run(['cimd', 'inspect', url(BOT), '--config', file])
  t.equal(bot.code, 1)
  t.same(await cimdKeys(), [], 'inspect wrote neither a document nor a failure')

  // What a gateway replica would do on first use: cache the document (and a failure for the bot page).
  const config = loadConfigObject({ publicUrl: 'http://127.0.0.1:9', cimd, resources }, 'test')
  const store = new RedisStore(redis.storeConfig(), { warn() {}, error() {} })
  const fetcher = new SafeFetcher({ ...config.cimd.fetch, allowPrivateAddresses: true, ca: tls.caPem })
  t.teardown(async () => (await fetcher.close(), await store.close()))
  const replica = new CimdClients({ config: config.cimd, store, fetcher, selfOrigin: 'http://127.0.0.1:9' })
  await replica.resolve(url(GOOD))
  await t.rejects(replica.resolve(url(BOT)), { name: 'CimdRefusal' })
  t.equal((await cimdKeys()).length, 2, 'one document and one failure cached')

  const hitsBefore = hits(GOOD)
  const cached = await run(['cimd', 'inspect', url(GOOD), '--config', file])
  t.equal(cached.code, 0)
  t.match(cached.stdout, /^cache {6}cached document, fetched \S+, expires \S+$/m)
  t.notMatch(cached.stdout, /^fetch /m)
  t.equal(hits(GOOD), hitsBefore, 'served from the shared cache: no fetch')
  const remembered = await run(['cimd', 'inspect', url(BOT), '--config', file])
  t.equal(remembered.code, 1)
  t.match(remembered.stdout, /^cache {6}recent failure remembered \(fetch: fetch\.status\)$/m)

  const one = await run(['cimd', 'purge', url(GOOD), '--config', file])
  t.equal(one.code, 0, one.stderr)
  t.match(one.stdout, `purged 1 cache record(s) for ${url(GOOD)}`)
  t.equal((await cimdKeys()).length, 1, 'only the failure record is left')
  const again = await run(['cimd', 'purge', url(GOOD), '--config', file])
  t.match(again.stdout, /purged 0 cache record/, 'nothing left to purge for that URL')

  await replica.resolve(url(GOOD))
  t.equal((await cimdKeys()).length, 2)
  const all = await run(['cimd', 'purge', '--config', file])
  t.equal(all.code, 0, all.stderr)
  t.match(all.stdout, /^purged 2 cache record\(s\)$/m)
  t.same(await cimdKeys(), [], 'the whole CIMD cache is empty')
  const fresh = await run(['cimd', 'inspect', url(GOOD), '--config', file])
  t.match(fresh.stdout, /^cache {6}not cached$/m, 'the next use fetches again')
})
