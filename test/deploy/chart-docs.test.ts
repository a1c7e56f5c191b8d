/**
 * The chart's documentation and metadata stay in step with its values: the README lists every
 * value, values.schema.json knows every value, and the chart's appVersion is the package version.
 * Needs no Helm.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { chartDir, repoRoot } from './helm.js'

const values = parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>
const readme = readFileSync(join(chartDir, 'README.md'), 'utf8')
const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as Schema
const chart = parseYaml(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as Record<string, unknown>
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }

interface Schema {
  type?: string | string[]
  properties?: Record<string, Schema>
  additionalProperties?: boolean | Schema
}

// Values documented as a whole (Kubernetes objects passed through as they are).
const wholes = new Set([
  'podSecurityContext',
  'securityContext',
  'resources',
  'redis.resources',
  'startupProbe',
  'livenessProbe',
  'readinessProbe',
  'strategy',
])

function leaves(obj: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) => {
    const key = prefix + k
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0 && !wholes.has(key)) {
      return leaves(v as Record<string, unknown>, `${key}.`)
    }
    return [key]
  })
}

const keys = leaves(values)

t.test('the chart README lists every value', async (t) => {
  const rows = new Set([...readme.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]))
  for (const key of keys) t.ok(rows.has(key), `README row for ${key}`)
  for (const row of rows) {
    const known = keys.includes(row!) || keys.some((k) => k.startsWith(`${row}.`))
    t.ok(known, `README row ${row} is a value`)
  }
})

t.test('values.schema.json describes every value and rejects unknown ones', async (t) => {
  t.equal(schema.additionalProperties, false, 'unknown top-level values are rejected')
  for (const key of keys) {
    let node: Schema | undefined = schema
    for (const part of key.split('.')) {
      const parent: Schema = node!
      node = parent.properties?.[part]
      if (!node && typeof parent.additionalProperties === 'object') node = parent.additionalProperties
      if (!node && parent.additionalProperties !== false && parent.type === 'object') node = { type: 'object' } // free-form below
      if (!node) break
    }
    t.ok(node, `schema has ${key}`)
  }
  const objects: [string, Schema][] = []
  const walk = (s: Schema, path: string) => {
    if (s.properties) objects.push([path, s])
    for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, path ? `${path}.${k}` : k)
  }
  walk(schema, '')
  for (const [path, s] of objects) {
    if (path === 'config' || path.startsWith('config.') || path.endsWith('.items')) continue
    t.equal(s.additionalProperties, false, `${path || '(top)'} rejects unknown keys`)
  }
})

t.test('Chart.yaml', async (t) => {
  t.equal(chart.apiVersion, 'v2')
  t.equal(chart.name, 'gatehouse')
  t.equal(chart.appVersion, pkg.version, 'appVersion is the package.json version (the default image tag)')
  t.match(chart.version, /^\d+\.\d+\.\d+/, 'version is SemVer')
  t.match(chart.kubeVersion, />=1\.29/, 'kubeVersion is the oldest Kubernetes the tests render for')
})
