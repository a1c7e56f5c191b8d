/**
 * Every secret can come from a Secret the operator manages, the Redis URL included
 * (store.redis.urlSecret): the URL never appears in the values, the ConfigMap or the chart's
 * Secret, only as REDIS_URL from a secretKeyRef, and the rendered configuration refers to it.
 */
import t from 'tap'
import { loadConfigText } from '../../src/config/load.js'
import { find, helmOrSkip, mustFind, render, renderRaw, type K8sObject } from './helm.js'
import { validateAll } from './kube-schema.js'

const helmPath = helmOrSkip(t)

const minimal = {
  config: {
    publicUrl: 'https://mcp.example.com',
    resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://files-mcp:3000/mcp' }],
  },
}
const fromSecret = { ...minimal, replicaCount: 3, store: { type: 'redis', redis: { urlSecret: { name: 'managed-redis', key: 'uri' } } } }
const env = (objects: K8sObject[]) => mustFind(objects, 'Deployment', 'gh-gatehouse').spec.template.spec.containers[0].env as { name: string; valueFrom?: unknown }[]

if (helmPath) {
  t.test('store.redis.urlSecret: REDIS_URL from the Secret, ${REDIS_URL} in the config', async (t) => {
    const objects = render(helmPath, { values: { ...fromSecret, networkPolicy: { enabled: true, egress: { enabled: true } } } })
    t.same(await validateAll(objects), [], 'valid Kubernetes objects')
    t.same(
      env(objects).find((e) => e.name === 'REDIS_URL'),
      { name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'managed-redis', key: 'uri' } } },
      'injected from the operator\'s Secret',
    )
    t.notOk(env(objects).some((e) => e.name === 'REDIS_PASSWORD'), 'no separate password: the URL carries it')
    const text = mustFind(objects, 'ConfigMap').data['gatehouse.yaml'] as string
    t.match(text, /url: \$\{REDIS_URL\}/)
    const config = loadConfigText(text, 'rendered', { REDIS_URL: 'rediss://:pw@redis.example.com:6380/0' })
    t.equal(config.store.redis?.url, 'rediss://:pw@redis.example.com:6380/0', 'the gateway reads the URL from the Secret')
    t.notOk(find(objects, 'Secret'), 'no chart Secret is needed for it')
    const egress = mustFind(objects, 'NetworkPolicy', 'gh-gatehouse').spec.egress as { ports?: { port: number }[] }[]
    const ports = egress.flatMap((r) => (r.ports ?? []).map((p) => p.port))
    t.ok(ports.includes(6379) && ports.includes(6380), 'egress to Redis\'s usual ports, since the chart cannot read the URL')
  })

  t.test('store.redis.urlSecret refuses what would contradict it', async (t) => {
    const redis = fromSecret.store.redis
    const cases: [string, unknown, RegExp][] = [
      ['and url', { ...fromSecret, store: { type: 'redis', redis: { ...redis, url: 'redis://r:6379' } } }, /either store\.redis\.url or store\.redis\.urlSecret/],
      ['and a password Secret', { ...fromSecret, store: { type: 'redis', redis: { ...redis, passwordSecret: { name: 'p', key: 'k' } } } }, /carries its own credentials/],
      ['and the in-chart Redis', { ...fromSecret, redis: { enabled: true } }, /not both/],
      ['and secretEnv REDIS_URL', { ...fromSecret, secretEnv: { values: { REDIS_URL: 'redis://x' } } }, /clashes with store\.redis\.urlSecret/],
      ['an unknown key in it', { ...fromSecret, store: { type: 'redis', redis: { urlSecret: { name: 'a', key: 'b', nmae: 'c' } } } }, /'nmae' not allowed/],
    ]
    for (const [what, values, message] of cases) {
      const r = renderRaw(helmPath, { values })
      t.not(r.status, 0, `${what}: refused`)
      t.match(r.stderr, message, `${what}: says why`)
    }
  })

  t.test('every other secret can come from Secrets you manage too: client secrets, signing keys', async (t) => {
    const values = {
      ...fromSecret,
      config: {
        ...minimal.config,
        clients: [{ clientId: 'ci-bot', name: 'CI bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', secret: '${CI_BOT_SECRET}' }],
      },
      secretEnv: { existingSecret: 'gatehouse-client-secrets' },
      extraEnvFrom: [{ secretRef: { name: 'more-secrets' } }],
      signingKeys: { existingSecret: 'gatehouse-signing-keys', keys: [{ file: 'es256.pem', active: true }] },
    }
    const objects = render(helmPath, { values })
    t.same(await validateAll(objects), [], 'valid Kubernetes objects')
    const pod = mustFind(objects, 'Deployment', 'gh-gatehouse').spec.template.spec
    t.same(pod.containers[0].envFrom, [{ secretRef: { name: 'gatehouse-client-secrets' } }, { secretRef: { name: 'more-secrets' } }])
    t.ok(
      JSON.stringify(pod.volumes).includes('"secret":{"name":"gatehouse-signing-keys"'),
      'signing keys mounted from the operator\'s Secret',
    )
    t.notOk(find(objects, 'Secret'), 'nothing secret in a chart-made Secret')
    const text = mustFind(objects, 'ConfigMap').data['gatehouse.yaml'] as string
    t.notMatch(text, /redis:\/\/|BEGIN|[A-Za-z0-9]{32}/, 'no secret in the ConfigMap')
  })
}
