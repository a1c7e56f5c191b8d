/**
 * What every grant of the token endpoint ends with: the resource a grant covers, the RI-07
 * check of a `resource` named at the token endpoint, and the access token answer (RFC 6749
 * §5.1; RFC 9068 access token) with its `token.issued` audit event.
 */
import type { AuditContext, AuditTrail } from '../../audit/events.js'
import type { GatewayConfig, Resource } from '../../config/load.js'
import { InvalidGrantError, InvalidTargetError } from '../../errors.js'
import type { Keystore } from '../../keys/keystore.js'
import { mintAccessToken } from '../../keys/tokens.js'
import type { Grant } from '../grants/grants.js'
import { resolveResource } from '../resource-indicator.js'

/** The grant types this endpoint answers; anything else is `unsupported_grant_type`. */
export type IssuedGrantType = 'authorization_code' | 'refresh_token' | 'client_credentials' | 'urn:ietf:params:oauth:grant-type:jwt-bearer'

export type TokenAnswer = Record<string, unknown>

export class TokenIssuer {
  constructor(
    private readonly config: GatewayConfig,
    private readonly keystore: Keystore,
    private readonly audit: AuditTrail,
  ) {}

  resourceFor(grant: Grant): Resource {
    const resource = this.config.resources.find((r) => r.id === grant.resourceId)
    // A grant for a resource removed from the configuration cannot be used any more.
    if (!resource) throw new InvalidGrantError('the resource of this grant is no longer served')
    return resource
  }

  /** RI-07: a resource named at the token endpoint must be the one the grant covers. */
  checkResourceParam(requested: string | undefined, bound: Resource): void {
    if (requested === undefined) return
    const named = resolveResource(this.config, requested)
    if (named.id !== bound.id) throw new InvalidTargetError('the grant does not cover this resource')
  }

  async answer(
    grantType: IssuedGrantType,
    grant: Grant,
    scopes: readonly string[],
    resource: Resource,
    refreshToken: string | undefined,
    context: AuditContext,
    /** The DPoP key the token is bound to (RFC 9449 §5): token_type DPoP, cnf.jkt. */
    jkt?: string,
    /** A refresh answered inside the reuse grace window (REF-03): the audit event says so. */
    grace = false,
  ): Promise<TokenAnswer> {
    const ttl = this.config.accessTokens.ttlSeconds
    const accessToken = await mintAccessToken(
      this.keystore,
      this.config.issuer,
      { sub: grant.sub, clientId: grant.clientId, audience: resource.uri, scopes, email: grant.email, groups: grant.groups, jkt, grantId: grant.grantId },
      ttl,
    )
    this.audit.record(
      {
        type: 'token.issued',
        grantType,
        sub: grant.sub,
        clientId: grant.clientId,
        resource: resource.id,
        grantId: grant.grantId,
        scopes,
        ...(grace && { grace: true as const }),
      },
      context,
    )
    return {
      access_token: accessToken,
      token_type: jkt === undefined ? 'Bearer' : 'DPoP',
      expires_in: ttl,
      scope: scopes.join(' '),
      ...(refreshToken !== undefined && { refresh_token: refreshToken }),
    }
  }
}
