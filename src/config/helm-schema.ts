/**
 * The configuration schema as the Helm chart checks `config` with it (values.schema.json,
 * properties.config), so a bad configuration fails `helm template/install` and not the pods.
 * Helm cannot $ref a file outside values.schema.json, so `npm run schema` writes it there and a
 * test keeps the two in sync. It differs from the gateway's schema where the chart differs:
 * - listen, store, keys and metrics are written by the chart; a value here only has to reach the
 *   chart's own refusal, which says which chart values to use instead.
 * - publicUrl may be "" and resources empty in the chart's defaults; the chart's templates refuse
 *   them with a message naming what to set (and `helm lint` of the bare chart still passes).
 * - any constrained string may be a `${NAME}` reference: the gateway substitutes it from the
 *   container's environment (a Secret) before it validates, so only then can it be checked.
 * - defaults are dropped: Helm does not apply them, and the gateway does.
 */
import { jsonSchema } from './schema.js'

type Node = Record<string, unknown>

const CHART_WRITTEN = ['listen', 'store', 'keys', 'metrics']
const ENV_REFERENCE = { type: 'string', pattern: '\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}' }

export function helmConfigSchema(): Node {
  const schema = loosen(structuredClone(jsonSchema()) as Node)
  const properties = schema.properties as Record<string, Node>
  delete properties.$schema
  for (const key of CHART_WRITTEN) {
    properties[key] = { description: `Written by the chart from its own values; setting config.${key} fails the render.` }
  }
  properties.publicUrl = { anyOf: [{ const: '' }, properties.publicUrl!] }
  delete (properties.resources as Node).minItems
  delete schema.required
  return { ...schema, description: 'The gateway configuration (gatehouse.yaml) without listen, store, keys and metrics.' }
}

function loosen(node: Node): Node {
  delete node.default
  for (const [key, value] of Object.entries(node)) {
    if (key === 'properties' || key === 'patternProperties') {
      for (const [name, child] of Object.entries(value as Record<string, Node>)) (value as Record<string, Node>)[name] = loosen(child)
    } else if (key === 'items' || key === 'if' || key === 'then' || key === 'else' || key === 'additionalProperties') {
      if (isNode(value)) node[key] = loosen(value)
    } else if (key === 'anyOf' || key === 'oneOf' || key === 'allOf') {
      node[key] = (value as Node[]).map((n) => (isNode(n) ? loosen(n) : n))
    }
  }
  return constrainedString(node) ? withEnvReference(node) : node
}

/** A string the gateway constrains, so that `${NAME}` would fail the constraint as written. */
function constrainedString(node: Node): boolean {
  const constraints = ['pattern', 'format', 'minLength', 'maxLength', 'enum']
  if (node.type === 'string' && constraints.some((c) => c in node)) return true
  if (typeof node.const === 'string') return true
  const branches = node.anyOf as Node[] | undefined
  return Array.isArray(branches) && branches.length > 0 && branches.every((b) => typeof b.const === 'string')
}

function withEnvReference(node: Node): Node {
  const { description, ...rest } = node
  return { ...(description !== undefined && { description }), anyOf: [rest, ENV_REFERENCE] }
}

function isNode(value: unknown): value is Node {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
