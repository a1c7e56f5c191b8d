/** Pure rules: URL intake (SEC-01..03), trust policy (SEC-04, OQ-13), metadata policy (OF-01..10). */
import t from 'tap'
import { checkClientIdUrl } from '../../src/policy/cimd-url-rules.js'
import { decideTrust, type TrustPolicy } from '../../src/policy/cimd-trust.js'
import { applyMetadataPolicy, metadataPolicyProblems } from '../../src/policy/metadata-policy.js'
import { loadConfigObject } from '../../src/config/load.js'

const rules = { allowHttp: false, allowQuery: false, maxUrlLength: 2048, allowPrivateAddresses: false }
const refusedBy = (url: string, opts = rules) => {
  const r = checkClientIdUrl(url, opts)
  return r.ok ? 'ok' : r.rule
}

t.test('URL rules on the raw string (SEC-01, CIMD-01..09)', async (t) => {
  t.equal(refusedBy('https://claude.ai/oauth/claude-code-client-metadata'), 'ok')
  t.equal(refusedBy('https://example.com:8443/client.json'), 'ok', 'CIMD-03 a port is fine')
  t.equal(refusedBy('http://example.com/client'), 'url.scheme', 'CIMD-01 https only')
  t.equal(refusedBy('http://example.com/client', { ...rules, allowHttp: true }), 'ok', 'ATL-05 allowHttp')
  t.equal(refusedBy('HTTPS://example.com/client'), 'url.scheme', 'scheme compared as written')
  t.equal(refusedBy('ftp://example.com/client'), 'url.scheme')
  t.equal(refusedBy('https://user:pw@example.com/client'), 'url.userinfo', 'CIMD-02 no userinfo')
  t.equal(refusedBy('https://user@example.com/client'), 'url.userinfo')
  t.equal(refusedBy('https://example.com'), 'url.path', 'CIMD-04 a path')
  t.equal(refusedBy('https://example.com/'), 'url.path', 'CIMD-09 not a bare /')
  t.equal(refusedBy('https://example.com/a/../client'), 'url.dot-segment', 'CIMD-05 .. on the raw string')
  t.equal(refusedBy('https://example.com/./client'), 'url.dot-segment', 'CIMD-05 .')
  t.equal(refusedBy('https://example.com/a/%2e%2E/client'), 'url.dot-segment', 'CIMD-05 encoded dots')
  t.equal(refusedBy('https://example.com/a/..'), 'url.dot-segment')
  t.equal(refusedBy('https://example.com/a..b/c'), 'ok', 'dots inside a segment are fine')
  t.equal(refusedBy('https://example.com/client?x=1'), 'url.query', 'CIMD-06/ATL-06 no query by default')
  t.equal(refusedBy('https://example.com/client?x=1', { ...rules, allowQuery: true }), 'ok')
  t.equal(refusedBy('https://example.com/client#frag'), 'url.fragment', 'CIMD-07 no fragment')
  t.equal(refusedBy('https://example.com/client#'), 'url.fragment', 'CIMD-07 even an empty one')
  t.equal(refusedBy(`https://example.com/${'a'.repeat(2100)}`), 'url.length', 'SEC-01 length cap')
  t.equal(refusedBy('https://exämple.com/client'), 'url.characters', 'SEC-01 no raw IDN')
  t.equal(refusedBy('https://example.com/cli ent'), 'url.characters')
  t.equal(refusedBy('https://xn--exmple-cua.com/client'), 'ok', 'punycode is a plain name')
})

t.test('IP-literal hosts refused (SEC-03), including decimal, octal and hex forms', async (t) => {
  for (const url of [
    'https://10.0.0.1/client',
    'https://127.0.0.1/client',
    'https://[::1]/client',
    'https://[::ffff:127.0.0.1]/client',
    'https://2130706433/client',
    'https://0x7f.1/client',
    'https://0177.0.0.1/client',
    'https://8.8.8.8/client',
  ]) {
    t.equal(refusedBy(url), 'url.ip-literal', url)
  }
  t.equal(refusedBy('https://127.0.0.1/client', { ...rules, allowPrivateAddresses: true }), 'ok', 'development loopback mode')
})

t.test('the raw string is the identity: no normalization (SEC-02, CIMD-08)', async (t) => {
  const policy: TrustPolicy = { allow: [{ url: 'https://example.com/client' }], deny: [], any: false }
  t.ok(decideTrust(policy, 'https://example.com/client').allowed)
  t.notOk(decideTrust(policy, 'https://example.com:443/client').allowed, ':443 is another client')
  t.notOk(decideTrust(policy, 'https://EXAMPLE.com/client').allowed, 'url entries compare exactly')
  t.notOk(decideTrust(policy, 'https://example.com/client/').allowed)
})

