/**
 * The token endpoint (OAuth 2.1 §3.2): authenticates the client, then hands the request to the
 * module of its grant type. Answers carry Cache-Control: no-store; errors are RFC 6749 §5.2
 * JSON written by the root handler. A new grant type is one module and one line in `handlers`.
 */
import type { FastifyInstance } from 'fastify'
import { contextOf, type AuditTrail } from '../../audit/events.js'
import { JWT_BEARER_GRANT } from '../../config/enterprise-schema.js'
import type { GatewayConfig } from '../../config/load.js'
import { InvalidDpopProofError, InvalidRequestError, OAuthError, UnsupportedGrantTypeError, UseDpopNonceError } from '../../errors.js'
import { DpopNonces } from '../../keys/dpop-nonce.js'
import { DpopProofs, DpopRejected, dpopHeaderOf } from '../../keys/dpop.js'
import type { Keystore } from '../../keys/keystore.js'
import type { Store } from '../../store/store.js'
import type { ClientAssertions } from '../clients/assertion.js'
import { authenticateClient } from '../clients/authenticate.js'
import type { ClientRegistry } from '../clients/registry.js'
import { clientFromSnapshot } from '../clients/snapshot.js'
import { oauthPaths, tokenEndpointOf } from '../endpoints.js'
import type { Grants } from '../grants/grants.js'
import { singleValued, type Params } from '../params.js'
import { authorizationCodeGrant } from './authorization-code.js'
import { clientCredentialsGrant } from './client-credentials.js'
import type { GrantHandler } from './grant.js'
import { TokenIssuer, type IssuedGrantType } from './issue.js'
import { IdJagVerifier } from './id-jag.js'
import { jwtBearerGrant } from './jwt-bearer.js'
import { refreshTokenGrant } from './refresh-token.js'
import { workloadGrant, workloadVerifierFor, type WorkloadHandler } from './workload-grant.js'

export interface TokenDeps {
  config: GatewayConfig
  clients: ClientRegistry
  grants: Grants
  keystore: Keystore
  /** Replay caches of the grants that take assertions (ID-JAG jti), shared by replicas. */
  store: Store
  /** private_key_jwt checks (CIMD clients); undefined when CIMD is off. */
  assertions?: ClientAssertions
  audit: AuditTrail
}

export function registerToken(app: FastifyInstance, { config, clients, grants, keystore, store, assertions, audit }: TokenDeps): void {
  const issuer = new TokenIssuer(config, keystore, audit)
  const proofs = new DpopProofs(
    { ...config.dpop, clockToleranceSeconds: config.accessTokens.clockToleranceSeconds },
    store,
    config.dpop.requireNonce ? new DpopNonces(store) : undefined,
  )
  const enterprise = config.enterpriseAuthorization.issuers
  // The jwt-bearer grant exists only where an IdP is trusted; elsewhere it stays unsupported_grant_type.
  const handlers: Readonly<Partial<Record<IssuedGrantType, GrantHandler>>> = {
    authorization_code: authorizationCodeGrant(grants, issuer, audit),
    refresh_token: refreshTokenGrant(config, grants, issuer, audit),
    client_credentials: clientCredentialsGrant(config, grants, issuer),
    ...(enterprise.length > 0 && {
      [JWT_BEARER_GRANT]: jwtBearerGrant(
        config,
        grants,
        issuer,
        new IdJagVerifier({ issuers: enterprise, audience: config.issuer, store, clockToleranceSeconds: config.accessTokens.clockToleranceSeconds }),
        audit,
      ),
    }),
  }
  // WIF-01: workloads present their platform's token with no client authentication at all.
  let workload: WorkloadHandler | undefined
  if (config.workloadIdentity.issuers.length > 0) {
    const built = workloadVerifierFor(config, store)
    app.addHook('onClose', built.close)
    workload = workloadGrant(config, grants, issuer, built.verifier, audit)
  }
  const supported = [...new Set([...Object.keys(handlers), ...(workload ? [JWT_BEARER_GRANT] : [])])].join(', ')
  const handlerOf = (grantType: string | undefined): GrantHandler | undefined =>
    grantType !== undefined && Object.hasOwn(handlers, grantType) ? handlers[grantType as IssuedGrantType] : undefined

  app.post(oauthPaths.token, async (request, reply) => {
    const form = singleValued(request.body)
    const context = contextOf(request)
    let clientId: string | undefined
    try {
      // The profile is chosen by the request, never by the assertion: no client credentials is the
      // workload profile; an ID-JAG always comes with them (XAA-04), so the two cannot be confused.
      if (workload && form.grant_type === JWT_BEARER_GRANT && !carriesClientAuthentication(request.headers.authorization, form)) {
        const answer = await workload({ form, context, dpopJkt: await proofKeyOf(request.raw.rawHeaders) })
        if (proofs.nonces && request.headers.dpop !== undefined) reply.header('dpop-nonce', await proofs.nonces.current())
        return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(answer)
      }
      const client = await authenticateClient(request, form, await clientsFor(form), assertions)
      clientId = client.clientId
      if (form.grant_type === undefined) throw new InvalidRequestError('the grant_type parameter is missing')
      const handler = handlerOf(form.grant_type)
      if (!handler) throw new UnsupportedGrantTypeError(`supported grant types: ${supported}`)
      const dpopJkt = await proofKeyOf(request.raw.rawHeaders)
      // DPOP-09: a client registered for bound tokens gets none without a proof.
      if (client.dpopBound && dpopJkt === undefined) throw new InvalidDpopProofError('this client must send a DPoP proof')
      const answer = await handler({ form, client, context, dpopJkt })
      // §8.2: a fresh nonce with every answer saves the client a round trip next time.
      if (proofs.nonces && dpopJkt !== undefined) reply.header('dpop-nonce', await proofs.nonces.current())
      return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(answer)
    } catch (err) {
      if (err instanceof OAuthError) {
        // The grant type as sent is bounded before it is recorded: it is caller-supplied text.
        const grantType = handlerOf(form.grant_type) || (workload && form.grant_type === JWT_BEARER_GRANT) ? form.grant_type! : 'other'
        audit.record({ type: 'token.refused', grantType, ...(clientId !== undefined && { clientId }), error: err.code }, context)
      }
      throw err
    }
  })

  /** The key of the request's DPoP proof (RFC 9449 §4.3, §5), undefined without one. */
  async function proofKeyOf(rawHeaders: readonly string[]): Promise<string | undefined> {
    const header = dpopHeaderOf(rawHeaders)
    if ('count' in header) {
      if (header.count === 0) return undefined
      throw new InvalidDpopProofError('send exactly one DPoP header')
    }
    try {
      return (await proofs.verify(header.proof, { method: 'POST', url: tokenEndpointOf(config.issuer) })).jkt
    } catch (err) {
      if (err instanceof DpopRejected && err.check === 'nonce' && proofs.nonces) {
        throw new UseDpopNonceError('send the DPoP proof again with the nonce given', { headers: { 'dpop-nonce': await proofs.nonces.current() }, detail: err.detail })
      }
      if (err instanceof DpopRejected) throw new InvalidDpopProofError('the DPoP proof is not acceptable', { detail: `dpop ${err.check}: ${err.detail}` })
      throw err
    }
  }

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
}

/** Whether a token request names or authenticates a client in any way (RFC 6749 §2.3; RFC 7521 §4.2). */
function carriesClientAuthentication(authorization: string | undefined, form: Params): boolean {
  return authorization !== undefined || ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'].some((k) => form[k] !== undefined)
}
