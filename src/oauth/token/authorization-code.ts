/**
 * grant_type=authorization_code (OAuth 2.1 §4.1.3): the code is taken once (O21-08), bound to
 * its client, redirect URI and PKCE challenge (O21-12, PKCE S256); a valid replay revokes
 * everything the code issued (RFC 9700 §4.14.2).
 */
import type { AuditTrail } from '../../audit/events.js'
import { InvalidDpopProofError, InvalidGrantError, InvalidRequestError } from '../../errors.js'
import type { Grants } from '../grants/grants.js'
import { verifyPkce } from '../pkce.js'
import type { GrantHandler } from './grant.js'
import type { TokenIssuer } from './issue.js'

export function authorizationCodeGrant(grants: Grants, issuer: TokenIssuer, audit: AuditTrail): GrantHandler {
  return async ({ form, client, context, dpopJkt }) => {
    if (!form.code) throw new InvalidRequestError('the code parameter is missing')
    if (!form.code_verifier) throw new InvalidRequestError('the code_verifier parameter is missing')
    // RI-07 and DPOP-08, checked before the code is taken so that a wrong resource or key does not burn it.
    const pending = await grants.peekCode(form.code)
    if (pending && pending.grant.clientId === client.clientId) {
      if (form.resource !== undefined) issuer.checkResourceParam(form.resource, issuer.resourceFor(pending.grant))
      if (pending.dpopJkt !== undefined && pending.dpopJkt !== dpopJkt) throw new InvalidDpopProofError('the code is bound to another DPoP key (dpop_jkt)')
    }
    const redeemed = await grants.redeemCode(form.code)
    if (!redeemed) throw new InvalidGrantError('the code is invalid or expired')
    const { record, replayed } = redeemed
    // Any mismatch fails as one error, so the endpoint does not tell which binding was wrong.
    // RFC 6749 §4.1.3, O21-12: redirect_uri is required only when /authorize carried one.
    const redirectRequired = form.redirect_uri !== undefined || record.redirectUriGiven
    const mismatch =
      record.grant.clientId !== client.clientId
        ? 'client'
        : redirectRequired && form.redirect_uri !== record.redirectUri
          ? 'redirect_uri'
          : !verifyPkce(record.codeChallenge, form.code_verifier)
            ? 'pkce'
            : undefined
    if (mismatch) throw new InvalidGrantError('the code does not match this request', { detail: replayed ? `replay, ${mismatch}: grant kept` : mismatch })
    if (replayed) {
      // O21-08: only a replay that is otherwise valid revokes, so a leaked used code is no DoS.
      audit.record({ type: 'code.replayed', clientId: client.clientId, grantId: record.grant.grantId }, context)
      await grants.revoke(record.grant.grantId, 'code_replay', context)
      throw new InvalidGrantError('the code was already used', { detail: 'code replay: grant revoked' })
    }
    // DPOP-08: a code requested with dpop_jkt is redeemed only with a proof by that key.
    if (record.dpopJkt !== undefined && record.dpopJkt !== dpopJkt) {
      throw new InvalidDpopProofError('the code is bound to another DPoP key (dpop_jkt)')
    }
    const resource = issuer.resourceFor(record.grant)
    issuer.checkResourceParam(form.resource, resource)
    // DPOP-04: a public client's refresh tokens stay bound to the key of its first token.
    const grant = dpopJkt !== undefined && client.authMethod === 'none' ? { ...record.grant, dpopJkt } : record.grant
    const refreshToken = await grants.start(grant, record.refreshAllowed && client.grantTypes.includes('refresh_token'))
    return issuer.answer('authorization_code', grant, grant.scopes, resource, refreshToken, context, dpopJkt)
  }
}
