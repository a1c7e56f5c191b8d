/**
 * The Helm chart with the real Helm: `helm lint`, and `helm template` with every values file of
 * helm/gatehouse/ci/, each object validated against the Kubernetes API schemas, and the rendered
 * gatehouse.yaml accepted by the gateway's own config loader.
 */
import t from 'tap'
import { ConfigError, loadConfigText } from '../../src/config/load.js'
import { chartDir, ciValuesFiles, helm, helmOrSkip, mustFind, render } from './helm.js'
import { validateAll } from './kube-schema.js'

const helmPath = helmOrSkip(t)

// Values of the ${NAME} references the chart writes into the config (Secrets in a cluster).
const secretEnv = { REDIS_PASSWORD: 'test-password', SENTINEL_PASSWORD: 'test-sentinel-password' }

// The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and Helm's default (newest).
const kubeVersions = ['1.29.0', undefined]

if (helmPath) {
  const files = ciValuesFiles()
  t.ok(files.length >= 5, `values files in ci/: ${files.join(', ')}`)

  t.test('helm lint --strict', async (t) => {
    for (const file of files) {
      const r = helm(helmPath, ['lint', chartDir, '--strict', '-f', `${chartDir}/ci/${file}`])
      t.equal(r.status, 0, `lint with ${file}`, { output: r.stdout + r.stderr })
    }
    // Lint mode turns `fail` into a note, so the chart's own defaults lint too.
    const bare = helm(helmPath, ['lint', chartDir, '--strict'])
    t.equal(bare.status, 0, 'lint with the default values', { output: bare.stdout + bare.stderr })
  })

  t.test('without the required values the render fails and says what to set', async (t) => {
    const r = helm(helmPath, ['template', 'gh', chartDir])
    t.not(r.status, 0, 'helm template without values fails')
    t.match(r.stderr, /config\.publicUrl is required/, 'naming config.publicUrl')
    const noResources = helm(helmPath, ['template', 'gh', chartDir, '--set', 'config.publicUrl=https://mcp.example.com'])
    t.match(noResources.stderr, /config\.resources needs at least one MCP endpoint/, 'naming config.resources')
  })

  for (const file of files) {
    for (const kubeVersion of kubeVersions) {
      t.test(`${file}, Kubernetes ${kubeVersion ?? 'default'}: valid objects`, async (t) => {
        const objects = render(helmPath, { files: [file], kubeVersion })
        t.ok(objects.length >= 4, `${objects.length} objects: ${objects.map((o) => o.kind).join(', ')}`)
        t.same(await validateAll(objects), [], 'every object matches the Kubernetes API schema, with no unknown field')
        const names = objects.map((o) => `${o.kind}/${o.metadata.name}`)
        t.equal(new Set(names).size, names.length, 'no two objects share a kind and name')
        for (const o of objects) {
          t.match(o.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${o.kind} name is a DNS label`)
          t.ok(o.metadata.name.length <= 63, `${o.kind} name fits 63 characters`)
          if (o.kind !== 'ServiceMonitor') t.equal(o.metadata.namespace, 'gatehouse', `${o.kind} is in the release namespace`)
        }
      })
    }

    t.test(`${file}: the rendered gatehouse.yaml passes the gateway's config loader`, async (t) => {
      const objects = render(helmPath, { files: [file] })
      const text = mustFind(objects, 'ConfigMap').data['gatehouse.yaml'] as string
      try {
        const config = loadConfigText(text, `ConfigMap (${file})`, secretEnv)
        t.equal(config.listen.host, '0.0.0.0', 'listens on every address in the pod')
        t.equal(config.listen.port, 8080, 'on the container port')
        t.notMatch(text, /test-password/, 'no secret value in the ConfigMap')
      } catch (err) {
        if (err instanceof ConfigError) t.fail(err.message, { problems: err.problems })
        else throw err
      }
    })
  }

  t.test('a broken values file is caught by values.schema.json', async (t) => {
    const r = helm(helmPath, ['template', 'gh', chartDir, '-f', `${chartDir}/ci/minimal-values.yaml`, '--set', 'replicaCont=2'])
    t.not(r.status, 0, 'an unknown top-level value fails')
    t.match(r.stderr, /replicaCont/, 'naming it')
    const s = helm(helmPath, ['template', 'gh', chartDir, '-f', `${chartDir}/ci/minimal-values.yaml`, '--set', 'store.type=etcd'])
    t.not(s.status, 0, 'an unknown store type fails')
  })
}
