import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { repoPath } from '../helpers/repo.js'
import { ConfigError, loadConfigFile, loadConfigObject, loadConfigText } from '../../src/config/load.js'
import { REFERENCE_FILE, referenceText, SCHEMA_FILE, schemaFileText } from '../../src/config/write-schema.js'

const minimal = () => ({
  publicUrl: 'https://mcp.example.com',
  resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://files:3000/mcp' }],
})

function problemsOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems]
    throw err
  }
  throw new Error('expected a ConfigError')
}

t.test('defaults fill every optional setting and derived URLs follow RFC 9728 (PRM-01)', async (t) => {
  const c = loadConfigObject(minimal(), 'test')
  t.equal(c.listen.host, '127.0.0.1')
  t.equal(c.listen.port, 8080)
  t.equal(c.store.type, 'memory')
  t.equal(c.issuer, 'https://mcp.example.com')
  t.equal(c.accessTokens.ttlSeconds, 300)
  const r = c.resources[0]!
  t.equal(r.uri, 'https://mcp.example.com/mcp')
  t.equal(r.metadataUrl, 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp')
  t.equal(r.maxBodyBytes, 1048576)
  t.same(r.requiredScopes, [])
  t.equal(c.defaultResource, r, 'a single resource is the default')
  t.ok(c.warnings.some((w) => w.includes('memory')), 'memory store is flagged as a development setting')
})

t.test('the loaded configuration is frozen all the way down', async (t) => {
  const c = loadConfigObject(minimal(), 'test')
  t.ok(Object.isFrozen(c))
  t.ok(Object.isFrozen(c.resources[0]!.scopes))
  t.throws(() => {
    ;(c.listen as { port: number }).port = 1
  })
})

t.test('every problem is reported at once, each with its path', async (t) => {
  const problems = problemsOf(() =>
    loadConfigObject(
      {
        publicUrl: 'ftp://x',
        colour: 'blue',
        listen: { port: 'eighty' },
        resources: [{ id: 'Bad Id', name: 'x', path: 'mcp', upstream: 'not a url', extra: 1 }],
      },
      'test',
    ),
  )
  const paths = problems.map((p) => p.path)
  t.ok(problems.some((p) => p.path === '' && p.message.includes('"colour"')), 'unknown top-level key')
  t.ok(problems.some((p) => p.path === 'resources[0]' && p.message.includes('"extra"')), 'unknown nested key')
  t.ok(paths.includes('publicUrl'))
  t.ok(paths.includes('listen.port'))
  t.ok(paths.includes('resources[0].id'))
  t.ok(paths.includes('resources[0].path'))
  t.ok(paths.includes('resources[0].upstream'))
  t.ok(problems.length >= 7, `${problems.length} problems reported together`)
})

t.test('checks a schema cannot express', async (t) => {
  const base = minimal()
  const problems = problemsOf(() =>
    loadConfigObject(
      {
        publicUrl: 'http://mcp.example.com',
        resources: [
          { ...base.resources[0], requiredScopes: ['files:read'], default: true },
          { ...base.resources[0], default: true, path: '/.well-known/x' },
          { id: 'c', name: 'c', path: '/c/', upstream: 'http://u:p@c/mcp', identityHeaders: { subject: 'Authorization' } },
        ],
      },
      'test',
    ),
  )
  const text = problems.map((p) => `${p.path}: ${p.message}`).join('\n')
  t.match(text, /publicUrl: must be https/)
  t.match(text, /resources\[0\]\.requiredScopes: "files:read" is not listed/)
  t.match(text, /resources\[1\]\.id: "files" is already used by resources\[0\]/)
  t.match(text, /resources\[1\]\.path: \/\.well-known\/x is reserved/)
  t.match(text, /resources\[2\]\.path: must not end with "\/"/)
  t.match(text, /resources\[2\]\.upstream: must not carry credentials/)
  t.match(text, /resources\[2\]\.identityHeaders: "authorization" cannot carry identity/)
  t.match(text, /resources: at most one resource can be the default/)
})

t.test('http publicUrl is accepted for loopback hosts only', async (t) => {
  for (const host of ['localhost:8080', '127.0.0.1', '[::1]:9000']) {
    t.doesNotThrow(() => loadConfigObject({ ...minimal(), publicUrl: `http://${host}` }, 'test'), host)
  }
  t.throws(() => loadConfigObject({ ...minimal(), publicUrl: 'http://10.0.0.1' }, 'test'), ConfigError)
})

t.test('${ENV} substitution, escaping, and unset variables', async (t) => {
  const yaml = `
publicUrl: https://mcp.example.com
store:
  type: redis
  redis:
    url: redis://:\${REDIS_PASSWORD}@redis:6379/0
    keyPrefix: "$\${literal}:"
resources:
  - { id: a, name: A, path: /mcp, upstream: "http://\${UPSTREAM_HOST}:3000/mcp" }
`
  const c = loadConfigText(yaml, 'test', { REDIS_PASSWORD: 's3cr:t', UPSTREAM_HOST: 'files' })
  t.equal(c.store.redis!.url, 'redis://:s3cr:t@redis:6379/0')
  t.equal(c.store.redis!.keyPrefix, '${literal}:')
  t.equal(c.resources[0]!.upstream, 'http://files:3000/mcp')
  const problems = problemsOf(() => loadConfigText(yaml, 'test', {}))
  t.same(
    problems.map((p) => p.path),
    ['store.redis.url', 'resources[0].upstream'],
    'each unset variable is reported where it is used',
  )
  t.notMatch(JSON.stringify(problems), /s3cr/, 'no values in messages')
})

t.test('YAML errors: duplicate keys and syntax', async (t) => {
  t.throws(() => loadConfigText('publicUrl: a\npublicUrl: b\n', 'dup.yaml'), { name: 'ConfigError', message: /dup\.yaml/ })
  t.throws(() => loadConfigText('resources: [\n', 'broken.yaml'), ConfigError)
})

t.test('redis store requires its connection settings', async (t) => {
  const problems = problemsOf(() => loadConfigObject({ ...minimal(), store: { type: 'redis' } }, 'test'))
  t.same(problems, [{ path: 'store', message: "must have required property 'redis'" }])
})

t.test('signing keys: exactly one active when several; file or env, not both', async (t) => {
  const two = [{ file: '/a.pem' }, { file: '/b.pem' }]
  t.match(problemsOf(() => loadConfigObject({ ...minimal(), keys: two }, 'test')), [
    { path: 'keys', message: /exactly one key must be active/ },
  ])
  t.match(problemsOf(() => loadConfigObject({ ...minimal(), keys: [{ file: '/a', env: 'K' }] }, 'test')), [
    { path: 'keys[0]' },
  ])
  const one = loadConfigObject({ ...minimal(), keys: [{ file: '/a.pem' }] }, 'test')
  t.equal(one.keys[0]!.active, true, 'a single key is the active one')
})

t.test('store.redis.sentinelPassword belongs to sentinels', async (t) => {
  const redis = { url: 'redis://gatehouse/0', sentinelPassword: '${SENTINEL_PASSWORD}' }
  t.match(problemsOf(() => loadConfigObject({ ...minimal(), store: { type: 'redis', redis } }, 'test', { SENTINEL_PASSWORD: 'pw' })), [
    { path: 'store.redis.sentinelPassword', message: /needs store\.redis\.sentinels/ },
  ])
  const sentinels = [{ host: 's1', port: 26379 }]
  const ok = loadConfigObject({ ...minimal(), store: { type: 'redis', redis: { ...redis, sentinels, sentinelMasterName: 'g' } } }, 'test', { SENTINEL_PASSWORD: 'pw' })
  t.equal(ok.store.redis?.sentinelPassword, 'pw', 'from the environment, like every secret')
})

t.test('missing file is a ConfigError naming the file', async (t) => {
  await t.rejects(loadConfigFile('/nonexistent/gatehouse.yaml'), { name: 'ConfigError', message: /ENOENT/ })
})

t.test('every example configuration in config/ loads', async (t) => {
  const dir = repoPath('config')
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml'))
  t.ok(files.length >= 3)
  for (const f of files) {
    const c = await loadConfigFile(join(dir, f), {
      REDIS_PASSWORD: 'x',
      OPS_PASSWORD_HASH: 'scrypt$32768$8$1$c2FsdA$aGFzaA',
      AGENT_PLATFORM_SECRET: 'a-secret-of-at-least-thirty-two-characters',
      CI_BOT_SECRET: 'another-secret-of-at-least-thirty-two-characters',
    })
    t.ok(c.resources.length > 0, f)
  }
})

t.test('config/gatehouse.schema.json and config/REFERENCE.md are in sync with the source (run npm run schema)', async (t) => {
  t.equal(await readFile(SCHEMA_FILE, 'utf8'), schemaFileText())
  t.equal(await readFile(REFERENCE_FILE, 'utf8'), referenceText())
})

t.test('policy rules are checked against the resource at load', async (t) => {
  const withRules = (rules: object[]) => () =>
    loadConfigObject(
      {
        publicUrl: 'https://mcp.example.com',
        resources: [
          { id: 'files', name: 'Files', path: '/mcp', upstream: 'http://files:3000/mcp', scopes: [{ name: 'files:read' }], policy: { rules } },
        ],
      },
      'test',
    )
  const rules = [
    { method: 'tools/call', name: 'delete_*', scopes: ['files:admin'] },
    { method: 'tools/list', name: 'x' },
    { method: 'resources/read', action: 'deny', scopes: ['files:read'] },
  ]
  const shape = problemsOf(withRules([...rules, { method: 'tools/call', verb: 'x' }]))
  t.match(shape.map((p) => `${p.path}: ${p.message}`).join('\n'), /resources\[0\]\.policy\.rules\[3\]: unknown key "verb"/)
  const semantic = problemsOf(withRules(rules)).map((p) => `${p.path}: ${p.message}`).join('\n')
  t.match(semantic, /rules\[0\]\.scopes: "files:admin" is not listed/)
  t.match(semantic, /rules\[1\]\.name: tools\/list calls have no name/)
  t.match(semantic, /rules\[2\]: a deny rule takes no scopes or users/)
})

t.test('one report: unset variables, schema errors with values, suggestions, combinations, files (issue 21)', async (t) => {
  const problems = problemsOf(() =>
    loadConfigObject(
      {
        publicUrl: 'https://mcp.example.com',
        lisen: { port: 80 },
        store: { type: 'redis', redis: { url: 'redis://:hunter2hunter2@redis:6379', keyPrefx: 'x', tls: { caFile: '/nonexistent/ca.pem' } } },
        keys: [{ file: '/nonexistent/k.pem', active: true }, { env: 'UNSET_KEY_VAR', active: true }],
        resources: [
          { id: 'files', name: 'F', path: '/mcp', upstream: '${UPSTREAM}' },
          { id: 'files', name: 'G', path: '/g', upstream: 'http://g/mcp', maxBodyBytes: 'big' },
        ],
        clients: [{ clientId: 'c', secret: 'short-secret-value', tokenEndpointAuthMethod: 'client_secret_basic' }],
      },
      'test',
      {},
      { checkFiles: true },
    ),
  )
  const text = problems.map((p) => `${p.path}: ${p.message}`).join('\n')
  t.match(text, /^resources\[0\]\.upstream: environment variable UPSTREAM is not set$/m, 'the unset variable')
  t.notMatch(text, /resources\[0\]\.upstream: must/, 'no schema error for the value an unset variable stands for')
  t.match(text, /^: unknown key "lisen" \(did you mean "listen"\?\)$/m, 'top-level suggestion')
  t.match(text, /^store\.redis: unknown key "keyPrefx" \(did you mean "keyPrefix"\?\)$/m, 'nested suggestion')
  t.match(text, /^resources\[1\]\.maxBodyBytes: must be integer \(got "big"\)$/m, 'the offending value')
  t.match(text, /^resources\[1\]\.id: "files" is already used by resources\[0\]$/m, 'combination checks run beside schema errors')
  t.match(text, /^keys: /m, 'two active keys')
  t.match(text, /^keys\[0\]\.file: "\/nonexistent\/k\.pem" does not exist$/m)
  t.match(text, /^keys\[1\]\.env: environment variable UNSET_KEY_VAR is not set or empty$/m)
  t.match(text, /^store\.redis\.tls\.caFile: "\/nonexistent\/ca\.pem" does not exist$/m)
  t.match(text, /clients\[0\]\.secret: .*\(got "\*\*\*\*"\)$/m, 'a secret is masked')
  t.notMatch(text, /short-secret-value|hunter2/, 'no secret in the report')
  t.notMatch(text, /did you mean "[^"]*"\?\).*did you mean/, 'one suggestion per key')
})

t.test('no suggestion for a key nothing resembles; file checks only when asked', async (t) => {
  const problems = problemsOf(() => loadConfigObject({ ...minimal(), zebra: 1 }, 'test'))
  t.same(problems, [{ path: '', message: 'unknown key "zebra"' }])
  t.doesNotThrow(() => loadConfigObject({ ...minimal(), keys: [{ file: '/nonexistent/k.pem' }] }, 'test'), 'administrative commands need no key files')
})

t.test('a URL password in an offending value is masked', async (t) => {
  const problems = problemsOf(() => loadConfigObject({ ...minimal(), store: { type: 'redis', redis: { url: 'http://:pw-XYZ@redis:6379' } } }, 'test'))
  t.match(problems, [{ path: 'store.redis.url', message: /got "http:\/\/:\*\*\*\*@redis:6379"/ }])
  t.notMatch(JSON.stringify(problems), /pw-XYZ/)
})

t.test('a misspelled required key is one problem, with its suggestion', async (t) => {
  const problems = problemsOf(() => loadConfigObject({ ...minimal(), resources: [{ id: 'a', name: 'A', path: '/mcp', upstreem: 'http://f:1/mcp' }] }, 'test'))
  t.same(problems, [{ path: 'resources[0]', message: 'unknown key "upstreem" (did you mean "upstream"?)' }])
  const missing = problemsOf(() => loadConfigObject({ ...minimal(), resources: [{ id: 'a', name: 'A', path: '/mcp' }] }, 'test'))
  t.same(missing, [{ path: 'resources[0]', message: "must have required property 'upstream'" }], 'a key simply missing is still reported')
})
