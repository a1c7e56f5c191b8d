/**
 * The token endpoint (OAuth 2.1 §3.2, §4.1.3, §4.3): authorization_code with PKCE and
 * refresh_token with rotation. Answers carry Cache-Control: no-store; errors are RFC 6749
 * §5.2 JSON written by the root handler.
 */
import type { FastifyInstance } from 'fastify'
import { contextOf, type AuditContext, type AuditTrail } from '../audit/events.js'
import type { GatewayConfig, Resource } from '../config/load.js'
import {
  OAuthError,
  InvalidGrantError,
  InvalidRequestError,
  InvalidScopeError,
  InvalidTargetError,
  UnauthorizedClientError,
  UnsupportedGrantTypeError,
} from '../errors.js'
import type { Keystore } from '../keys/keystore.js'
import { mintAccessToken } from '../keys/tokens.js'
import { mayAccess } from '../policy/access-rules.js'
import type { ClientAssertions } from './client-assertion.js'
import { authenticateClient } from './client-auth.js'
import type { ClientRegistry, OAuthClient } from './clients.js'
import { clientFromSnapshot } from './client-snapshot.js'
import type { Grant, Grants } from './grants.js'
import { singleValued, type Params } from './params.js'
import { verifyPkce } from './pkce.js'
import { resolveResource } from './resource-indicator.js'

export interface TokenDeps {
  config: GatewayConfig
  clients: ClientRegistry
  grants: Grants
  keystore: Keystore
  /** private_key_jwt checks (CIMD clients); undefined when CIMD is off. */
  assertions?: ClientAssertions
  audit: AuditTrail
}

export function registerToken(app: FastifyInstance, { config, clients, grants, keystore, assertions, audit }: TokenDeps): void {
  app.post('/oauth/token', async (request, reply) => {
    const form = singleValued(request.body)
    const context = contextOf(request)
    let clientId: string | undefined
    try {
      const client = await authenticateClient(request, form, await clientsFor(form), assertions)
      clientId = client.clientId
      let answer: Record<string, unknown>
      switch (form.grant_type) {
        case 'authorization_code':
          answer = await authorizationCode(form, client, context)
          break
        case 'refresh_token':
          answer = await refreshToken(form, client, context)
          break
        case undefined:
          throw new InvalidRequestError('the grant_type parameter is missing')
        default:
          throw new UnsupportedGrantTypeError('supported grant types: authorization_code, refresh_token')
      }
      return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(answer)
    } catch (err) {
      if (err instanceof OAuthError) {
        // The grant type as sent is bounded before it is recorded: it is caller-supplied text.
        const grantType = form.grant_type === 'authorization_code' || form.grant_type === 'refresh_token' ? form.grant_type : 'other'
        audit.record({ type: 'token.refused', grantType, ...(clientId !== undefined && { clientId }), error: err.code }, context)
      }
      throw err
    }
  })

  /**
   * For a code issued to a metadata-document client, the client as it was at /authorize
   * (SEC-22): no fetch at the token endpoint, and a changed document cannot change the rules.
   */
  async function clientsFor(form: Params): Promise<ClientRegistry> {
    if (form.grant_type !== 'authorization_code' || !form.code) return clients
    const snapshot = (await grants.peekCode(form.code))?.client
    if (!snapshot) return clients
    return { find: async (id) => (id === snapshot.clientId ? clientFromSnapshot(snapshot) : clients.find(id)) }
  }

  async function authorizationCode(form: Params, client: OAuthClient, context: AuditContext) {
    if (!form.code) throw new InvalidRequestError('the code parameter is missing')
    if (!form.code_verifier) throw new InvalidRequestError('the code_verifier parameter is missing')
    // RI-07, checked before the code is taken so that a wrong resource does not burn it.
    if (form.resource !== undefined) {
      const pending = await grants.peekCode(form.code)
      if (pending && pending.grant.clientId === client.clientId) checkResourceParam(form.resource, resourceFor(pending.grant))
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
    const resource = resourceFor(record.grant)
    checkResourceParam(form.resource, resource)
    const refreshToken = await grants.start(record.grant, record.refreshAllowed && client.grantTypes.includes('refresh_token'))
    return tokenResponse('authorization_code', record.grant, record.grant.scopes, resource, refreshToken, context)
  }

  async function refreshToken(form: Params, client: OAuthClient, context: AuditContext) {
    if (!client.grantTypes.includes('refresh_token')) {
      throw new UnauthorizedClientError('this client may not use refresh tokens')
    }
    if (!form.refresh_token) throw new InvalidRequestError('the refresh_token parameter is missing')
    const scopes = form.scope?.split(' ').filter(Boolean)
    // RI-07, checked before the rotation so that a refused request leaves the token working.
    if (form.resource !== undefined) {
      const info = await grants.refreshTokenInfo(form.refresh_token)
      if (info && info.grant.clientId === client.clientId) checkResourceParam(form.resource, resourceFor(info.grant))
      else resolveResource(config, form.resource)
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
    const resource = resourceFor(outcome.grant)
    if (!mayAccess(resource.access, outcome.grant)) {
      await grants.revoke(outcome.grant.grantId, 'access_rules', context)
      throw new InvalidGrantError('the user is no longer allowed to use this resource', { detail: `grant ${outcome.grant.grantId} revoked` })
    }
    return tokenResponse('refresh_token', outcome.grant, outcome.scopes, resource, outcome.refreshToken, context)
  }

  function resourceFor(grant: Grant): Resource {
    const resource = config.resources.find((r) => r.id === grant.resourceId)
    // A grant for a resource removed from the configuration cannot be used any more.
    if (!resource) throw new InvalidGrantError('the resource of this grant is no longer served')
    return resource
  }

  /** RI-07: a resource named at the token endpoint must be the one the grant covers. */
  function checkResourceParam(requested: string | undefined, bound: Resource) {
    if (requested === undefined) return
    const named = resolveResource(config, requested)
    if (named.id !== bound.id) throw new InvalidTargetError('the grant does not cover this resource')
  }

  async function tokenResponse(
    grantType: 'authorization_code' | 'refresh_token',
    grant: Grant,
    scopes: readonly string[],
    resource: Resource,
    refreshToken: string | undefined,
    context: AuditContext,
  ) {
    const ttl = config.accessTokens.ttlSeconds
    const accessToken = await mintAccessToken(
      keystore,
      config.issuer,
      { sub: grant.sub, clientId: grant.clientId, audience: resource.uri, scopes, email: grant.email, groups: grant.groups },
      ttl,
    )
    audit.record(
      { type: 'token.issued', grantType, sub: grant.sub, clientId: grant.clientId, resource: resource.id, grantId: grant.grantId, scopes },
      context,
    )
    return {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: ttl,
      scope: scopes.join(' '),
      ...(refreshToken !== undefined && { refresh_token: refreshToken }),
    }
  }
}
