/**
 * Sentinels that require a password of their own (issue 16): store.redis.sentinelPasswordSecret
 * injects it from a Secret the operator manages as SENTINEL_PASSWORD, and the rendered
 * configuration refers to it, so it appears in neither the values nor the ConfigMap. The chart
 * refuses it without sentinels, and refuses a secretEnv value of the same name.
 */
import t from 'tap'
import { loadConfigText } from '../../src/config/load.js'
import { helmOrSkip, mustFind, render, renderRaw, type K8sObject } from './helm.js'
import { validateAll } from './kube-schema.js'

const helmPath = helmOrSkip(t)

const env = (objects: K8sObject[]) => mustFind(objects, 'Deployment', 'gh-gatehouse').spec.template.spec.containers[0].env as { name: string; valueFrom?: unknown }[]
const configText = (objects: K8sObject[]) => mustFind(objects, 'ConfigMap').data['gatehouse.yaml'] as string
const secrets = { REDIS_PASSWORD: 'data-pw', SENTINEL_PASSWORD: 'sentinel-pw' }

if (helmPath) {
  t.test('store.redis.sentinelPasswordSecret: SENTINEL_PASSWORD from the Secret, ${SENTINEL_PASSWORD} in the config', async (t) => {
    const objects = render(helmPath, { files: ['sentinel-values.yaml'] })
    t.same(await validateAll(objects), [], 'valid Kubernetes objects')
    t.same(
      env(objects).find((e) => e.name === 'SENTINEL_PASSWORD'),
      { name: 'SENTINEL_PASSWORD', valueFrom: { secretKeyRef: { name: 'gatehouse-redis', key: 'sentinel-password' } } },
      'injected from the operator\'s Secret',
    )
    t.match(configText(objects), /sentinelPassword: \$\{SENTINEL_PASSWORD\}/)
    const config = loadConfigText(configText(objects), 'rendered', secrets)
    t.equal(config.store.redis?.sentinelPassword, 'sentinel-pw', 'the gateway reads the sentinels\' password from the Secret')
    t.match(config.store.redis?.url, /:data-pw@/, 'and the data nodes\' password stays in the URL')
  })

  t.test('without it: no SENTINEL_PASSWORD and no sentinelPassword (open sentinels)', async (t) => {
    const objects = render(helmPath, { files: ['sentinel-values.yaml'], values: { store: { redis: { sentinelPasswordSecret: { name: '' } } } } })
    t.notOk(env(objects).some((e) => e.name === 'SENTINEL_PASSWORD'))
    t.notMatch(configText(objects), /sentinelPassword/)
    t.equal(loadConfigText(configText(objects), 'rendered', secrets).store.redis?.sentinelPassword, undefined)
  })

  t.test('store.redis.sentinelPasswordSecret refuses what would contradict it', async (t) => {
    const cases: [string, string[], unknown, RegExp][] = [
      ['without sentinels', ['cluster-values.yaml'], { store: { redis: { sentinelPasswordSecret: { name: 's', key: 'k' } } } }, /needs store\.redis\.sentinels/],
      ['and secretEnv SENTINEL_PASSWORD', ['sentinel-values.yaml'], { secretEnv: { values: { SENTINEL_PASSWORD: 'x' } } }, /clashes with store\.redis\.sentinelPasswordSecret/],
      ['an unknown key in it', ['sentinel-values.yaml'], { store: { redis: { sentinelPasswordSecret: { name: 'a', key: 'b', nmae: 'c' } } } }, /'nmae' not allowed/],
    ]
    for (const [what, files, values, message] of cases) {
      const r = renderRaw(helmPath, { files, values })
      t.not(r.status, 0, `${what}: refused`)
      t.match(r.stderr, message, `${what}: says why`)
    }
  })
}
