/**
 * Token revocation (RFC 7009) and introspection (RFC 7662).
 *
 * Revoking a refresh token or an access token revokes its grant (RFC 7009 §2.1: "SHOULD also
 * invalidate" the related tokens): every refresh token of it stops at once, and every replica
 * refuses its access tokens within a second (keys/revocations.ts, §11.4 REV-01).
 * Introspection is for resource servers, which the operator registers as confidential clients:
 * self-registered and metadata-document clients may not scan tokens (INT-01).
 */
import type { FastifyInstance } from 'fastify'
import { contextOf } from '../../audit/events.js'
import type { GatewayConfig } from '../../config/load.js'
import { InvalidClientError, InvalidRequestError } from '../../errors.js'
import type { AccessTokenVerifier } from '../../keys/tokens.js'
import type { ClientAssertions } from '../clients/assertion.js'
import { authenticateClient } from '../clients/authenticate.js'
import type { ClientRegistry } from '../clients/registry.js'
import type { Grants } from '../grants/grants.js'
import { singleValued } from '../params.js'
import { oauthPaths } from '../endpoints.js'

export interface RevokeIntrospectDeps {
  config: GatewayConfig
  clients: ClientRegistry
  grants: Grants
  verifier: AccessTokenVerifier
  /** private_key_jwt checks: a CIMD client that declares it uses it here too (CIMD-38, REV-04). */
  assertions?: ClientAssertions
}

export function registerRevokeIntrospect(app: FastifyInstance, { config, clients, grants, verifier, assertions }: RevokeIntrospectDeps) {
  app.post(oauthPaths.revoke, async (request, reply) => {
    const form = singleValued(request.body)
    const client = await authenticateClient(request, form, clients, assertions)
    if (!form.token) throw new InvalidRequestError('the token parameter is missing')
    // RFC 7009 §2.1: the hint does not limit the search; an access token names its grant.
    const access = await verifier.verify(form.token).catch(() => undefined)
    const owner = access ? { clientId: access.clientId, grantId: access.grantId } : await refreshTokenOwner(grants, form.token)
    // A client may only revoke its own tokens; anyone else's is treated as unknown (RFC 7009 §2.1).
    if (owner?.grantId !== undefined && owner.clientId === client.clientId) {
      await grants.revoke(owner.grantId, 'client', contextOf(request))
      request.log.info({ grantId: owner.grantId, clientId: client.clientId }, 'grant revoked by client')
    }
    return reply.header('cache-control', 'no-store').code(200).send()
  })

  app.post(oauthPaths.introspect, async (request, reply) => {
    const form = singleValued(request.body)
    const client = await authenticateClient(request, form, clients, assertions)
    if (client.authMethod === 'none' || client.source !== 'static') {
      throw new InvalidClientError('introspection is for confidential clients registered by the operator', { detail: `${client.source} client` })
    }
    if (!form.token) throw new InvalidRequestError('the token parameter is missing')
    reply.header('cache-control', 'no-store')
    // RFC 7662 §2.1: a hint does not limit the search; every token type is tried.
    const access = await verifier.verify(form.token).catch(() => undefined)
    if (access) {
      return {
        active: true,
        token_type: 'Bearer',
        scope: [...access.scopes].join(' '),
        client_id: access.clientId,
        sub: access.sub,
        aud: access.audiences,
        iss: config.issuer,
        exp: access.exp,
        ...(access.jti && { jti: access.jti }),
      }
    }
    const refresh = await grants.refreshTokenInfo(form.token)
    if (refresh) {
      return {
        active: true,
        token_type: 'refresh_token',
        scope: refresh.scopes.join(' '),
        client_id: refresh.grant.clientId,
        sub: refresh.grant.sub,
        aud: config.resources.find((r) => r.id === refresh.grant.resourceId)?.uri,
        iss: config.issuer,
      }
    }
    return { active: false }
  })
}

async function refreshTokenOwner(grants: Grants, token: string): Promise<{ clientId: string; grantId: string } | undefined> {
  // A token rotated inside the grace window still refreshes (REF-01), so it revokes its grant too.
  const info = await grants.refreshTokenInfo(token, { rotated: true })
  return info && { clientId: info.grant.clientId, grantId: info.grant.grantId }
}
