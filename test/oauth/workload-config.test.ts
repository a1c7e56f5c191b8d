/**
 * Workload identity's pure parts and configuration (WIF-03, WIF-05): claim paths into nested
 * Kubernetes claims, rule choice, policy rules that admit workloads only by `workloads` (never a
 * user condition), and what the loader refuses.
 */
import t from 'tap'
import { ConfigError, loadConfigObject } from '../../src/config/load.js'
import { mayAccess, usersMatch, workloadOf } from '../../src/policy/access-rules.js'
import { McpPolicy } from '../../src/policy/mcp-rules.js'
import type { WorkloadRuleConfig } from '../../src/config/workload-schema.js'
import { chooseRule, claimAt } from '../../src/policy/workload-rules.js'

const k8s = { sub: 'system:serviceaccount:ci:deployer', 'kubernetes.io': { namespace: 'ci', serviceaccount: { name: 'deployer' } }, groups: ['a', 'b'], n: 3 }

t.test('WIF-03: claim paths and matchers', async (t) => {
  t.equal(claimAt(k8s, 'kubernetes.io.namespace'), 'ci', 'a key with a dot of its own')
  t.equal(claimAt(k8s, 'kubernetes.io.serviceaccount.name'), 'deployer')
  t.equal(claimAt(k8s, 'kubernetes.io.pod.name'), undefined)
  t.equal(claimAt(k8s, 'constructor'), undefined, 'own properties only')
  const rules: WorkloadRuleConfig[] = [
    { workload: 'array', match: { groups: 'b' }, resources: ['other'] },
    { workload: 'deployer', match: { 'kubernetes.io.namespace': ['prod', 'c*'], n: '3' }, resources: ['files'] },
  ]
  const chosen = chooseRule(rules, k8s, 'files')
  t.equal(chosen.kind, 'matched')
  t.equal(chosen.kind === 'matched' && chosen.rule.workload, 'deployer', 'the first rule that also lists the resource')
  t.equal(chooseRule(rules, k8s, 'admin').kind, 'resource', 'matching rules, none for the resource')
  t.equal(chooseRule(rules, { sub: 'x' }, 'files').kind, 'none')
  t.match(chooseRule([{ workload: 'w', match: { sub: 'system:*:prod:*' }, resources: ['files'] }], k8s, 'files').verdicts[0], { matched: false, failed: { path: 'sub' } })
})

t.test('WIF-05: a workload is admitted only by workloads; users and clients never match it', async (t) => {
  t.equal(workloadOf('workload:k8s:system:serviceaccount:ci:deployer', 'workload:deployer'), 'deployer')
  t.equal(workloadOf('workload:k8s:x', 'web-app'), '', 'a workload subject with another client id is no person either')
  t.equal(workloadOf('static:alice', 'workload:deployer'), undefined)
  const workload = { sub: 'workload:k8s:x', workload: 'deployer' }
  t.notOk(usersMatch({ subjects: ['workload:k8s:x'] }, workload), 'a users condition naming its subject')
  t.notOk(mayAccess({ allowAnyUser: true }, workload), 'allowAnyUser admits people only')
  const policy = new McpPolicy(
    [
      { id: 'people', method: 'tools/call', name: 'whoami', action: 'allow', users: { subjects: ['workload:k8s:x'] } },
      { id: 'bots', method: 'tools/call', name: 'deploy', action: 'allow', clients: ['deployer'] },
      { id: 'wl', method: 'tools/call', name: 'echo', action: 'allow', workloads: ['deployer'] },
    ],
    [],
  )
  const caller = { ...workload, scopes: new Set<string>(), clientId: 'workload:deployer' }
  t.match(policy.decide({ method: 'tools/call', name: 'whoami' }, caller), { allowed: false, reason: 'denied' })
  t.match(policy.decide({ method: 'tools/call', name: 'deploy' }, caller), { allowed: false, reason: 'denied' }, 'clients never name a workload')
  t.match(policy.decide({ method: 'tools/call', name: 'echo' }, caller), { allowed: true })
  t.match(policy.decide({ method: 'tools/call', name: 'echo' }, { ...caller, workload: '' }), { allowed: false }, 'an unnamed workload')
  t.match(policy.decide({ method: 'tools/call', name: 'echo' }, { sub: 'static:alice', scopes: new Set<string>() }), { allowed: false }, 'a person is not a workload')
})

t.test('configuration: what the loader refuses', async (t) => {
  const base = (issuer: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    publicUrl: 'https://mcp.example.com',
    resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://127.0.0.1:9/mcp', scopes: [{ name: 'files:read' }], access: { allowAnyUser: true } }],
    workloadIdentity: { issuers: [{ id: 'k8s', issuer: 'https://k8s.example.com', rules: [{ workload: 'w', match: { sub: 'x' }, resources: ['files'] }], ...issuer }] },
    ...extra,
  })
  const problems = (config: Record<string, unknown>) => {
    try {
      loadConfigObject(config, 'test')
      return []
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`)
      throw err
    }
  }
  t.same(problems(base({ discovery: true })), [], 'discovery alone is fine')
  t.same(problems(base({ jwksFile: '/var/run/jwks.json' })), [])
  t.match(problems(base({})), [/give exactly one of discovery: true, jwksUri or jwksFile/])
  t.match(problems(base({ discovery: true, jwksFile: '/x' })), [/give exactly one/])
  t.match(problems(base({ jwksUri: 'http://k8s.example.com/jwks' })), [/must be https/])
  t.match(problems(base({ discovery: true, rules: [{ workload: 'w', match: { sub: 'x' }, resources: ['nope'], scopes: ['admin'] }] })), [/no resource has the id "nope"/, /"admin" is not a scope/])
  t.match(problems(base({ discovery: true, rules: [{ workload: 'w', match: {}, resources: ['files'] }] })), [/match/])
  t.match(problems(base({ discovery: true, algorithms: ['HS256'] })), [/algorithms/], 'no symmetric algorithm')
  t.match(problems(base({ discovery: true }, { login: { oidc: [{ id: 'workload', name: 'W', issuer: 'https://idp.example.com', clientId: 'x', clientSecret: 'y'.repeat(32) }] } })), [/"workload" is the subject prefix of workloads/])
  t.match(problems(base({ discovery: true }, { clients: [{ clientId: 'workload:w', name: 'x', redirectUris: ['https://a.example/cb'] }] })), [/clients\[0\]\.clientId: must match pattern/], 'no client id can be a workload\'s (no colon)')
})
