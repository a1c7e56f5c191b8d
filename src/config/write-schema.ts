/**
 * Writes the published forms of the configuration schema (`npm run schema`):
 * config/gatehouse.schema.json for editors and config/REFERENCE.md for people.
 * A test keeps both in sync with the source.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { helmConfigSchema } from './helm-schema.js'
import { packageFile } from './package-root.js'
import { RESTART_ONLY } from './restart-only.js'
import { jsonSchema } from './schema.js'

export const SCHEMA_FILE = packageFile('config/gatehouse.schema.json')
export const REFERENCE_FILE = packageFile('config/REFERENCE.md')

export const HELM_VALUES_SCHEMA_FILE = packageFile('helm/gatehouse/values.schema.json')

/** The chart's values schema with properties.config replaced by the configuration schema. */
export function helmValuesSchemaText(current: string): string {
  const values = JSON.parse(current) as { properties: Record<string, unknown> }
  values.properties.config = helmConfigSchema()
  return `${JSON.stringify(values, null, 2)}\n`
}

export function schemaFileText(): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...jsonSchema() }, null, 2)}\n`
}

interface Node {
  type?: string | string[]
  description?: string
  default?: unknown
  properties?: Record<string, Node>
  required?: string[]
  items?: Node
  anyOf?: Node[]
  const?: unknown
  minimum?: number
  maximum?: number
}

export function referenceText(): string {
  const rows: string[] = []
  const restartOnly: ReadonlySet<string> = new Set(RESTART_ONLY)
  const walk = (node: Node, path: string, required: boolean) => {
    const meaning = (restartOnly.has(path) ? '*(restart)* ' : '') + (node.description ?? '').replace(/\|/g, '\\|')
    if (path) rows.push(`| \`${path}\` | ${typeOf(node)} | ${required ? 'required' : defaultOf(node)} | ${meaning} |`)
    const object = node.properties ? node : node.items?.properties ? node.items : undefined
    if (object?.properties) {
      const prefix = node.items ? `${path}[]` : path
      for (const [key, child] of Object.entries(object.properties)) {
        if (key === '$schema') continue
        walk(child, prefix ? `${prefix}.${key}` : key, object.required?.includes(key) ?? false)
      }
    }
  }
  walk(jsonSchema() as Node, '', true)
  return [
    '# Configuration reference',
    '',
    'Generated from `src/config/schema.ts` by `npm run schema`; do not edit by hand.',
    'Validate a file with `gatehouse check-config FILE` (every problem in one report, files `serve` reads included); editors can use `gatehouse.schema.json`.',
    'Any string value may contain `${NAME}`, replaced by the environment variable NAME (`$${` for a literal `${`).',
    '`gatehouse serve --config FILE` reloads the file live on SIGHUP and when it changes (README, live configuration reload): an invalid file changes nothing, requests and streams already running keep the configuration they started with.',
    'Settings marked *(restart)*, with everything below them, apply only after a restart: when they change, a reload keeps their running values and logs their names.',
    '',
    '| key | type | default | meaning |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n')
}

function typeOf(node: Node): string {
  if (node.anyOf) return node.anyOf.map((n) => (n.const !== undefined ? JSON.stringify(n.const) : typeOf(n))).join(' \\| ')
  const base = Array.isArray(node.type) ? node.type.join(' \\| ') : (node.type ?? '')
  if (base === 'array' && node.items) return `${node.items.properties ? 'object' : typeOf(node.items)}[]`
  const range = node.minimum !== undefined || node.maximum !== undefined ? ` (${node.minimum ?? ''}…${node.maximum ?? ''})` : ''
  return base + range
}

function defaultOf(node: Node): string {
  if (node.default === undefined) return ''
  if (typeof node.default === 'object' && node.default !== null && Object.keys(node.default).length === 0) return ''
  return `\`${JSON.stringify(node.default)}\``
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(SCHEMA_FILE, schemaFileText())
  await writeFile(REFERENCE_FILE, referenceText())
  await writeFile(HELM_VALUES_SCHEMA_FILE, helmValuesSchemaText(await readFile(HELM_VALUES_SCHEMA_FILE, 'utf8')))
  process.stdout.write(`wrote ${SCHEMA_FILE}\nwrote ${REFERENCE_FILE}\nwrote ${HELM_VALUES_SCHEMA_FILE} (properties.config)\n`)
}