t.test('trust policy (SEC-04, OQ-13, ATL-03)', async (t) => {
  const policy: TrustPolicy = {
    allow: [
      { url: 'https://claude.ai/oauth/claude-code-client-metadata' },
      { prefix: 'https://vscode.dev/oauth/a/b' },
      { prefix: 'https://clients.example.org/apps/' },
      { host: '*.example.com' },
      { host: 'cursor.com' },
    ],
    deny: [{ host: 'evil.example.com' }, { prefix: 'https://vscode.dev/oauth/a/b/blocked' }],
    any: false,
  }
  const d = (url: string) => decideTrust(policy, url)
  t.match(d('https://claude.ai/oauth/claude-code-client-metadata'), { allowed: true, rule: 'cimd.trust.allow[0] (url https://claude.ai/oauth/claude-code-client-metadata)' })
  t.equal(d('https://claude.ai/oauth/other').allowed, false, 'exact url entry')
  t.equal(d('https://vscode.dev/oauth/a/b').allowed, true, 'prefix admits itself')
  t.equal(d('https://vscode.dev/oauth/a/b/c').allowed, true, 'prefix admits below, segment-wise')
  t.equal(d('https://vscode.dev/oauth/a/bc').allowed, false, 'never a partial segment')
  t.equal(d('https://vscode.dev/oauth/a').allowed, false, 'not above')
  t.equal(d('https://vscode.dev:8443/oauth/a/b').allowed, false, 'authority compared exactly')
  t.equal(d('https://clients.example.org/apps/x').allowed, true, 'trailing slash: below')
  t.equal(d('https://clients.example.org/apps').allowed, false, 'trailing slash: not the directory itself')
  t.equal(d('https://a.example.com/c').allowed, true, 'wildcard host')
  t.equal(d('https://a.b.example.com/c').allowed, true, 'wildcard at any depth')
  t.equal(d('https://example.com/c').allowed, false, 'wildcard excludes the apex')
  t.equal(d('https://badexample.com/c').allowed, false, 'wildcard is label-aligned')
  t.equal(d('https://cursor.com/c').allowed, true, 'host entry')
  t.equal(d('https://cursor.com:444/c').allowed, false, 'host entry: default port only')
  t.equal(d('https://CURSOR.com/c').allowed, true, 'host entries are case-insensitive')
  t.match(d('https://evil.example.com/c'), { allowed: false, rule: 'cimd.trust.deny[0] (host evil.example.com)' }, 'deny wins over a wildcard allow')
  t.match(d('https://vscode.dev/oauth/a/b/blocked/x'), { allowed: false, rule: /deny\[1\]/ })
  t.match(d('https://nowhere.net/c'), { allowed: false, rule: 'cimd.trust.allow (no entry matches)' })
  t.match(decideTrust({ allow: [], deny: [], any: false }, 'https://a.com/c'), { allowed: false, rule: /default deny/ }, 'default deny-all')
  t.match(decideTrust({ allow: [], deny: [], any: true }, 'https://a.com/c'), { allowed: true, rule: 'cimd.trust.any' })
  t.match(decideTrust({ allow: [], deny: [{ host: 'a.com' }], any: true }, 'https://a.com/c'), { allowed: false }, 'deny wins over any')
})

