/**
 * Red team: the `gatehouse` command. Every bad invocation exits 2 with a usage line and no
 * stack trace; configuration problems are listed with their paths; `keys rotate --out` never
 * overwrites and writes 0600 whatever the umask; nothing prints a secret unless printing it is
 * the command's job. The commands run in-process through the dispatcher the binary uses; real
 * child processes, as an operator runs them, where only a process shows it: the umask a key
 * file is written under, the binary reading a closed or a piped standard input.
 */
import { lstat, mkdtemp, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { verifyPassword } from '../../src/login/passwords.js'
import { runCli, runInProcess, type Run } from '../helpers/cli.js'

const dir = await mkdtemp(join(tmpdir(), 'gatehouse-cli-red-'))
const SECRET = 'S3CRET-never-printed-0123456789abcdefghijkl'
const BODY = 'publicUrl: https://gw.example.com\nresources:\n  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:3000/mcp" }\n'
const ok = join(dir, 'ok.yaml')
await writeFile(ok, BODY)

function noStack(t: Test, what: string, res: Run) {
  t.notMatch(res.stderr, /^\s+at /m, `${what}: no stack trace`)
  t.notMatch(res.stderr, /\.[jt]s:\d+/, `${what}: no source locations`)
}

t.test('every subcommand with missing or invalid arguments exits 2 with usage, no stack trace', async (t) => {
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /usage:/],
    [['check-config'], /check-config needs a FILE/],
    [['check-config', '--bogus'], /Unknown option '--bogus'[\s\S]*usage:/],
    [['serve', 'extra'], /Unexpected argument[\s\S]*usage:/],
    [['serve', '--config'], /argument missing|usage:/],
    [['token'], /token needs --config/],
    [['token', '--config', ok, '--nope'], /Unknown option[\s\S]*usage:/],
    [['keys'], /keys generate \[--alg ALG\]/],
    [['keys', 'frob'], /keys generate \[--alg ALG\]/],
    [['keys', 'generate', '--alg', 'HS256'], /unsupported --alg HS256/],
    [['keys', 'generate', '--alg', 'none'], /unsupported --alg none/],
    [['keys', 'list'], /keys list needs --config/],
    [['keys', 'rotate'], /keys rotate needs --config/],
    [['keys', 'rotate', '--config', ok], /needs --out FILE/],
    [['grants'], /grants list\|revoke/],
    [['grants', 'list', '--config', ok], /Redis store/],
    [['grants', 'revoke', '--config', ok], /needs GRANT_IDs/],
    [['grants', 'revoke', '--config', ok, 'g1', '--sub', 'x'], /not both/],
    [['clients'], /clients list\|delete/],
    [['clients', 'delete', '--config', ok], /at least one CLIENT_ID/],
    [['clients', 'list', '--config', ok], /Redis store/],
    [['cimd'], /cimd inspect URL/],
    [['cimd', 'inspect', '--config', ok], /exactly one client id URL/],
    [['cimd', 'inspect', 'https://a.example.com/c', 'https://b.example.com/c', '--config', ok], /exactly one/],
    [['cimd', 'purge', 'a', 'b', '--config', ok], /at most one/],
    [['hash-password'], /at least 8 characters/],
  ]
  for (const [args, message] of cases) {
    const res = await runInProcess(args)
    const what = args.join(' ')
    t.equal(res.code, 2, `${what}: exit 2`)
    t.match(res.stderr, message, `${what}: says what is wrong`)
    t.equal(res.stdout, '', `${what}: nothing on stdout`)
    noStack(t, what, res)
  }
  const help = await runInProcess(['--help'])
  t.equal(help.code, 0, '--help exits 0')
  t.match(help.stdout, /usage:/, 'asked-for help is the answer: stdout')
})

