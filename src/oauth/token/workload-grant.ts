/**
 * The workload profile of grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer (SEP-1933, draft;
 * RFC 7523 §2.1): a workload presents the token its platform signed for it (a Kubernetes projected
 * service-account token, a GitHub Actions OIDC token, a SPIFFE JWT-SVID) with no client
 * authentication and no client_id: the workload is the client (WIF-01). The endpoint sends a
 * jwt-bearer request here only when it carries no client credentials at all; an ID-JAG always
 * needs them (XAA-04), so the two profiles never meet.
 *
 * - No `assertion`: invalid_request. A bad assertion (workload-assertion.ts, WIF-02): invalid_grant,
 *   except an ID-JAG, which is invalid_client: the authentication it needs is missing.
 * - `resource` picks the audience (RFC 8707; default resource when absent; unknown: invalid_target).
 * - The issuer's claim rules (WIF-03): none matches, unauthorized_client; some match but none
 *   lists the resource, invalid_target. Scopes: what was asked ∩ the rule's ∩ what the resource
 *   knows, narrowed as RFC 6749 §3.3 allows; nothing left of a non-empty request is invalid_scope.
 * - Single use (WIF-04) last, so a refused request does not burn a good token.
 * - The token (WIF-05): aud the resource, no refresh token (the workload presents a fresh JWT),
 *   sub workload:<issuer id>:<sub>, client_id workload:<rule's workload>: no person's subject or
 *   client id has that form, and no user condition of any rule matches it.
 * Never a 5xx (WIF-06): a key set that cannot be loaded is invalid_grant with the reason in the log.
 */
import type { AuditContext, AuditTrail } from '../../audit/events.js'
import { JWT_BEARER_GRANT } from '../../config/enterprise-schema.js'
import type { GatewayConfig } from '../../config/load.js'
import { InvalidClientError, InvalidGrantError, InvalidRequestError, InvalidScopeError, InvalidTargetError, UnauthorizedClientError } from '../../errors.js'
import { workloadClientId, workloadSubject } from '../../policy/access-rules.js'
import { chooseRule } from '../../policy/workload-rules.js'
import type { Store } from '../../store/store.js'
import { SafeFetcher } from '../clients/cimd/fetch.js'
import { tokenEndpointOf } from '../endpoints.js'
import type { Grants } from '../grants/grants.js'
import type { Params } from '../params.js'
import { resolveResource } from '../resource-indicator.js'
import type { TokenAnswer, TokenIssuer } from './issue.js'
import { WorkloadRejected, WorkloadVerifier } from './workload-assertion.js'
import { WorkloadKeys } from './workload-keys.js'

export type WorkloadHandler = (request: { form: Params; context: AuditContext; dpopJkt: string | undefined }) => Promise<TokenAnswer>

export function workloadGrant(config: GatewayConfig, grants: Grants, issuer: TokenIssuer, verifier: WorkloadVerifier, audit: AuditTrail): WorkloadHandler {
  return async ({ form, context, dpopJkt }) => {
    if (!form.assertion) throw new InvalidRequestError('the assertion parameter is missing')
    const refused = (check: string, issuerId: string | undefined) => audit.record({ type: 'workload.refused', check, issuer: issuerId ?? 'untrusted' }, context)
    const workload = await verifier.verify(form.assertion).catch((err: unknown) => {
      if (!(err instanceof WorkloadRejected)) throw err
      refused(err.check, undefined)
      if (err.check === 'id-jag') throw new InvalidClientError('an ID-JAG needs client authentication', { detail: `workload ${err.check}: ${err.detail}` })
      throw new InvalidGrantError('the assertion is not acceptable', { detail: `workload ${err.check}: ${err.detail}` })
    })
    const issuerId = workload.issuer.id
    const resource = resolveResource(config, form.resource)
    const outcome = chooseRule(workload.issuer.rules, workload.claims as Record<string, unknown>, resource.id)
    if (outcome.kind !== 'matched') {
      refused(outcome.kind === 'none' ? 'rules' : 'resource', issuerId)
      const why = outcome.verdicts.map((v) => `rules[${v.index}] ${v.failed ? `${v.failed.path} is ${v.failed.actual}` : 'does not list the resource'}`).join('; ')
      if (outcome.kind === 'resource') throw new InvalidTargetError('this workload may not get tokens for this resource', { detail: `workload ${issuerId}: ${why}` })
      throw new UnauthorizedClientError('no workload rule admits this token', { detail: `workload ${issuerId}: ${why}` })
    }
    const { rule } = outcome
    const known = resource.scopes.map((s) => s.name)
    const allowed = rule.scopes ? known.filter((s) => rule.scopes!.includes(s)) : known
    const asked = form.scope?.split(' ').filter(Boolean)
    const scopes = asked === undefined ? allowed : allowed.filter((s) => asked.includes(s))
    if (asked !== undefined && asked.length > 0 && scopes.length === 0) {
      refused('scope', issuerId)
      throw new InvalidScopeError('none of the requested scopes may be granted to this workload for this resource')
    }
    await verifier.consume(workload).catch((err: unknown) => {
      if (!(err instanceof WorkloadRejected)) throw err
      refused(err.check, issuerId)
      throw new InvalidGrantError('the assertion is not acceptable', { detail: `workload ${err.check}: ${err.detail}` })
    })
    // Not stored: nothing to refresh or revoke later; the id ties the audit events together.
    const grant = grants.newGrant({
      sub: workloadSubject(issuerId, workload.sub),
      clientId: workloadClientId(rule.workload),
      resourceId: resource.id,
      scopes,
    })
    return issuer.answer(JWT_BEARER_GRANT, grant, scopes, resource, undefined, context, dpopJkt)
  }
}

/** The verifier of a configuration's workload issuers, with one hardened fetcher per address policy. */
export function workloadVerifierFor(
  config: GatewayConfig,
  store: Store,
  options: { ca?: string } = {},
): { verifier: WorkloadVerifier; keys: Map<string, WorkloadKeys>; close: () => Promise<void> } {
  const fetchers = new Map<boolean, SafeFetcher>()
  const fetcherFor = (allowPrivate: boolean) => {
    let fetcher = fetchers.get(allowPrivate)
    if (!fetcher) {
      fetcher = new SafeFetcher({ ...config.cimd.fetch, allowPrivateAddresses: allowPrivate, ...(options.ca !== undefined && { ca: options.ca }) })
      fetchers.set(allowPrivate, fetcher)
    }
    return fetcher
  }
  const keys = new Map(
    config.workloadIdentity.issuers.map((i) => [
      i.issuer,
      new WorkloadKeys(i, { fetcher: fetcherFor(i.allowPrivateAddresses), maxBytes: config.cimd.privateKeyJwt.jwksMaxBytes }),
    ]),
  )
  const verifier = new WorkloadVerifier({
    keys,
    issuer: config.issuer,
    tokenEndpoint: tokenEndpointOf(config.issuer),
    store,
    clockToleranceSeconds: config.accessTokens.clockToleranceSeconds,
  })
  return { verifier, keys, close: async () => void (await Promise.all([...fetchers.values()].map((f) => f.close()))) }
}
