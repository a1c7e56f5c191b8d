/**
 * The Helm chart turns the gateway's metrics listener on with `metrics.enabled`, on the same
 * port and path the Service, NetworkPolicy and ServiceMonitor use, and owns the `metrics` part of
 * the configuration. Uses the real Helm (skips without it, like the other chart suites).
 */
import t from 'tap'
import { loadConfigText } from '../../src/config/load.js'
import { helmOrSkip, mustFind, render, renderRaw } from '../deploy/helm.js'

const helmPath = helmOrSkip(t)
const minimal = {
  config: {
    publicUrl: 'https://mcp.example.com',
    resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://files-mcp:3000/mcp' }],
  },
}

if (helmPath) {
  const gatewayConfig = (values: unknown) => {
    const objects = render(helmPath, { values })
    const text = mustFind(objects, 'ConfigMap').data['gatehouse.yaml'] as string
    return { objects, config: loadConfigText(text, 'rendered ConfigMap') }
  }

  t.test('metrics off (the default): the gateway runs no metrics listener', async (t) => {
    const { config } = gatewayConfig(minimal)
    t.equal(config.metrics.enabled, false)
  })

  t.test('metrics.enabled: the gateway listens on metrics.port and metrics.path, which the pod and Service expose', async (t) => {
    const { objects, config } = gatewayConfig({ ...minimal, metrics: { enabled: true, port: 9500, path: '/internal/metrics' } })
    t.same(config.metrics, { enabled: true, listen: { host: '0.0.0.0', port: 9500 }, path: '/internal/metrics' })
    const container = mustFind(objects, 'Deployment').spec.template.spec.containers[0]
    t.match(container.ports, [{ name: 'http', containerPort: 8080 }, { name: 'metrics', containerPort: 9500 }])
    t.match(mustFind(objects, 'Service').spec.ports, [{ name: 'http' }, { name: 'metrics', port: 9500, targetPort: 'metrics' }])
    const sm = render(helmPath, { values: { ...minimal, metrics: { enabled: true, path: '/internal/metrics', serviceMonitor: { enabled: true } } } })
    t.match(mustFind(sm, 'ServiceMonitor').spec.endpoints, [{ port: 'metrics', path: '/internal/metrics' }], 'the ServiceMonitor scrapes that path')
  })

  t.test('the chart owns config.metrics, and keeps it off the main port', async (t) => {
    const owned = renderRaw(helmPath, { values: { ...minimal, config: { ...minimal.config, metrics: { enabled: true } } } })
    t.not(owned.status, 0)
    t.match(owned.stderr, /config\.metrics is written by the chart.*metrics\.enabled, metrics\.port and metrics\.path/)
    const clash = renderRaw(helmPath, { values: { ...minimal, metrics: { enabled: true, port: 8080 } } })
    t.not(clash.status, 0)
    t.match(clash.stderr, /metrics\.port \(8080\) must differ from containerPort/)
  })
}
