/**
 * The `login.oidc`, `login.session` and `resources[].access` settings: defaults, and what the
 * loader refuses (secure by default: no resource without access rules once an IdP is configured).
 */
import t from 'tap'
import { ConfigError, loadConfigObject } from '../../src/config/load.js'
import { mayAccess, usersMatch } from '../../src/policy/access-rules.js'

const provider = (extra: Record<string, unknown> = {}) => ({
  id: 'corp',
  name: 'Corp SSO',
  issuer: 'https://login.example.com/realms/main',
  clientId: 'gatehouse',
  clientSecret: 'secret',
  ...extra,
})

const config = (login: Record<string, unknown>, access?: Record<string, unknown>) => ({
  publicUrl: 'https://mcp.example.com',
  login,
  resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://files:3000/mcp', ...(access && { access }) }],
})

function problemsOf(raw: unknown): { path: string; message: string }[] {
  try {
    loadConfigObject(raw, 'test')
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems]
    throw err
  }
  return []
}

t.test('an oidc provider gets its defaults', async (t) => {
  const c = loadConfigObject(config({ oidc: [provider()] }, { groupsAnyOf: ['mcp'] }), 'test')
  const p = c.login.oidc[0]!
  t.same(p.scopes, ['openid', 'email', 'profile'])
  t.same(p.claims, { subject: 'sub', email: 'email', name: 'name', groups: 'groups' })
  t.equal(p.requireVerifiedEmail, true)
  t.equal(p.tokenEndpointAuthMethod, 'client_secret_basic')
  t.same(p.authorizationParams, {})
  t.equal(c.login.session.maxAgeSeconds, undefined)
  t.notOk(c.warnings.some((w) => w.includes('no login provider')), 'an oidc provider is a login provider')
})

t.test('secure by default: with an oidc provider every resource needs access rules or allowAnyUser', async (t) => {
  t.match(problemsOf(config({ oidc: [provider()] })), [{ path: 'resources[0].access', message: /required when login.oidc is configured/ }])
  t.same(problemsOf(config({ oidc: [provider()] }, { allowAnyUser: true })), [])
  t.match(problemsOf(config({ oidc: [provider()] }, {})), [{ path: 'resources[0].access', message: /at least one condition/ }])
  t.match(problemsOf(config({ oidc: [provider()] }, { allowAnyUser: true, emails: ['a@example.com'] })), [
    { path: 'resources[0].access', message: /allowAnyUser: true admits everyone/ },
  ])
  const staticOnly = { static: { users: [{ username: 'a', passwordHash: 'scrypt$x' }] } }
  t.same(problemsOf(config(staticOnly)), [], 'static users alone: no rule means every configured user')
})

t.test('the protocol parameters cannot be overridden; ids, scopes and issuers are checked', async (t) => {
  const problems = problemsOf(
    config(
      { oidc: [provider({ authorizationParams: { state: 'x', nonce: 'y', redirect_uri: 'z', code_challenge_method: 'plain', hd: 'example.com' } })] },
      { allowAnyUser: true },
    ),
  )
  const paths = problems.map((p) => p.path)
  for (const name of ['state', 'nonce', 'redirect_uri', 'code_challenge_method']) {
    t.ok(paths.includes(`login.oidc[0].authorizationParams.${name}`), `${name} is the gateway's`)
  }
  t.notOk(paths.includes('login.oidc[0].authorizationParams.hd'), 'hd is an extra parameter, allowed')
  const schema = problemsOf(config({ oidc: [provider({ id: 'Bad_Id' }), provider({ id: 'plain', issuer: 'http://login.example.com' })] }, { allowAnyUser: true }))
  t.ok(schema.some((p) => p.path === 'login.oidc[0].id'), 'ids are lower-case names')
  t.ok(schema.some((p) => p.path === 'login.oidc[1].issuer'), 'the issuer must be https')
  const semantic = problemsOf(config({ oidc: [provider({ scopes: ['email'], issuer: 'https://login.example.com/?tenant=1' }), provider({ id: 'static' })] }, { allowAnyUser: true }))
  t.match(semantic, [
    { path: 'login.oidc[0].scopes', message: /openid/ },
    { path: 'login.oidc[0].issuer', message: /query/ },
    { path: 'login.oidc[1].id', message: /static/ },
  ])
})

t.test('identity headers email and groups are configurable and checked like the others', async (t) => {
  const c = loadConfigObject(
    { ...config({ oidc: [provider()] }, { allowAnyUser: true }), resources: [{ id: 'f', name: 'F', path: '/mcp', upstream: 'http://f/mcp', access: { allowAnyUser: true }, identityHeaders: { email: 'X-Email', groups: 'X-Groups' } }] },
    'test',
  )
  t.same(c.resources[0]!.identityHeaders, { email: 'X-Email', groups: 'X-Groups' })
  t.match(
    problemsOf({ ...config({}), resources: [{ id: 'f', name: 'F', path: '/mcp', upstream: 'http://f/mcp', identityHeaders: { email: 'Cookie' } }] }),
    [{ path: 'resources[0].identityHeaders', message: /cannot carry identity/ }],
  )
})

t.test('access rules: all given conditions hold; domains are exact; no email never matches an email rule', async (t) => {
  const alice = { sub: 'corp:alice', email: 'Alice@Example.com', groups: ['eng', 'mcp'] }
  t.ok(usersMatch({ emailDomains: ['example.com'], groupsAnyOf: ['mcp'] }, alice))
  t.notOk(usersMatch({ emailDomains: ['example.com'], groupsAllOf: ['mcp', 'admin'] }, alice))
  t.notOk(usersMatch({ emailDomains: ['ample.com'] }, alice), 'a suffix is not the domain')
  t.notOk(usersMatch({ emailDomains: ['example.com'] }, { sub: 'corp:x', email: 'x@sub.example.com' }), 'subdomains are not included')
  t.notOk(usersMatch({ emails: ['alice@example.com'] }, { sub: 'corp:alice' }), 'no (verified) email: no match')
  t.ok(usersMatch({ emails: ['alice@example.com'] }, alice), 'case-insensitive')
  t.ok(mayAccess(undefined, alice), 'no rules (static users only): allowed')
  t.ok(mayAccess({ allowAnyUser: true }, alice))
  t.notOk(mayAccess({ subjects: ['corp:bob'] }, alice))
})