t.test('metadata policy operators in order (OF-01..08, ATL-09)', async (t) => {
  const meta = (o: Record<string, unknown>) => Object.assign(Object.create(null), o)
  const authlete = {
    grant_types: { default: ['authorization_code'], subset_of: ['authorization_code', 'refresh_token'], superset_of: ['authorization_code'] },
    token_endpoint_auth_method: { one_of: ['private_key_jwt', 'self_signed_tls_client_auth'], essential: true },
  }
  t.same(metadataPolicyProblems(authlete), [], 'ATL-09 example is a valid policy')
  let r = applyMetadataPolicy(authlete, meta({ grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], token_endpoint_auth_method: 'private_key_jwt' }))
  t.ok(r.ok)
  if (r.ok) t.same(r.metadata.grant_types, ['authorization_code', 'refresh_token'], 'OF-05 subset_of narrows')
  r = applyMetadataPolicy(authlete, meta({ token_endpoint_auth_method: 'none' }))
  t.match(r, { ok: false, field: 'token_endpoint_auth_method', reason: /one of/ }, 'OF-04 one_of violation names the field')
  r = applyMetadataPolicy(authlete, meta({ grant_types: ['refresh_token'], token_endpoint_auth_method: 'private_key_jwt' }))
  t.match(r, { ok: false, field: 'grant_types' }, 'OF-06 superset_of')
  r = applyMetadataPolicy(authlete, meta({}))
  t.match(r, { ok: false, field: 'token_endpoint_auth_method', reason: 'is required' }, 'OF-07 essential')
  r = applyMetadataPolicy(authlete, meta({ token_endpoint_auth_method: 'private_key_jwt' }))
  t.ok(r.ok && (r.metadata.grant_types as string[])[0] === 'authorization_code', 'OF-03 default when absent')

  r = applyMetadataPolicy({ client_name: { value: 'Forced' }, logo_uri: { value: null } }, meta({ client_name: 'x', logo_uri: 'https://x/l.png' }))
  t.ok(r.ok && r.metadata.client_name === 'Forced' && !('logo_uri' in r.metadata), 'OF-01 value sets, null removes')
  r = applyMetadataPolicy({ scope: { add: ['mcp'], subset_of: ['mcp', 'admin'] } }, meta({ scope: 'admin other' }))
  t.ok(r.ok && r.metadata.scope === 'admin mcp', 'OF-02/OF-08 add then subset_of; scope as a space-separated list')
  r = applyMetadataPolicy({ redirect_uris: { subset_of: ['https://a/cb'] } }, meta({ redirect_uris: ['https://b/cb'] }))
  t.match(r, { ok: false, field: 'redirect_uris', reason: /no allowed value/ }, 'OF-09 a required array emptied by subset_of is a violation')
  r = applyMetadataPolicy({ contacts: { subset_of: ['a'] } }, meta({ contacts: ['b'] }))
  t.ok(r.ok && (r.metadata.contacts as string[]).length === 0, 'OF-09 an optional array may become []')
  r = applyMetadataPolicy({ contacts: { subset_of: ['a'], essential: true } }, meta({ contacts: ['b'] }))
  t.match(r, { ok: false, field: 'contacts' }, 'essential + emptied is a violation')
})

t.test('metadata policy combination checks at load (OF-01..06, OQ-14)', async (t) => {
  const paths = (p: Record<string, Record<string, unknown>>) => metadataPolicyProblems(p).map((x) => x.path)
  t.same(paths({ f: { add: ['a'], one_of: ['a'] } }), ['f.one_of'], 'add + one_of')
  t.same(paths({ f: { one_of: ['a'], subset_of: ['a'] } }), ['f.one_of'], 'one_of + subset_of')
  t.same(paths({ f: { subset_of: ['a'], superset_of: ['a', 'b'] } }), ['f.superset_of'], 'superset ⊄ subset')
  t.same(paths({ f: { value: ['a', 'b'], subset_of: ['a'] } }), ['f.subset_of'], 'value ⊄ subset_of')
  t.same(paths({ f: { value: null, essential: true } }), ['f.essential'])
  t.same(paths({ f: { value: 'x', one_of: ['y'] } }), ['f.one_of'])
  t.same(paths({ f: { bogus: 1 } }), ['f.bogus'], 'unknown operator')
  t.same(paths({ f: { add: ['c'], subset_of: ['a'] } }), ['f.add'])
  const base = { publicUrl: 'http://127.0.0.1:8080', resources: [{ id: 'r', name: 'R', path: '/mcp', upstream: 'http://127.0.0.1:9' }] }
  t.throws(
    () => loadConfigObject({ ...base, cimd: { enabled: true, metadataPolicy: { grant_types: { one_of: ['a'], subset_of: ['a'] } } } }, 'x'),
    /cimd\.metadataPolicy\.grant_types\.one_of: cannot be combined with subset_of/,
    'reported at config load with its path',
  )
  t.throws(() => loadConfigObject({ ...base, cimd: { trust: { allow: [{ host: 'bad host' }] } } }, 'x'), /cimd\.trust\.allow\[0\]/)
  t.throws(() => loadConfigObject({ ...base, cimd: { fetch: { maxBytes: 100000 } } }, 'x'), /cimd\.fetch\.maxBytes/)
  const c = loadConfigObject({ ...base, cimd: { enabled: true, allowHttp: true, allowPrivateAddresses: true, cache: { enabled: false }, trust: { any: true } } }, 'x')
  t.equal(c.warnings.filter((w) => w.startsWith('cimd')).length, 4, 'each development switch warns at startup')
  const d = loadConfigObject(base, 'x')
  t.equal(d.cimd.enabled, false, 'off by default')
  t.equal(d.cimd.fetch.maxBytes, 5120, 'CIMD-45: 5 KB default')
})
