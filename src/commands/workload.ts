/**
 * `gatehouse workload inspect TOKEN|FILE|-`: why a workload token would be accepted or refused at
 * the token endpoint (WIF-02, WIF-03), step by step: format, typ, issuer, algorithm, keys (fetched
 * as the gateway would, through discovery, jwksUri or the JWKS file), signature, audience, time,
 * lifetime, claims, then every claim rule of the issuer against the requested resource. Single use
 * (WIF-04) is not checked and nothing is written: inspecting a token does not spend it.
 */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { OAuthError } from '../errors.js'
import { resolveResource } from '../oauth/resource-indicator.js'
import { workloadVerifierFor } from '../oauth/token/workload-grant.js'
import { WorkloadRejected, type TraceStep } from '../oauth/token/workload-assertion.js'
import { workloadClientId, workloadSubject } from '../policy/access-rules.js'
import { chooseRule } from '../policy/workload-rules.js'
import { MemoryStore } from '../store/memory.js'
import { UsageError, type CommandIo } from './command.js'
import { configFile } from './deployment.js'

export const usage = `  gatehouse workload inspect TOKEN|FILE|- --config FILE [--resource URL] (why a workload token is accepted or refused, step by step; never spends it)`

const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

export async function run(args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string' }, resource: { type: 'string' } } })
  const [action, source, ...rest] = positionals
  if (action !== 'inspect' || source === undefined || rest.length > 0) throw new UsageError('workload inspect TOKEN|FILE|- --config FILE [--resource URL]')
  const config = await configFile(values.config, 'workload inspect', io)
  if (config.workloadIdentity.issuers.length === 0) throw new UsageError('no workloadIdentity.issuers are configured: every workload token is refused')
  const token = await tokenFrom(source, io)
  const row = (step: string, ok: boolean | undefined, text: string) => `${ok === undefined ? ' ' : ok ? '✔' : '✘'} ${step.padEnd(10)} ${text}`
  const lines: string[] = []
  const store = new MemoryStore()
  const built = workloadVerifierFor(config, store, { ...(io.extraCaCertificates !== undefined && { ca: io.extraCaCertificates }) })
  try {
    const trace: TraceStep[] = []
    const verified = await built.verifier.verify(token, trace).catch((err: unknown) => {
      if (err instanceof WorkloadRejected) return err
      throw err
    })
    lines.push(...trace.map((s) => row(s.step, s.ok, s.detail)))
    if (verified instanceof WorkloadRejected) {
      const error = verified.check === 'id-jag' ? 'invalid_client' : 'invalid_grant'
      lines.push(row('result', false, `REFUSED (${error}) at check ${verified.check}`))
      return finish(1)
    }
    let resource
    try {
      resource = resolveResource(config, values.resource)
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err
      lines.push(row('resource', false, `${values.resource ?? '(default)'}: ${err.message}`), row('result', false, `REFUSED (${err.code})`))
      return finish(1)
    }
    lines.push(row('resource', true, `${resource.uri} (${resource.id})`))
    const outcome = chooseRule(verified.issuer.rules, verified.claims as Record<string, unknown>, resource.id)
    for (const v of outcome.verdicts) {
      const text = v.failed
        ? `${v.failed.path} is ${v.failed.actual}, wanted ${v.failed.patterns.map((p) => JSON.stringify(p)).join(' or ')}`
        : v.coversResource
          ? 'claims match, the resource is listed'
          : `claims match, but the rule does not list ${resource.id}`
      lines.push(row(`rules[${v.index}]`, v.matched && v.coversResource, `workload ${v.workload}: ${text}`))
    }
    if (outcome.kind !== 'matched') {
      lines.push(row('result', false, `REFUSED (${outcome.kind === 'none' ? 'unauthorized_client: no rule matches' : 'invalid_target: no matching rule lists the resource'})`))
      return finish(1)
    }
    const known = resource.scopes.map((s) => s.name)
    const scopes = outcome.rule.scopes ? known.filter((s) => outcome.rule.scopes!.includes(s)) : known
    lines.push(row('result', true, 'ACCEPTED (single use not checked: inspecting does not spend the token)'))
    lines.push(row('', undefined, `sub ${workloadSubject(verified.issuer.id, verified.sub)}, client_id ${workloadClientId(outcome.rule.workload)}`))
    lines.push(row('', undefined, `scopes at most: ${scopes.join(' ') || '(none)'}`))
    return finish(0)
  } finally {
    await built.close()
    await store.close()
  }

  function finish(code: number): number {
    io.stdout.write(`${lines.join('\n')}\n`)
    return code
  }
}

/** The token itself, a file holding it (a projected service-account token's path), or `-` for standard input. */
async function tokenFrom(source: string, io: CommandIo): Promise<string> {
  if (source === '-') return (await io.readStdin()).toString('utf8').trim()
  if (JWS.test(source)) return source
  try {
    return (await readFile(source, 'utf8')).trim()
  } catch (err) {
    throw new UsageError(`${source} is neither a JWT nor a readable file (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}
