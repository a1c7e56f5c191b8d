/**
 * Several replicas spread over nodes and zones by default (softly: a small cluster still
 * schedules them), what the operator gives replaces the default, and `helm test` checks a
 * release through its Service without being mistaken for a gateway pod.
 */
import t from 'tap'
import { find, helmOrSkip, mustFind, render, type K8sObject } from './helm.js'
import { validateAll } from './kube-schema.js'

const helmPath = helmOrSkip(t)

const minimal = {
  config: {
    publicUrl: 'https://mcp.example.com/',
    resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://files-mcp:3000/mcp' }],
  },
}
const three = { ...minimal, replicaCount: 3, store: { type: 'redis', redis: { url: 'redis://redis:6379/0' } } }
const selector = { 'app.kubernetes.io/name': 'gatehouse', 'app.kubernetes.io/instance': 'gh', 'app.kubernetes.io/component': 'gateway' }
const podSpec = (objects: K8sObject[]) => mustFind(objects, 'Deployment', 'gh-gatehouse').spec.template.spec
const testPod = (objects: K8sObject[]) => objects.find((o) => o.kind === 'Pod' && o.metadata.annotations?.['helm.sh/hook'] === 'test')

if (helmPath) {
  t.test('three replicas: soft spread over hostname and zone, and a preferred anti-affinity', async (t) => {
    const objects = render(helmPath, { values: three, kubeVersion: '1.29.0' })
    t.same(await validateAll(objects), [], 'valid against the Kubernetes API schema (1.29, the oldest supported)')
    const spec = podSpec(objects)
    t.same(
      spec.topologySpreadConstraints.map((c: { topologyKey: string }) => c.topologyKey),
      ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'],
    )
    for (const c of spec.topologySpreadConstraints) {
      t.match(c, { maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway', matchLabelKeys: ['pod-template-hash'], labelSelector: { matchLabels: selector } })
    }
    t.match(spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution, [
      { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } },
    ])
    t.notOk(spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution, 'never required: two nodes still run three pods')
    const autoscaled = podSpec(render(helmPath, { values: { ...three, replicaCount: 1, autoscaling: { enabled: true } } }))
    t.equal(autoscaled.topologySpreadConstraints.length, 2, 'an autoscaler may add replicas: spread too')
  })

  t.test('one replica, spreadReplicas off, or the operator\'s own rules: no defaults', async (t) => {
    const one = podSpec(render(helmPath, { values: minimal }))
    t.notOk(one.topologySpreadConstraints, 'one replica: nothing to spread')
    t.notOk(one.affinity, 'one replica: no anti-affinity')
    const off = podSpec(render(helmPath, { values: { ...three, spreadReplicas: false } }))
    t.notOk(off.topologySpreadConstraints || off.affinity, 'spreadReplicas: false turns both off')
    const own = podSpec(
      render(helmPath, {
        values: {
          ...three,
          topologySpreadConstraints: [{ maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' }],
          affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['mcp'] }] }] } } },
        },
      }),
    )
    t.match(own.topologySpreadConstraints, [{ maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', labelSelector: { matchLabels: selector } }])
    t.equal(own.topologySpreadConstraints.length, 1, 'the operator\'s constraints replace the defaults')
    t.notOk(own.affinity.podAntiAffinity, 'the operator\'s affinity replaces the default')
  })

  t.test('helm test: a restricted pod that checks /healthz and the metadata through the Service', async (t) => {
    const objects = render(helmPath, { values: { ...three, networkPolicy: { enabled: true, ingressFrom: [{ namespaceSelector: { matchLabels: { ingress: 'yes' } } }] } } })
    t.same(await validateAll(objects), [], 'valid Kubernetes objects')
    const pod = testPod(objects)!
    t.ok(pod, 'a Pod with the helm.sh/hook: test annotation')
    t.match(pod.metadata.annotations['helm.sh/hook-delete-policy'], /before-hook-creation/)
    t.equal(pod.metadata.namespace, 'gatehouse')
    t.not(pod.metadata.labels['app.kubernetes.io/component'], 'gateway', 'not selected by the Service, the PDB or the spread constraints')
    const c = pod.spec.containers[0]
    t.equal(c.image, podSpec(objects).containers[0].image, 'the Gatehouse image: nothing else to pull')
    const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]))
    const service = mustFind(objects, 'Service', 'gh-gatehouse')
    t.equal(env.BASE, `http://gh-gatehouse:${service.spec.ports[0].port}`, 'through the Service')
    t.equal(env.RESOURCE, 'https://mcp.example.com/mcp', 'the resource as RFC 9728 metadata names it')
    t.match(c.command.join(' '), /\/healthz[\s\S]*oauth-protected-resource/)
    t.same(
      { pod: pod.spec.securityContext.runAsNonRoot, escalation: c.securityContext.allowPrivilegeEscalation, drop: c.securityContext.capabilities.drop, token: pod.spec.automountServiceAccountToken },
      { pod: true, escalation: false, drop: ['ALL'], token: false },
      'restricted Pod Security Standard, no API token',
    )
    const policy = mustFind(objects, 'NetworkPolicy', 'gh-gatehouse')
    t.match(policy.spec.ingress[0].from, [{ namespaceSelector: {} }, { podSelector: { matchLabels: { 'app.kubernetes.io/component': 'test' } } }], 'the NetworkPolicy lets it in')
    t.notOk(testPod(render(helmPath, { values: { ...minimal, tests: { enabled: false } } })), 'tests.enabled: false renders none')
    t.notOk(find(render(helmPath, { values: minimal, args: ['--no-hooks'] }), 'Pod'), 'a hook, not part of the release itself')
  })
}