t.test('configuration problems: every path listed, exit 2, for every command that reads one', async (t) => {
  const bad = join(dir, 'bad.yaml')
  await writeFile(bad, 'publicUrl: "https://GW.example.com/x"\nresources:\n  - { id: A, name: A, path: /oauth/x, upstream: "https://gw.example.com/mcp", colour: red }\n')
  for (const command of [['check-config', bad], ['serve', '--config', bad], ['token', '--config', bad], ['keys', 'list', '--config', bad], ['clients', 'list', '--config', bad]]) {
    const res = await runInProcess(command)
    const what = command[0]!
    t.equal(res.code, 2, `${what}: exit 2`)
    t.match(res.stderr, /publicUrl:/, `${what}: publicUrl named`)
    t.match(res.stderr, /resources\[0\]: unknown key "colour"/, `${what}: the unknown key named`)
    t.match(res.stderr, /resources\[0\]\.id:/, `${what}: the id named`)
    noStack(t, what, res)
  }
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]']
  for (const [i, name] of [...'bcdefgh'].entries()) lines.push(`${name}: &${name} [${Array(10).fill(`*${'abcdefgh'[i]}`).join(', ')}]`)
  const bomb = join(dir, 'bomb.yaml')
  await writeFile(bomb, `${lines.join('\n')}\n${BODY}`)
  for (const [what, file] of [['alias bomb', bomb], ['endless file', '/dev/zero'], ['directory', dir], ['missing file', join(dir, 'nope.yaml')]] as const) {
    const res = await runInProcess(['check-config', file])
    t.equal(res.code, 2, `${what}: exit 2`)
    t.match(res.stderr, new RegExp(`${file.replace(/[/.]/g, '\\$&')}: 1 problem`), `${what}: reported as a configuration problem`)
    noStack(t, what, res)
  }
})

t.test('secrets are never printed: check-config, errors, keys list and rotate', async (t) => {
  const file = join(dir, 'secrets.yaml')
  await writeFile(
    file,
    [
      'publicUrl: https://gw.example.com',
      'registration: { enabled: true, initialAccessToken: "${IAT}" }',
      'clients:',
      '  - { clientId: app, name: App, redirectUris: ["https://app.example.com/cb"], tokenEndpointAuthMethod: client_secret_basic, secret: "${CLIENT_SECRET}" }',
      'login:',
      '  oidc:',
      '    - { id: corp, name: Corp, issuer: "https://sso.example.com", clientId: gh, clientSecret: "${CLIENT_SECRET}" }',
      'resources:',
      '  - { id: a, name: A, path: /mcp, upstream: "http://127.0.0.1:3000/mcp", access: { emailDomains: [example.com] } }',
      '',
    ].join('\n'),
  )
  const valid = await runInProcess(['check-config', file], { IAT: SECRET, CLIENT_SECRET: SECRET })
  t.equal(valid.code, 0, valid.stderr)
  t.notMatch(valid.stdout + valid.stderr, /S3CRET/, 'a valid configuration: no secret printed')
  const short = await runInProcess(['check-config', file], { IAT: 'S3CRET-short', CLIENT_SECRET: 'S3CRET-short-too' })
  t.equal(short.code, 2)
  t.match(short.stderr, /registration\.initialAccessToken/)
  t.match(short.stderr, /clients\[0\]\.secret/)
  t.notMatch(short.stdout + short.stderr, /S3CRET/, 'a wrong secret value is not echoed')
  const misplaced = join(dir, 'misplaced.yaml')
  await writeFile(misplaced, `${BODY}} ${SECRET}\n`)
  const yamlError = await runInProcess(['check-config', misplaced])
  t.equal(yamlError.code, 2)
  t.notMatch(yamlError.stderr, /S3CRET/, 'a YAML error does not quote the stray text')

  const key = (await runInProcess(['keys', 'generate'])).stdout
  t.match(key, /^-----BEGIN PRIVATE KEY-----/, 'keys generate prints the key: that is its job')
  const keyFile = join(dir, 'signing.pem')
  await writeFile(keyFile, key, { mode: 0o600 })
  const keyed = join(dir, 'keyed.yaml')
  await writeFile(keyed, `keys: [{ env: SIGNING_KEY }]\n${BODY}`)
  const listed = await runInProcess(['keys', 'list', '--config', keyed], { SIGNING_KEY: key })
  t.equal(listed.code, 0, listed.stderr)
  t.notMatch(listed.stdout, /PRIVATE KEY|MII/, 'keys list prints no key material')
  const out = join(dir, 'rotated.pem')
  const rotated = await runInProcess(['keys', 'rotate', '--config', keyed, '--out', out], { SIGNING_KEY: key })
  t.equal(rotated.code, 0, rotated.stderr)
  t.notMatch(rotated.stdout, /PRIVATE KEY|MII/, 'keys rotate prints no key material')
  t.notMatch(rotated.stdout, new RegExp(key.split('\n')[1]!.slice(0, 20)), 'not the old key either')
})

