/**
 * The chart checks `config` against Gatehouse's own configuration schema (values.schema.json,
 * written by `npm run schema`), so a bad configuration fails `helm template/install` instead of
 * crash-looping the pods; `${NAME}` references still pass where the gateway would accept them.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadConfigText } from '../../src/config/load.js'
import { HELM_VALUES_SCHEMA_FILE, helmValuesSchemaText } from '../../src/config/write-schema.js'
import { chartDir, helmOrSkip, mustFind, render, renderRaw } from './helm.js'

t.test('values.schema.json holds the current configuration schema (run `npm run schema`)', async (t) => {
  const current = readFileSync(HELM_VALUES_SCHEMA_FILE, 'utf8')
  t.equal(current, helmValuesSchemaText(current), 'properties.config is in sync with src/config/schema.ts')
  t.equal(HELM_VALUES_SCHEMA_FILE, join(chartDir, 'values.schema.json'))
})

const helmPath = helmOrSkip(t)

const base = {
  publicUrl: 'https://mcp.example.com',
  resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://files-mcp:3000/mcp' }],
}

if (helmPath) {
  t.test('a misspelled key in config fails helm template, naming it', async (t) => {
    const nested = renderRaw(helmPath, { values: { config: { ...base, resources: [{ ...base.resources[0], upstreem: 'http://x:1/mcp' }] } } })
    t.not(nested.status, 0, 'nested misspelling refused')
    t.match(nested.stderr, /\/config\/resources\/0.*'upstreem' not allowed/, 'the key and where it is')
    const top = renderRaw(helmPath, { values: { config: { ...base, registraton: { enabled: true } } } })
    t.not(top.status, 0, 'top-level misspelling refused')
    t.match(top.stderr, /'registraton' not allowed/)
  })

  t.test('wrong values fail the render: a bad URL, a wrong type, an unknown enum value', async (t) => {
    for (const [what, config, message] of [
      ['bad upstream', { ...base, resources: [{ ...base.resources[0], upstream: 'htp//bad url' }] }, /\/config\/resources\/0\/upstream/],
      ['port as text', { ...base, accessTokens: { ttlSeconds: 'five minutes' } }, /\/config\/accessTokens\/ttlSeconds/],
      ['log level', { ...base, log: { level: 'loud' } }, /\/config\/log\/level/],
    ] as const) {
      const r = renderRaw(helmPath, { values: { config } })
      t.not(r.status, 0, `${what}: refused`)
      t.match(r.stderr, message, `${what}: the path named`)
    }
  })

  t.test('${NAME} references pass where the gateway substitutes them before validating', async (t) => {
    const config = {
      ...base,
      log: { level: '${LOG_LEVEL}' },
      resources: [{ ...base.resources[0], upstream: '${UPSTREAM_URL}' }],
      clients: [
        { clientId: 'ci-bot', name: 'CI bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', secret: '${CI_BOT_SECRET}' },
      ],
    }
    const objects = render(helmPath, { values: { config } })
    const text = mustFind(objects, 'ConfigMap').data['gatehouse.yaml'] as string
    const env = { LOG_LEVEL: 'debug', UPSTREAM_URL: 'http://files-mcp:3000/mcp', CI_BOT_SECRET: 'x'.repeat(40) }
    t.doesNotThrow(() => loadConfigText(text, 'rendered', env), 'and the gateway accepts the rendered file once they are set')
  })

  t.test('keys the chart writes still get the chart\'s own message', async (t) => {
    const r = renderRaw(helmPath, { values: { config: { ...base, store: { type: 'memory' } } } })
    t.not(r.status, 0)
    t.match(r.stderr, /config\.store is written by the chart; use the chart values instead/)
  })
}
