/**
 * A refused metadata-document client id (SEC-26, SEC-36): `invalid_client` shown on the
 * gateway's own page, naming the step and rule that refused, never echoing what the remote sent.
 */
import type { ClientRefusalReason } from '../../../audit/events.js'
import { PublicError } from '../../../errors.js'

export type CimdStep = 'url' | 'trust' | 'cache' | 'fetch' | 'document' | 'policy'

/** A refused CIMD client id: `invalid_client` on the gateway's page, naming the rule. */
export class CimdRefusal extends PublicError {
  override readonly name = 'CimdRefusal'
  constructor(
    readonly step: CimdStep,
    /** The rule or field that decided, e.g. `cimd.trust.deny[0] (host *.example.com)` or `redirect_uris`. */
    readonly rule: string,
    description: string,
    detail?: string,
  ) {
    super('invalid_client', 400, description, { ...(detail !== undefined && { detail }) })
  }
}

/** The audit trail's bounded refusal reason for a step and rule. */
export function refusalReason(step: CimdStep, rule: string): ClientRefusalReason {
  if (rule === 'cimd.fetchRateLimit') return 'rate_limited'
  switch (step) {
    case 'url':
      return 'url_rule'
    case 'trust':
      return 'trust_policy'
    case 'cache':
      return 'negative_cache'
    case 'fetch':
      return 'fetch_error'
    case 'document':
      return 'invalid_document'
    case 'policy':
      return 'metadata_policy'
  }
}
