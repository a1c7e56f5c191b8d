/**
 * Validation of rendered objects against the Kubernetes API schemas, offline.
 *
 * The schemas come from the npm packages kubernetes-models (the core API groups, generated from
 * the Kubernetes OpenAPI document) and @kubernetes-models/prometheus-operator (ServiceMonitor).
 * Their validators check types, formats, enums and required fields, but like the API's OpenAPI
 * document they accept unknown fields, which is how a typo such as `readinesProbe` slips through.
 * So each object is validated through a Proxy that records which properties the validator reads:
 * a validator reads every property its schema knows, and enumerates the keys of free-form maps
 * (labels, data, ...), so a key it neither read nor enumerated is unknown to the API, as
 * `kubectl apply --validate=strict` would report.
 */
import type { K8sObject } from './helm.js'

type ValidateFn = (this: unknown) => void
interface ModelClass {
  prototype: { validate: ValidateFn }
}

/** apiVersion/kind → module exporting the model class (named like the kind). */
function modulePath(apiVersion: string, kind: string): string | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion]
  if (group === 'monitoring.coreos.com') {
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`
  }
  if (!/^[a-z0-9.]*$/.test(group ?? '') || !/^v[0-9a-z]+$/.test(version ?? '') || !/^[A-Z][A-Za-z]+$/.test(kind)) {
    return undefined
  }
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`
}

const models = new Map<string, Promise<ModelClass | undefined>>()

async function model(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const path = modulePath(apiVersion, kind)
  if (!path) return undefined
  let m = models.get(path)
  if (!m) {
    m = import(path).then(
      (mod: Record<string, ModelClass>) => mod[kind],
      () => undefined,
    )
    models.set(path, m)
  }
  return m
}

interface Seen {
  path: string
  value: object
  read: Set<string>
  enumerated: boolean
}

function track(value: unknown, path: string, seen: Seen[]): unknown {
  if (value === null || typeof value !== 'object') return value
  const record: Seen = { path, value, read: new Set(), enumerated: false }
  seen.push(record)
  const copy: unknown = Array.isArray(value)
    ? value.map((v, i) => track(v, `${path}[${i}]`, seen))
    : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, track(v, path ? `${path}.${k}` : k, seen)]))
  return new Proxy(copy as object, {
    get(target, key, receiver) {
      if (typeof key === 'string') record.read.add(key)
      return Reflect.get(target, key, receiver)
    },
    has(target, key) {
      if (typeof key === 'string') record.read.add(key)
      return Reflect.has(target, key)
    },
    ownKeys(target) {
      record.enumerated = true
      return Reflect.ownKeys(target)
    },
  })
}

/** Problems of one object: schema errors and unknown fields. Empty when valid. */
export async function validateObject(obj: K8sObject): Promise<string[]> {
  const Model = await model(obj.apiVersion, obj.kind)
  if (!Model) return [`no schema for ${obj.apiVersion} ${obj.kind}: add its package to test/deploy/kube-schema.ts`]
  const problems: string[] = []
  const seen: Seen[] = []
  const proxied = track(obj, '', seen)
  try {
    Model.prototype.validate.call(proxied)
  } catch (err) {
    problems.push(`schema: ${(err as Error).message}`)
  }
  for (const s of seen) {
    // Arrays, enumerated maps, and objects the validator never looked into (free-form objects
    // such as x-kubernetes-preserve-unknown-fields) are not checked for unknown keys.
    if (Array.isArray(s.value) || s.enumerated || s.read.size === 0) continue
    for (const key of Object.keys(s.value)) {
      if (!s.read.has(key)) problems.push(`unknown field ${s.path ? `${s.path}.` : ''}${key}`)
    }
  }
  return problems
}

/** Problems of every object, each prefixed with kind/name. */
export async function validateAll(objects: K8sObject[]): Promise<string[]> {
  const out: string[] = []
  for (const o of objects) {
    for (const p of await validateObject(o)) out.push(`${o.kind}/${o.metadata?.name}: ${p}`)
  }
  return out
}
