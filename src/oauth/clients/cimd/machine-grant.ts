/**
 * client_credentials in a metadata document (OAuth 2.1 §4.2; CC-01). A document asking for the
 * grant is refused unless the trust entry that admitted its client id allows it; an allowed one
 * keeps the grant whatever the metadata policy says about grant types, because the operator's
 * decision for it is that entry, not the policy written for clients that redirect a person:
 *
 * - the policy applies to the document's other grants as usual, and client_credentials is added
 *   back to the result;
 * - a document whose only grant is client_credentials has no redirection at all, so the policy's
 *   grant_types and response_types members do not apply to it (the default policy would
 *   otherwise demand authorization_code); every other member's policy does.
 *
 * validateEffective then requires private_key_jwt of such a client (CIMD has no secrets).
 */
import { applyMetadataPolicy, type MetadataPolicy, type PolicyOutcome } from '../../../policy/metadata-policy.js'
import { CLIENT_CREDENTIALS_NOT_ALLOWED, DocumentError, grantTypesOf, type Metadata } from './document.js'

const MACHINE_GRANT = 'client_credentials'

export function applyPolicyWithMachineGrant(policy: MetadataPolicy, document: Metadata, machine: boolean): PolicyOutcome {
  const grants = grantTypesOf(document)
  if (!grants.includes(MACHINE_GRANT)) return applyMetadataPolicy(policy, document)
  // Before the policy, which could drop the grant silently (subset_of) or refuse for another reason.
  if (!machine) throw new DocumentError('grant_types', CLIENT_CREDENTIALS_NOT_ALLOWED)
  const redirecting = grants.filter((g) => g !== MACHINE_GRANT)
  if (redirecting.length > 0) {
    const outcome = applyMetadataPolicy(policy, withGrants(document, redirecting))
    if (!outcome.ok) return outcome
    return { ok: true, metadata: withGrants(outcome.metadata, [...grantTypesOf(outcome.metadata), MACHINE_GRANT]) }
  }
  const { grant_types: _grants, response_types: _responses, ...rest } = policy
  const outcome = applyMetadataPolicy(rest, document)
  if (!outcome.ok) return outcome
  return { ok: true, metadata: withGrants(outcome.metadata, [MACHINE_GRANT]) }
}

/** A copy with these grant types, keeping the policy's null-prototype object (no inherited members). */
function withGrants(metadata: Metadata, grants: string[]): Metadata {
  return Object.assign(Object.create(null) as Metadata, metadata, { grant_types: grants })
}