t.test('keys rotate --out: never overwrites, never follows a link, always 0600', async (t) => {
  const fresh = join(dir, 'fresh.pem')
  // A real process: the umask is process-wide, so only a child can have its own.
  const made = await runCli(['keys', 'rotate', '--config', ok, '--out', fresh], {}, '000')
  t.equal(made.code, 0, made.stderr)
  t.equal((await stat(fresh)).mode & 0o777, 0o600, 'owner-only even with umask 000')

  const existing = join(dir, 'existing.pem')
  await writeFile(existing, 'keep me\n')
  const over = await runInProcess(['keys', 'rotate', '--config', ok, '--out', existing])
  t.equal(over.code, 2)
  t.match(over.stderr, /EEXIST.*must not exist yet/)
  t.equal(await readFile(existing, 'utf8'), 'keep me\n', 'the existing file is untouched')

  const link = join(dir, 'link.pem')
  await symlink(existing, link)
  const viaLink = await runInProcess(['keys', 'rotate', '--config', ok, '--out', link])
  t.equal(viaLink.code, 2, 'a symlink to an existing file is refused')
  t.equal(await readFile(existing, 'utf8'), 'keep me\n', 'its target is untouched')

  const dangling = join(dir, 'dangling.pem')
  const target = join(dir, 'created-through-link.pem')
  await symlink(target, dangling)
  const viaDangling = await runInProcess(['keys', 'rotate', '--config', ok, '--out', dangling])
  t.equal(viaDangling.code, 2, 'a dangling symlink is refused')
  await t.rejects(lstat(target), { name: 'Error', code: 'ENOENT' }, 'nothing was created at its target')

  const missingDir = await runInProcess(['keys', 'rotate', '--config', ok, '--out', join(dir, 'no', 'such', 'dir.pem')])
  t.equal(missingDir.code, 2)
  t.match(missingDir.stderr, /ENOENT/)
  for (const res of [over, viaLink, viaDangling, missingDir]) noStack(t, 'rotate refusal', res)
})

t.test('the binary reads standard input to its end: closed, it refuses (exit 2); piped, it hashes', async (t) => {
  const [closed, piped] = await Promise.all([
    runCli(['hash-password']),
    runCli(['hash-password'], {}, undefined, 'correct horse battery staple\n'),
  ])
  t.equal(closed.code, 2, 'closed stdin: exit 2, no wait')
  t.match(closed.stderr, /at least 8 characters/)
  t.equal(closed.stdout, '', 'closed stdin: nothing on stdout')
  noStack(t, 'hash-password', closed)
  t.equal(piped.code, 0, piped.stderr)
  t.ok(await verifyPassword('correct horse battery staple', piped.stdout.trim()), 'the hash is of the password without its newline')
  // Tests log their users in with cheaper hashes (test/helpers/passwords.ts); what operators get is production's cost.
  t.match(piped.stdout, /^scrypt\$32768\$8\$1\$/, 'scrypt at N=2^15, r=8, p=1')
  t.notMatch(piped.stdout + piped.stderr, /horse/, 'the password is not echoed')
})

