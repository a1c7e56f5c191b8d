/**
 * `gatehouse workload inspect`: an operator sees why a workload token is accepted or refused
 * (WIF-02, WIF-03), step by step, with the keys fetched from a real loopback issuer as the gateway
 * would (OIDC discovery), through the dispatcher the binary uses. Inspecting spends nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startWorkloadIssuer } from '../fixtures/workload-issuer.js'
import { runInProcess } from '../helpers/cli.js'

const issuer = await startWorkloadIssuer()
const stranger = await startWorkloadIssuer()
t.teardown(() => Promise.all([issuer.close(), stranger.close()]))
const dir = await mkdtemp(join(tmpdir(), 'gatehouse-wif-cli-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const ORIGIN = 'https://mcp.example.com'
const config = join(dir, 'gatehouse.yaml')
await writeFile(
  config,
  JSON.stringify({
    publicUrl: ORIGIN,
    resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://127.0.0.1:9/mcp', default: true, scopes: [{ name: 'files:read' }], access: { allowAnyUser: true } }],
    workloadIdentity: {
      issuers: [
        {
          id: 'k8s',
          issuer: issuer.issuer,
          discovery: true,
          allowPrivateAddresses: true,
          rules: [{ workload: 'deployer', match: { 'kubernetes.io.namespace': 'ci', 'kubernetes.io.serviceaccount.name': 'deployer' }, resources: ['files'] }],
        },
      ],
    },
  }),
)
const k8s = (namespace: string) => ({ sub: `system:serviceaccount:${namespace}:deployer`, aud: ORIGIN, 'kubernetes.io': { namespace, serviceaccount: { name: 'deployer' } } })

t.test('an accepted token: every step, the rule, the subject; from a file too', async (t) => {
  const token = await issuer.sign(k8s('ci'))
  const run = await runInProcess(['workload', 'inspect', token, '--config', config])
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /✔ issuer\s+http:\/\/127\.0\.0\.1:\d+ \(workloadIdentity issuer k8s\)/)
  t.match(run.stdout, /✔ keys\s+1 key\(s\) from http:\/\/127\.0\.0\.1:\d+\/jwks/)
  t.match(run.stdout, /✔ audience/)
  t.match(run.stdout, /✔ rules\[0\]\s+workload deployer: claims match/)
  t.match(run.stdout, /sub workload:k8s:system:serviceaccount:ci:deployer, client_id workload:deployer/)
  const file = join(dir, 'token')
  await writeFile(file, `${token}\n`)
  t.equal((await runInProcess(['workload', 'inspect', file, '--config', config])).code, 0, 'a projected token\'s file path works, and inspecting did not spend it')
})

t.test('refusals name the check, or the claim that differed', async (t) => {
  const prod = await runInProcess(['workload', 'inspect', await issuer.sign(k8s('prod')), '--config', config])
  t.equal(prod.code, 1)
  t.match(prod.stdout, /✘ rules\[0\]\s+workload deployer: kubernetes\.io\.namespace is "prod", wanted "ci"/)
  t.match(prod.stdout, /REFUSED \(unauthorized_client/)
  const aud = await runInProcess(['workload', 'inspect', await issuer.sign({ ...k8s('ci'), aud: 'https://other.example.com' }), '--config', config])
  t.match(aud.stdout, /✘ audience/)
  t.match(aud.stdout, /REFUSED \(invalid_grant\) at check audience/)
  const untrusted = await runInProcess(['workload', 'inspect', await stranger.sign(k8s('ci')), '--config', config])
  t.equal(untrusted.code, 1)
  t.match(untrusted.stdout, /✘ issuer\s+untrusted issuer/)
  t.equal(stranger.hits.size, 0, 'nothing fetched from an untrusted issuer')
  const target = await runInProcess(['workload', 'inspect', await issuer.sign(k8s('ci')), '--config', config, '--resource', 'https://elsewhere.example.com/mcp'])
  t.match(target.stdout, /REFUSED \(invalid_target\)/)
  const usage = await runInProcess(['workload', 'inspect', join(dir, 'missing'), '--config', config])
  t.equal(usage.code, 2)
})
