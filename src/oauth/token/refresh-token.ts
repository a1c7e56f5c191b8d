/**
 * grant_type=refresh_token (OAuth 2.1 §4.3): rotation with reuse detection (REF-01..04), scope
 * narrowing only (RFC 6749 §6), and the access rules applied again at every refresh.
 */
import type { AuditTrail } from '../../audit/events.js'
import type { GatewayConfig } from '../../config/load.js'
import { InvalidDpopProofError, InvalidGrantError, InvalidRequestError, InvalidScopeError, UnauthorizedClientError } from '../../errors.js'
import { mayAccess } from '../../policy/access-rules.js'
import type { Grants } from '../grants/grants.js'
import { resolveResource } from '../resource-indicator.js'
import type { GrantHandler } from './grant.js'
import type { TokenIssuer } from './issue.js'

export function refreshTokenGrant(config: GatewayConfig, grants: Grants, issuer: TokenIssuer, audit: AuditTrail): GrantHandler {
  return async ({ form, client, context, dpopJkt }) => {
    if (!client.grantTypes.includes('refresh_token')) {
      throw new UnauthorizedClientError('this client may not use refresh tokens')
    }
    if (!form.refresh_token) throw new InvalidRequestError('the refresh_token parameter is missing')
    const scopes = form.scope?.split(' ').filter(Boolean)
    // RI-07 and the DPoP binding, checked before the rotation so that a refused request leaves the
    // token working; for a token rotated inside the grace window too, since it still refreshes (REF-02).
    // And for one rotated before it: only the key's holder can show that a usable copy leaked, so
    // reuse without a proof by the bound key is refused and revokes nothing (else a thief of the
    // token alone could end the person's grant; RFC 9449 §5 makes the token useless without the key).
    const info = await grants.refreshTokenInfo(form.refresh_token, { rotated: 'any' })
    const ours = info !== undefined && info.grant.clientId === client.clientId
    if (form.resource !== undefined) {
      if (ours) issuer.checkResourceParam(form.resource, issuer.resourceFor(info.grant))
      else resolveResource(config, form.resource)
    }
    // DPOP-04, REF-02: a bound refresh token (and a grace retry of one) needs a proof by its key.
    if (ours && info.grant.dpopJkt !== undefined && info.grant.dpopJkt !== dpopJkt) {
      throw new InvalidDpopProofError('the refresh token is bound to a DPoP key: send a proof by that key')
    }
    const outcome = await grants.refresh(form.refresh_token, client.clientId, scopes, context)
    switch (outcome.kind) {
      case 'invalid_scope':
        throw new InvalidScopeError('a refresh can narrow the scope, never widen it')
      case 'reused':
        audit.record({ type: 'refresh.reused', clientId: client.clientId, grantId: outcome.grantId }, context)
        throw new InvalidGrantError('the refresh token is no longer valid', { detail: `reuse: grant ${outcome.grantId} revoked` })
      case 'invalid':
        throw new InvalidGrantError('the refresh token is invalid, expired or revoked')
    }
    // Access rules are checked again at every refresh with what was known at login (the IdP
    // cannot be asked again here): a tightened rule ends the grant at the next refresh.
    const resource = issuer.resourceFor(outcome.grant)
    if (!mayAccess(resource.access, outcome.grant)) {
      await grants.revoke(outcome.grant.grantId, 'access_rules', context)
      throw new InvalidGrantError('the user is no longer allowed to use this resource', { detail: `grant ${outcome.grant.grantId} revoked` })
    }
    // REF-03: a grace answer is audited as such (token.issued with grace: true).
    return issuer.answer('refresh_token', outcome.grant, outcome.scopes, resource, outcome.refreshToken, context, dpopJkt, outcome.grace)
  }
}
