/**
 * What the chart promises, asserted on `helm template` output: the restricted security settings,
 * the memory store's refusal of several replicas, Secrets (chart-made or existing) kept out of
 * the ConfigMap, checksum annotations that roll the pods only for what a reload cannot apply
 * (issue 17), and the install notes.
 */
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import {
  ciValuesFiles,
  find,
  helmOrSkip,
  mustFind,
  render,
  renderNotes,
  renderRaw,
  type K8sObject,
} from './helm.js'
import { RESTART_ONLY } from '../../src/config/restart-only.js'
import { validateObject } from './kube-schema.js'
import { repoPath } from '../helpers/repo.js'

const helmPath = helmOrSkip(t)

const minimal = {
  config: {
    publicUrl: 'https://mcp.example.com',
    resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://files-mcp:3000/mcp' }],
  },
}
const withRedis = { ...minimal, store: { type: 'redis', redis: { url: 'redis://redis:6379/0' } } }

type Pod = { spec: K8sObject['spec']; metadata?: K8sObject['metadata'] }
const podOf = (d: K8sObject): Pod => d.spec.template as Pod
const gateway = (objects: K8sObject[]) => mustFind(objects, 'Deployment', 'gh-gatehouse')
const container = (d: K8sObject) => podOf(d).spec.containers[0]

/** The rules of the Pod Security Standard "restricted" profile (Kubernetes docs, v1.29+). */
function restrictedViolations(pod: Pod): string[] {
  const v: string[] = []
  const spec = pod.spec
  const psc = spec.securityContext ?? {}
  for (const k of ['hostNetwork', 'hostPID', 'hostIPC']) if (spec[k]) v.push(`${k} is set`)
  const allowedVolumes = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']
  for (const vol of spec.volumes ?? []) {
    const type = Object.keys(vol).find((k) => k !== 'name')
    if (!allowedVolumes.includes(type ?? '')) v.push(`volume ${vol.name} is ${type}`)
  }
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    const sc = c.securityContext ?? {}
    const at = `container ${c.name}`
    if (sc.privileged) v.push(`${at} is privileged`)
    if (sc.allowPrivilegeEscalation !== false) v.push(`${at} allows privilege escalation`)
    if (!(sc.runAsNonRoot ?? psc.runAsNonRoot)) v.push(`${at} may run as root`)
    if ((sc.runAsUser ?? psc.runAsUser) === 0) v.push(`${at} runs as uid 0`)
    const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') v.push(`${at} has seccomp ${seccomp}`)
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) v.push(`${at} does not drop ALL capabilities`)
    for (const cap of sc.capabilities?.add ?? []) if (cap !== 'NET_BIND_SERVICE') v.push(`${at} adds ${cap}`)
    for (const p of c.ports ?? []) if (p.hostPort) v.push(`${at} uses hostPort ${p.hostPort}`)
  }
  return v
}

t.test('the schema validator catches unknown fields and wrong types', async (t) => {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'x', labels: { a: 'b' } },
    spec: {
      selector: { matchLabels: { a: 'b' } },
      template: {
        metadata: { labels: { a: 'b' } },
        spec: { containers: [{ name: 'c', image: 'i', readinesProbe: {}, ports: [{ containerPort: 'x' }] }] },
      },
    },
  }
  const problems = await validateObject(deployment)
  t.match(problems.join('\n'), /unknown field spec\.template\.spec\.containers\[0\]\.readinesProbe/, 'a misspelt field')
  t.match(problems.join('\n'), /containerPort must be integer/, 'a wrong type')
  t.same(await validateObject({ ...deployment, spec: { ...deployment.spec, template: { ...deployment.spec.template, spec: { containers: [{ name: 'c', image: 'i' }] } } } }), [], 'and passes a correct object')
})

