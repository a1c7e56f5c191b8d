/**
 * grant_type=client_credentials (OAuth 2.1 §4.2, RFC 6749 §4.4; MCP extension SEP-1046): a
 * confidential machine client gets a token for itself, no person involved.
 *
 * - Only clients registered for the grant, never a public one (CC-01; the client has already
 *   authenticated with its secret or private_key_jwt assertion).
 * - `resource` picks the audience, default resource when absent, unknown → invalid_target
 *   (CC-03); a resource outside the client's `resources` limit or its resource's `access.clients`
 *   is invalid_target too.
 * - Scopes (CC-04, RFC 6749 §3.3): what was asked ∩ what the client may have ∩ what the resource
 *   knows; the server may grant fewer than asked (the SDK's machine providers ask for every scope
 *   the resource metadata lists), and says which in `scope`. Nothing left of a non-empty request
 *   is invalid_scope. No `scope` → everything the client may have there.
 * - No refresh token (CC-02, RFC 6749 §4.4.3); the subject is `client:<client id>` (CC-05,
 *   RFC 9068 §2.2), which no person's subject can be: login provider ids cannot be `client`.
 */
import { InvalidScopeError, InvalidTargetError, UnauthorizedClientError } from '../../errors.js'
import type { GatewayConfig } from '../../config/load.js'
import { machineMayAccess, machineSubject } from '../../policy/access-rules.js'
import type { Grants } from '../grants/grants.js'
import { resolveResource } from '../resource-indicator.js'
import type { GrantHandler } from './grant.js'
import type { TokenIssuer } from './issue.js'

export function clientCredentialsGrant(config: GatewayConfig, grants: Grants, issuer: TokenIssuer): GrantHandler {
  return async ({ form, client, context, dpopJkt }) => {
    if (!client.grantTypes.includes('client_credentials') || client.authMethod === 'none') {
      throw new UnauthorizedClientError('this client may not use the client_credentials grant')
    }
    const resource = resolveResource(config, form.resource)
    const limits = client.machine ?? {}
    if ((limits.resources && !limits.resources.includes(resource.id)) || !machineMayAccess(resource.access, client.clientId)) {
      throw new InvalidTargetError('this client may not get tokens for this resource')
    }
    const known = resource.scopes.map((s) => s.name)
    const allowed = limits.scopes ? known.filter((s) => limits.scopes!.includes(s)) : known
    const asked = form.scope?.split(' ').filter(Boolean)
    const scopes = asked === undefined ? allowed : allowed.filter((s) => asked.includes(s))
    if (asked !== undefined && asked.length > 0 && scopes.length === 0) {
      throw new InvalidScopeError('none of the requested scopes may be granted to this client for this resource')
    }
    // Not stored: nothing to refresh or revoke later; the id ties the audit events together.
    const grant = grants.newGrant({ sub: machineSubject(client.clientId), clientId: client.clientId, resourceId: resource.id, scopes })
    return issuer.answer('client_credentials', grant, scopes, resource, undefined, context, dpopJkt)
  }
}