t.test('check-config reports every problem at once and everything serve would refuse at start (issue 21)', async (t) => {
  const file = join(dir, 'three.yaml')
  await writeFile(
    file,
    [
      'publicUrl: https://gw.example.com',
      'store: { type: redis, redis: { url: "rediss://:${REDIS_PASSWORD}@redis:6380/0", tls: { caFile: /nonexistent/ca.pem } } }',
      'keys: [{ file: /nonexistent/key.pem }]',
      'workloadIdentity: { issuers: [{ id: k8s, issuer: "https://k8s.example.com", jwksFile: /nonexistent/jwks.json, rules: [] }] }',
      'resources:',
      '  - { id: a, name: A, path: /mcp, upstreem: "http://127.0.0.1:3000/mcp" }',
      '  - { id: b, name: B, path: /b, upstream: "htp//bad url" }',
      '',
    ].join('\n'),
  )
  for (const command of [['check-config', file], ['serve', '--config', file]]) {
    const res = await runInProcess(command)
    const what = command[0]!
    t.equal(res.code, 2, `${what}: exit 2`)
    t.match(res.stderr, /store\.redis\.url: environment variable REDIS_PASSWORD is not set/, `${what}: the unset variable`)
    t.match(res.stderr, /resources\[0\]: unknown key "upstreem" \(did you mean "upstream"\?\)/, `${what}: the misspelled key, with a suggestion`)
    t.match(res.stderr, /resources\[1\]\.upstream: must match format "uri" \(got "htp\/\/bad url"\)/, `${what}: the bad URL with its value`)
    t.match(res.stderr, /keys\[0\]\.file: "\/nonexistent\/key\.pem" does not exist/, `${what}: the missing key file`)
    t.match(res.stderr, /store\.redis\.tls\.caFile: "\/nonexistent\/ca\.pem" does not exist/, `${what}: the missing CA bundle`)
    t.match(res.stderr, /workloadIdentity\.issuers\[0\]\.jwksFile: "\/nonexistent\/jwks\.json" does not exist/, `${what}: the missing JWKS file`)
    for (const line of res.stderr.trim().split('\n').slice(1)) t.match(line, /^\s+- [\w.[\]]*: \S/, `one line per problem, path: message (${line})`)
    noStack(t, what, res)
  }
  const notAKey = join(dir, 'not-a-key.pem')
  await writeFile(notAKey, 'hello\n')
  const keyFile = join(dir, 'key-content.yaml')
  await writeFile(keyFile, `${BODY}keys: [{ file: ${notAKey} }, { env: GATEHOUSE_TEST_UNSET_KEY }]\n`)
  const res = await runInProcess(['check-config', keyFile])
  t.equal(res.code, 2, 'a key file that holds no key fails check-config, not only serve')
  t.match(res.stderr, /keys\[1\]\.env: environment variable GATEHOUSE_TEST_UNSET_KEY is not set/)
  const content = join(dir, 'key-content-only.yaml')
  await writeFile(content, `${BODY}keys: [{ file: ${notAKey} }]\n`)
  const parsed = await runInProcess(['check-config', content])
  t.equal(parsed.code, 2)
  t.match(parsed.stderr, /keys\[0\]: key file .* is not a ES256 private key/)
})

t.test('check-config: a key file that holds no key is reported with the other problems', async (t) => {
  const notAKey = join(dir, 'not-a-key-2.pem')
  await writeFile(notAKey, 'hello\n')
  const file = join(dir, 'keys-and-more.yaml')
  await writeFile(file, `${BODY}keys: [{ file: ${notAKey}, active: true }, { file: ${join(dir, 'absent.pem')} }]\nregistraton: {}\n`)
  const res = await runInProcess(['check-config', file])
  t.equal(res.code, 2)
  t.match(res.stderr, /: 3 problems/)
  t.match(res.stderr, /unknown key "registraton" \(did you mean "registration"\?\)/)
  t.match(res.stderr, /keys\[0\]: key file .*not-a-key-2\.pem is not a ES256 private key/)
  t.match(res.stderr, /keys\[1\]\.file: ".*absent\.pem" does not exist/)
  t.notMatch(res.stderr, /keys\[1\]: /, 'a missing file is reported once, not read again')
})
