/**
 * Red team: configuration loading. Every problem is a ConfigError naming its path (or its line
 * in the file), never a crash; nothing an operator wrote is echoed when it might be a secret;
 * nothing in a value can change the structure around it (SEC-05 for self-references).
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfigFile, loadConfigText, type ConfigProblem } from '../../src/config/load.js'

const RESOURCE = '  - { id: r, name: R, path: /mcp, upstream: "http://10.0.0.1:3000/mcp" }\n'
const BASE = `publicUrl: https://gw.example.com\nresources:\n${RESOURCE}`
const SECRET = 'S3CRET-value-that-must-never-be-printed-0123456789'

function problems(text: string, env: NodeJS.ProcessEnv = {}): readonly ConfigProblem[] {
  try {
    loadConfigText(text, 'test.yaml', env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

t.test('alias expansion ("billion laughs") is a ConfigError, fast (YAML resource exhaustion)', async (t) => {
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]']
  for (const [i, name] of [...'bcdefghi'].entries()) lines.push(`${name}: &${name} [${Array(10).fill(`*${'abcdefghi'[i]}`).join(', ')}]`)
  const started = Date.now()
  t.match(problems(`${lines.join('\n')}\n${BASE}`), [{ path: '', message: /Excessive alias count/ }])
  t.ok(Date.now() - started < 2000, 'refused before expanding')
  t.match(problems(`${BASE}x: *nowhere\n`), [{ path: '', message: /^Unresolved alias/ }], 'an alias without anchor is a problem, not a crash')
  t.same(problems(`${BASE}registration: &reg { enabled: true }\n`), [], 'an anchor that is used once is fine')
  t.match(problems(`${BASE}base: &b { enabled: true }\nregistration: { <<: *b }\n`), [{ message: /unknown key "base"/ }, { path: 'registration', message: /unknown key "<<"/ }], 'no merge keys: YAML 1.2 core')
})

t.test('YAML errors name a line, never the text they quote (secrets written in the wrong place)', async (t) => {
  const cases = [
    `${BASE}} ${SECRET}\n`,
    `${BASE}x: *${SECRET.replace(/-/g, '')}\n`,
    `publicUrl: https://gw.example.com\nregistration:\n  initialAccessToken:\n"${SECRET}"\n${'resources:\n'}${RESOURCE}`,
    `${BASE}registration: { initialAccessToken: "${SECRET}\n`,
  ]
  for (const [i, text] of cases.entries()) {
    let message = ''
    try {
      loadConfigText(text, 'test.yaml', {})
    } catch (err) {
      t.ok(err instanceof ConfigError, `case ${i}: a ConfigError`)
      message = (err as Error).message
    }
    t.not(message, '', `case ${i}: refused`)
    t.notMatch(message, /S3CRET/, `case ${i}: the quoted text is not echoed`)
  }
  t.match(problems(`${BASE}publicUrl: https://other.example.com\n`), [{ message: /Map keys must be unique at line 4/ }], 'duplicate keys, with their line')
  t.match(problems(`${BASE}---\npublicUrl: https://x.example.com\n`), [{ message: /multiple documents/ }], 'a second document is refused, not silently ignored')
})

t.test('schema problems never print the value, only the path (secrets in clients, registration, login)', async (t) => {
  const cases: [string, string][] = [
    [`${BASE}registration: { enabled: true, initialAccessToken: ${SECRET.slice(0, 20)} }\n`, 'registration.initialAccessToken'],
    [`${BASE}clients:\n  - { clientId: c, name: C, redirectUris: ["https://a.example.com/cb"], tokenEndpointAuthMethod: client_secret_basic, secret: ${SECRET.slice(0, 20)} }\n`, 'clients[0].secret'],
    [`${BASE}clients:\n  - { clientId: c, name: C, redirectUris: ["https://a.example.com/cb"], secret: ${SECRET} }\n`, 'clients[0].secret'],
    [`${BASE}login:\n  oidc:\n    - { id: corp, name: Corp, issuer: "https://sso.example.com", clientId: gh, clientSecret: [${SECRET}] }\n`, 'login.oidc[0].clientSecret'],
    [`${BASE}registration: { enabled: true, initialAccessToken: { value: ${SECRET} } }\n`, 'registration.initialAccessToken'],
  ]
  for (const [text, path] of cases) {
    let message = ''
    try {
      loadConfigText(text, 'test.yaml', {})
    } catch (err) {
      t.ok(err instanceof ConfigError)
      t.ok((err as ConfigError).problems.some((p) => p.path === path), `${path} is named`)
      message = (err as Error).message
    }
    t.notMatch(message, /S3CRET/, `${path}: the value is not printed`)
  }
  const fromEnv = problems(`${BASE}registration: { enabled: true, initialAccessToken: "\${IAT}" }\n`, { IAT: 'S3CRET-short' })
  t.match(fromEnv, [{ path: 'registration.initialAccessToken' }])
  t.notMatch(JSON.stringify(fromEnv), /S3CRET/, 'a substituted value is not printed either')
})

t.test('${ENV} substitution cannot inject structure or expand twice', async (t) => {
  const text = `${BASE}registration:\n  enabled: true\n  initialAccessToken: \${IAT}\n`
  const injected = loadConfigText(text, 't', { IAT: `${'a'.repeat(32)}\nenabled: false\nmaxClients: 1` })
  t.equal(injected.registration.enabled, true, 'a newline and ": " stay inside the string')
  t.equal(injected.registration.maxClients, 10000)
  t.equal(injected.registration.initialAccessToken, `${'a'.repeat(32)}\nenabled: false\nmaxClients: 1`)
  const twice = loadConfigText(text, 't', { IAT: `\${OTHER}${'b'.repeat(32)}`, OTHER: 'expanded' })
  t.equal(twice.registration.initialAccessToken, `\${OTHER}${'b'.repeat(32)}`, 'a value is substituted once, not re-read')
  t.match(problems(`${BASE}\${KEY}: { enabled: true }\n`, { KEY: 'registration' }), [{ message: /unknown key "\$\{KEY\}"/ }], 'keys are not substituted')
  t.match(problems(`${BASE}registration: { enabled: true, maxClients: "\${N}" }\n`, { N: '5' }), [{ path: 'registration.maxClients', message: /must be integer/ }], 'a substituted string stays a string')
  t.match(problems(`${BASE}registration: { initialAccessToken: "\${UNSET_VAR}" }\n`), [{ path: 'registration.initialAccessToken', message: /UNSET_VAR is not set/ }])
})

t.test('unknown keys, __proto__ and type confusion are problems with their path', async (t) => {
  t.match(problems(`${BASE}registration:\n  __proto__: { enabled: true }\n`), [{ path: 'registration', message: /unknown key "__proto__"/ }], '__proto__ does not become the prototype')
  t.match(problems(`${BASE}__proto__: { bogus: 1 }\n`), [{ path: '', message: /unknown key "__proto__"/ }])
  t.match(problems(`${BASE}constructor: { prototype: { x: 1 } }\n`), [{ path: '', message: /unknown key "constructor"/ }])
  t.match(problems(`${BASE}registraton: { enabled: true }\n`), [{ path: '', message: /unknown key "registraton"/ }])
  t.match(problems(`${BASE}registration: { enabled: "yes", maxClients: 1e400, rateLimit: [] }\n`), [
    { path: 'registration.enabled', message: /must be boolean/ },
    { path: 'registration.maxClients', message: /must be integer/ },
    { path: 'registration.rateLimit', message: /must be object/ },
  ])
  t.match(problems(`${BASE}registration: !!binary aGVsbG8=\n`), [{ path: 'registration' }])
  t.match(problems('hello\n'), [{ path: '', message: /must be object/ }])
  t.match(problems('- 1\n'), [{ path: '', message: /must be object/ }])
  t.match(problems(''), [{ message: /required property 'publicUrl'/ }, { message: /required property 'resources'/ }])
})

t.test('publicUrl is exactly an origin: no path, query, credentials, spaces or non-canonical spelling', async (t) => {
  const at = (publicUrl: string) => problems(BASE.replace('https://gw.example.com', JSON.stringify(publicUrl)))
  for (const bad of [
    'https://gw.example.com/base',
    'https://gw.example.com?x=1',
    'https://gw.example.com#x',
    'https://user:pw@gw.example.com',
    'https://gw.example.com\\evil',
    'https://gw .example.com',
    'https://gw.example.com ',
    'https://GW.example.com',
    'https://gw.example.com:443',
    'http://localhost:80',
    'ftp://gw.example.com',
    'https://',
  ]) {
    t.match(at(bad), [{ path: 'publicUrl' }], `${JSON.stringify(bad)} is refused at publicUrl`)
  }
  t.same(at('https://gw.example.com/'), [], 'a trailing slash is fine')
  t.same(at('https://gw.example.com:8443'), [])
  t.same(at('http://127.0.0.1:8080'), [])
  t.match(problems(`${BASE}issuer: "https://u:p@gw.example.com"\n`), [{ path: 'issuer', message: /credentials/ }])
})

t.test('resource paths cannot shadow the gateway\'s own endpoints, spelled any way', async (t) => {
  const withPath = (path: string) => problems(`${BASE}  - { id: s, name: S, path: "${path}", upstream: "http://10.0.0.2:3000/mcp" }\n`)
  const cases: [string, RegExp][] = [
    ['/mcp', /already used by resources\[0\]/],
    ['/oauth/token', /reserved/],
    ['/oauth', /reserved/],
    ['/.well-known/oauth-authorization-server', /reserved/],
    ['/.well-known', /reserved/],
    ['/metrics', /reserved/],
    ['/healthz', /reserved/],
    ['/%6fauth/token', /write %6f as the character itself/],
    ['/%2Ewell-known/openid-configuration', /write %2E/],
    ['/a/%2e%2e/oauth', /write %2e/],
    ['/a/../oauth', /\. or \.\. segments/],
    ['//oauth', /empty segments/],
    ['/a//b', /empty segments/],
    ['/mcp/', /trailing slash|must not end with/],
    ['mcp', /pattern/],
    ['/m cp', /pattern/],
  ]
  for (const [path, message] of cases) t.match(withPath(path), [{ path: 'resources[1].path', message }], `${path}: refused`)
  t.same(withPath('/oauthish/mcp'), [], 'a path that only starts with the same letters is fine')
  t.same(withPath('/mcp/v2'), [], 'a nested resource path is fine (the longest path owns its requests)')
  t.same(withPath('/a%20b'), [], 'encoded reserved characters are fine')
})

t.test('an upstream that is the gateway itself is refused (SEC-05)', async (t) => {
  const upstreamOf = (upstream: string, extra = '') => problems(`${BASE.replace('http://10.0.0.1:3000/mcp', upstream)}${extra}`)
  t.match(upstreamOf('https://gw.example.com/mcp'), [{ path: 'resources[0].upstream', message: /gateway itself/ }], 'the public origin')
  t.match(upstreamOf('https://gw.example.com/other'), [{ path: 'resources[0].upstream', message: /gateway itself/ }], 'any path on it')
  t.match(upstreamOf('http://127.0.0.1:8080/mcp'), [{ path: 'resources[0].upstream', message: /gateway itself/ }], 'its own listener (default port 8080)')
  t.match(upstreamOf('http://localhost:9000/mcp', 'listen: { host: 0.0.0.0, port: 9000 }\n'), [{ path: 'resources[0].upstream' }], 'its listener on localhost')
  t.match(upstreamOf('http://0.0.0.0:9000/mcp', 'listen: { host: 0.0.0.0, port: 9000 }\n'), [{ path: 'resources[0].upstream' }], 'its listen address')
  t.match(upstreamOf('http://user:pw@10.0.0.1/mcp'), [{ path: 'resources[0].upstream', message: /credentials/ }])
  t.match(upstreamOf('file:///etc/passwd'), [{ path: 'resources[0].upstream', message: /http or https/ }])
  t.same(upstreamOf('http://127.0.0.1:3000/mcp'), [], 'another port on loopback is another server')
  t.same(upstreamOf('https://mcp.example.com/mcp'), [], 'another host')
})

t.test('a configuration file is bounded: a wrong path fails fast with a ConfigError', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-config-'))
  const huge = join(dir, 'huge.yaml')
  await writeFile(huge, `${BASE}# ${'x'.repeat(1024 * 1024)}\n`)
  await t.rejects(loadConfigFile(huge, {}), { name: 'ConfigError', message: /larger than 1024 KiB/ })
  await t.rejects(loadConfigFile('/dev/zero', {}), { name: 'ConfigError', message: /larger than 1024 KiB/ }, 'an endless file')
  await t.rejects(loadConfigFile(dir, {}), { name: 'ConfigError', message: /cannot read the file \(EISDIR\)/ })
  await t.rejects(loadConfigFile(join(dir, 'missing.yaml'), {}), { name: 'ConfigError', message: /cannot read the file \(ENOENT\)/ })
  const ok = join(dir, 'ok.yaml')
  await writeFile(ok, BASE)
  t.equal((await loadConfigFile(ok, {})).publicUrl, 'https://gw.example.com')
})