if (helmPath) {
  t.test('every values file: restricted pod security, probes, resources, graceful shutdown', async (t) => {
    for (const file of ciValuesFiles()) {
      const objects = render(helmPath, { files: [file] })
      for (const d of objects.filter((o) => o.kind === 'Deployment')) {
        t.same(restrictedViolations(podOf(d)), [], `${file}: ${d.metadata.name} meets the restricted Pod Security Standard`)
        const c = container(d)
        t.equal(c.securityContext.readOnlyRootFilesystem, true, `${file}: ${d.metadata.name} has a read-only root filesystem`)
        t.equal(podOf(d).spec.automountServiceAccountToken, false, `${file}: ${d.metadata.name} mounts no API token`)
        t.ok(c.resources?.requests && c.resources?.limits?.memory, `${file}: ${d.metadata.name} has requests and a memory limit`)
      }
      const g = gateway(objects)
      const c = container(g)
      t.equal(podOf(g).spec.securityContext.seccompProfile.type, 'RuntimeDefault', `${file}: seccomp RuntimeDefault`)
      t.same(c.securityContext.capabilities.drop, ['ALL'], `${file}: drops ALL capabilities`)
      t.equal(c.securityContext.allowPrivilegeEscalation, false, `${file}: no privilege escalation`)
      t.equal(c.securityContext.runAsNonRoot, true, `${file}: runAsNonRoot`)
      const tmp = c.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp')
      t.ok(tmp, `${file}: /tmp is a writable emptyDir`)
      t.ok(
        podOf(g).spec.volumes.find((v: { name: string; emptyDir?: unknown }) => v.name === tmp?.name)?.emptyDir,
        `${file}: /tmp is an emptyDir`,
      )
      t.match(c.livenessProbe, { httpGet: { path: '/healthz', port: 'http' } }, `${file}: liveness on /healthz`)
      t.match(c.readinessProbe, { httpGet: { path: '/readyz', port: 'http' } }, `${file}: readiness on /readyz`)
      t.match(c.startupProbe, { httpGet: { path: '/healthz', port: 'http' } }, `${file}: startup on /healthz`)
      const config = mustFind(objects, 'ConfigMap').data['gatehouse.yaml'] as string
      const grace = Number(/graceSeconds: (\d+)/.exec(config)?.[1] ?? 10)
      const preStop = Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? 0)
      t.ok(
        podOf(g).spec.terminationGracePeriodSeconds > grace + preStop,
        `${file}: terminationGracePeriodSeconds ${podOf(g).spec.terminationGracePeriodSeconds} > preStop ${preStop} + shutdown.graceSeconds ${grace}`,
      )
      t.same(c.args, ['serve', '--config', '/etc/gatehouse/gatehouse.yaml'], `${file}: serve with the config file`)
      t.equal(c.volumeMounts.find((m: { name: string }) => m.name === 'config')?.readOnly, true, `${file}: config mounted read-only`)
    }
  })

  t.test('the memory store refuses more than one pod, with a message that says why', async (t) => {
    const two = renderRaw(helmPath, { values: { ...minimal, replicaCount: 2 } })
    t.not(two.status, 0, 'replicaCount 2 with store.type memory fails')
    t.match(two.stderr, /replicaCount is 2, but store\.type is memory/, 'naming both values')
    t.match(two.stderr, /inside one process/, 'saying why')
    t.match(two.stderr, /store\.type=redis/, 'and what to do')
    const hpa = renderRaw(helmPath, { values: { ...minimal, autoscaling: { enabled: true } } })
    t.not(hpa.status, 0, 'autoscaling with store.type memory fails')
    t.match(hpa.stderr, /autoscaling\.enabled is true, but store\.type is memory/)
    const unused = renderRaw(helmPath, { values: { ...minimal, redis: { enabled: true } } })
    t.match(unused.stderr, /redis\.enabled deploys a Redis, but store\.type is memory/, 'an in-chart Redis the memory store would not use')
    t.doesNotThrow(() => render(helmPath, { values: { ...withRedis, replicaCount: 3 } }), 'three replicas with Redis render')
    t.doesNotThrow(() => render(helmPath, { values: { ...withRedis, autoscaling: { enabled: true } } }), 'autoscaling with Redis renders')
    t.doesNotThrow(() => render(helmPath, { values: { ...minimal, replicaCount: 1 } }), 'one replica with memory renders')
  })

  t.test('other values the chart refuses, each with its reason', async (t) => {
    const cases: [string, unknown, RegExp][] = [
      ['config.listen set by hand', { ...minimal, config: { ...minimal.config, listen: { port: 1 } } }, /config\.listen is written by the chart/],
      ['config.store set by hand', { ...minimal, config: { ...minimal.config, store: { type: 'redis' } } }, /config\.store is written by the chart/],
      ['credentials in the Redis URL', { ...withRedis, store: { type: 'redis', redis: { url: 'redis://:pw@redis:6379' } } }, /must not contain credentials/],
      ['Redis without a URL', { ...minimal, store: { type: 'redis' } }, /set store\.redis\.url/],
      ['a key file that is not in the Secret', { ...minimal, signingKeys: { keys: [{ file: 'k.pem', active: true }] } }, /signingKeys\.files has no such entry/],
      ['too short a termination grace period', { ...minimal, terminationGracePeriodSeconds: 12 }, /must be above preStopSleepSeconds/],
      ['a ServiceMonitor without metrics', { ...minimal, metrics: { serviceMonitor: { enabled: true } } }, /needs metrics\.enabled=true/],
      ['sentinels without a master name', { ...withRedis, store: { type: 'redis', redis: { url: 'redis://g/0', sentinels: [{ host: 's', port: 26379 }] } } }, /needs store\.redis\.sentinelMasterName/],
      ['sentinels and cluster nodes', { ...withRedis, store: { type: 'redis', redis: { url: 'redis://g/0', sentinels: [{ host: 's', port: 26379 }], sentinelMasterName: 'g', clusterNodes: [{ host: 'c', port: 6379 }] } } }, /sentinels .* or store\.redis\.clusterNodes .*not both/],
      ['two Redis password sources', { ...withRedis, store: { type: 'redis', redis: { url: 'redis://r:6379', password: 'a', passwordSecret: { name: 's', key: 'k' } } } }, /not both/],
    ]
    for (const [what, values, message] of cases) {
      const r = renderRaw(helmPath, { values })
      t.not(r.status, 0, `${what}: the render fails`)
      t.match(r.stderr, message, `${what}: ${message}`)
    }
  })

  t.test('existing Secrets: referenced, and the chart makes no Secret of its own', async (t) => {
    const objects = render(helmPath, { files: ['production-values.yaml'] })
    t.notOk(find(objects, 'Secret'), 'no chart Secret when every secret comes from existing Secrets')
    const g = gateway(objects)
    const c = container(g)
    t.match(
      c.env.find((e: { name: string }) => e.name === 'REDIS_PASSWORD'),
      { valueFrom: { secretKeyRef: { name: 'gatehouse-redis', key: 'password' } } },
      'REDIS_PASSWORD from store.redis.passwordSecret',
    )
    t.same(c.envFrom, [{ secretRef: { name: 'gatehouse-env' } }], 'secretEnv.existingSecret as environment')
    const sources = podOf(g).spec.volumes.find((v: { name: string }) => v.name === 'config').projected.sources
    t.same(
      sources.find((s: { secret?: { name: string } }) => s.secret?.name === 'gatehouse-signing-keys')?.secret.items,
      [
        { key: 'es256-2026-11.pem', path: 'keys/es256-2026-11.pem' },
        { key: 'es256-2026-08.pem', path: 'keys/es256-2026-08.pem' },
      ],
      'signing keys from signingKeys.existingSecret, mounted in /etc/gatehouse/keys/',
    )
    t.ok(sources.find((s: { secret?: { name: string } }) => s.secret?.name === 'redis-ca'), 'the Redis CA from its Secret')
    const config = mustFind(objects, 'ConfigMap').data['gatehouse.yaml'] as string
    t.match(config, 'url: rediss://gatehouse:${REDIS_PASSWORD}@redis.example.com:6380/0', 'the URL refers to the password')
    t.match(config, 'file: /etc/gatehouse/keys/es256-2026-11.pem', 'config.keys points at the mounted files')
    t.match(config, 'caFile: /etc/gatehouse/redis-ca/ca.crt', 'and at the mounted CA')
  })

  t.test("the chart's own Secret: values kept out of the ConfigMap", async (t) => {
    const objects = render(helmPath, { files: ['inchart-redis-values.yaml'] })
    const secret = mustFind(objects, 'Secret', 'gh-gatehouse')
    t.same(Object.keys(secret.data).sort(), ['DEMO_CLIENT_SECRET', 'REDIS_PASSWORD', 'es256-trial.pem'], 'holds the key, the env value, the Redis password')
    t.equal(Buffer.from(secret.data.REDIS_PASSWORD, 'base64').toString(), 'ci-only-redis-password')
    const config = mustFind(objects, 'ConfigMap').data['gatehouse.yaml'] as string
    for (const secretValue of ['ci-only-redis-password', 'ci-only-client-secret', 'NOT-A-KEY']) {
      t.notMatch(config, secretValue, `${secretValue} is not in the ConfigMap`)
    }
    const c = container(gateway(objects))
    t.match(c.env.find((e: { name: string }) => e.name === 'DEMO_CLIENT_SECRET'), { valueFrom: { secretKeyRef: { name: 'gh-gatehouse', key: 'DEMO_CLIENT_SECRET' } } })
    const redis = mustFind(objects, 'Deployment', 'gh-gatehouse-redis')
    t.match(container(redis).args, ['--save', '', '--appendonly', 'no', '--maxmemory', '96mb', '--maxmemory-policy', 'volatile-ttl', '--requirepass', '$(REDIS_PASSWORD)'], 'Redis takes its password from the Secret')
    t.match(config, 'url: redis://:${REDIS_PASSWORD}@gh-gatehouse-redis:6379/0', 'Gatehouse reaches the in-chart Redis')
    const generated = render(helmPath, { values: { ...minimal, store: { type: 'redis' }, redis: { enabled: true } } })
    t.match(Buffer.from(mustFind(generated, 'Secret').data.REDIS_PASSWORD, 'base64').toString(), /^[A-Za-z0-9]{32}$/, 'a random password when none is given')
  })

  t.test('a config change reloads live; only restart-only settings and the Secret roll the pods (issue 17)', async (t) => {
    const sums = (values: unknown) => {
      const objects = render(helmPath, { values })
      const a = podOf(gateway(objects)).metadata!.annotations
      return { config: a['checksum/restart-config'] as string, secret: a['checksum/secret'] as string, all: a, objects }
    }
    const secretEnv = { values: { A: '1' } }
    const base = sums({ ...minimal, secretEnv })
    t.match(base.config, /^[0-9a-f]{64}$/, 'checksum/restart-config is a sha256')
    t.match(base.secret, /^[0-9a-f]{64}$/, 'checksum/secret is a sha256')
    t.notOk('checksum/config' in base.all, 'no checksum of the whole config: a policy change must not roll the pods')
    const again = sums({ ...minimal, secretEnv })
    t.same([again.config, again.secret], [base.config, base.secret], 'the same values give the same checksums')
    const policy = { rules: [{ method: 'tools/call', name: 'delete_*', action: 'deny' }] }
    const live = sums({
      ...minimal,
      config: { ...minimal.config, resources: [{ ...minimal.config.resources[0], policy }], clients: [{ clientId: 'app', name: 'App', redirectUris: ['https://app.example/cb'] }] },
      secretEnv,
    })
    t.not(
      mustFind(live.objects, 'ConfigMap').data['gatehouse.yaml'],
      mustFind(base.objects, 'ConfigMap').data['gatehouse.yaml'],
      'a policy and client change changes the ConfigMap',
    )
    t.same([live.config, live.secret], [base.config, base.secret], 'but rolls nothing: the pods reload it')
    const logChanged = sums({ ...minimal, config: { ...minimal.config, log: { level: 'debug' } }, secretEnv })
    t.not(logChanged.config, base.config, 'a restart-only setting (log) changes checksum/restart-config')
    t.equal(logChanged.secret, base.secret, 'but not checksum/secret')
    t.not(sums({ ...withRedis, secretEnv }).config, base.config, 'so does the store the chart writes')
    const secretChanged = sums({ ...minimal, secretEnv: { values: { A: '2' } } })
    t.not(secretChanged.secret, base.secret, 'a Secret change changes checksum/secret')
    t.equal(secretChanged.config, base.config, 'but not checksum/restart-config')
    const two = sums({ ...withRedis, replicaCount: 2, secretEnv })
    const three = sums({ ...withRedis, replicaCount: 3, secretEnv })
    t.same([two.config, two.secret], [three.config, three.secret], 'scaling alone does not roll the pods')

    const helpers = await readFile(repoPath('helm/gatehouse/templates/_helpers.tpl'), 'utf8')
    const picked = /toYaml \(pick \$cfg ((?:"[A-Za-z]+" ?)+)\)/.exec(helpers)?.[1]?.match(/[A-Za-z]+/g)
    t.same([...(picked ?? [])].sort(), [...RESTART_ONLY].sort(), "the chart's restart-only settings are the gateway's")
    const mount = container(gateway(base.objects)).volumeMounts.find((m: { name: string }) => m.name === 'config')
    t.match(mount, { mountPath: '/etc/gatehouse' }, 'the config volume is mounted as a directory')
    t.notOk(mount && 'subPath' in mount, 'without subPath: the kubelet updates only such mounts')
  })

  t.test("clusterWorkloads: the cluster's issuer in the config, its JWKS ConfigMap mounted where the config says (WIF-02)", async (t) => {
    const objects = render(helmPath, { files: ['production-values.yaml'] })
    const config = parseYaml(mustFind(objects, 'ConfigMap').data['gatehouse.yaml'] as string) as {
      workloadIdentity?: { issuers: { id: string; issuer: string; jwksFile: string; rules: unknown[] }[] }
    }
    const cluster = config.workloadIdentity?.issuers.find((i) => i.id === 'cluster')
    t.match(cluster, { issuer: 'https://kubernetes.default.svc.cluster.local', jwksFile: '/etc/gatehouse/cluster-jwks/jwks.json' })
    t.equal(cluster?.rules.length, 1, 'the rules from the values')
    const pod = mustFind(objects, 'Deployment').spec.template.spec
    const sources = pod.volumes.find((v: { name: string }) => v.name === 'config').projected.sources as Record<string, any>[]
    t.same(sources.find((s) => s.configMap?.name === 'cluster-jwks')?.configMap.items, [{ key: 'jwks.json', path: 'cluster-jwks/jwks.json' }])
    t.equal(pod.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'config').mountPath, '/etc/gatehouse', 'under the config directory')
    const off = render(helmPath, { files: ['minimal-values.yaml'] })
    t.notMatch(mustFind(off, 'ConfigMap').data['gatehouse.yaml'], /workloadIdentity/, 'off by default')
  })

  t.test('Ingress, HPA, PDB, NetworkPolicy and ServiceMonitor', async (t) => {
    const prod = render(helmPath, { files: ['production-values.yaml'] })
    const ingress = mustFind(prod, 'Ingress')
    t.same(ingress.spec.tls, [{ hosts: ['mcp.example.com'], secretName: 'mcp-example-com-tls' }], 'Ingress TLS')
    t.match(ingress.spec.rules, [{ host: 'mcp.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'gh-gatehouse', port: { name: 'http' } } } }] } }], 'the host of config.publicUrl by default')
    t.equal(ingress.spec.ingressClassName, 'nginx')
    t.equal(gateway(prod).spec.replicas, 3)
    t.match(mustFind(prod, 'PodDisruptionBudget').spec, { maxUnavailable: 1 }, 'a PDB with several replicas')
    const np = mustFind(prod, 'NetworkPolicy')
    t.same(np.spec.policyTypes, ['Ingress', 'Egress'])
    const egressPorts = np.spec.egress.flatMap((r: { ports: { port: number }[] }) => r.ports.map((p) => p.port)).sort((a: number, b: number) => a - b)
    t.same([...new Set(egressPorts)], [53, 443, 3000, 6380, 8443], 'egress: DNS, HTTPS, the upstream ports, the Redis port')
    t.match(np.spec.ingress[0], { ports: [{ port: 'http' }], from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }] })
    const sm = mustFind(prod, 'ServiceMonitor')
    t.match(sm.spec.endpoints, [{ port: 'metrics', path: '/metrics' }], 'the ServiceMonitor scrapes the metrics port')
    t.equal(sm.metadata.labels.release, 'kube-prometheus-stack')
    t.match(mustFind(prod, 'Service').spec.ports, [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'metrics', port: 9464 }])

    const auto = render(helmPath, { files: ['autoscaling-values.yaml'] })
    const hpa = mustFind(auto, 'HorizontalPodAutoscaler')
    t.match(hpa.spec, { minReplicas: 2, maxReplicas: 8, scaleTargetRef: { kind: 'Deployment', name: 'gh-gatehouse' } })
    t.equal(hpa.spec.metrics.length, 2, 'CPU and memory targets')
    t.notOk('replicas' in gateway(auto).spec, 'the HPA owns the replica count')
    t.ok(find(auto, 'PodDisruptionBudget'), 'a PDB when the HPA keeps at least two pods')

    // The release's own objects; the `helm test` Pod is a hook (chart-spread-and-test.test.ts).
    const small = render(helmPath, { values: minimal, args: ['--no-hooks'] })
    t.same(small.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'Service', 'ServiceAccount'], 'the smallest install: four objects')
    t.equal(gateway(small).spec.replicas, 1)
    t.equal(podOf(gateway(small)).spec.terminationGracePeriodSeconds, 30, 'default grace period: 5 + 10 + 15')
  })

  t.test('NOTES.txt gives the public URLs and next steps', async (t) => {
    const notes = renderNotes(helmPath, { files: ['minimal-values.yaml'] })
    t.match(notes, 'MCP endpoint (give this URL to MCP clients): https://mcp.example.com/mcp')
    t.match(notes, 'Protected resource metadata:                 https://mcp.example.com/.well-known/oauth-protected-resource/mcp')
    t.match(notes, 'Authorization server metadata: https://mcp.example.com/.well-known/oauth-authorization-server')
    t.match(notes, 'kubectl -n gatehouse rollout status deployment/gh-gatehouse')
    t.match(notes, 'WARNING: store.type is memory')
    t.match(notes, 'WARNING: no signing keys')
    const prod = renderNotes(helmPath, { files: ['production-values.yaml'] })
    t.match(prod, 'https://mcp.example.com/files/mcp')
    t.match(prod, 'https://mcp.example.com/.well-known/oauth-protected-resource/tickets/mcp')
    t.notMatch(prod, 'WARNING', 'no warnings for the production values')
    t.match(prod, 'rollout restart', 'a reminder to roll after changing Secrets you manage')
    const ext = renderNotes(helmPath, { files: ['external-issuer-values.yaml'] })
    t.match(ext, 'Authorization server: https://login.example.net/realms/main (external')
    t.notMatch(ext, 'no signing keys', 'no signing-key warning in external issuer mode')
  })
}
