/**
 * RFC 8414 authorization server metadata: exactly what is supported (ASM-*, MCPA-22 needs
 * code_challenge_methods_supported, MCPA-F01 the iss parameter flag).
 */
import { JWT_BEARER_GRANT } from '../config/enterprise-schema.js'
import type { GatewayConfig } from '../config/load.js'
import { oauthPaths, tokenEndpointOf } from './endpoints.js'

/** ID-JAG draft §7: a resource authorization server that accepts ID-JAGs lists this profile. */
const ID_JAG_GRANT_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag'

export function authorizationServerMetadata(config: GatewayConfig): Record<string, unknown> {
  const base = config.issuer
  // private_key_jwt for metadata-document clients that declare it (CIMD-38, ASM-04, REV-04) and
  // pre-registered clients given keys.
  const assertions = config.cimd.enabled || config.clients.some((c) => c.tokenEndpointAuthMethod === 'private_key_jwt')
  // client_credentials only where some client may use it (CC-01): metadata says what works. That
  // is a pre-registered machine client, or an operator's opt-in for registration or for documents.
  const machineClients =
    config.clients.some((c) => c.grantTypes.includes('client_credentials')) ||
    (config.registration.enabled && config.registration.clientCredentials !== undefined) ||
    (config.cimd.enabled && config.cimd.trust.allow.some((e) => e.clientCredentials !== undefined))
  // XAA-09: the jwt-bearer grant and the ID-JAG profile, only where an IdP is trusted.
  const idJag = config.enterpriseAuthorization.issuers.length > 0
  // WIF-06: the same grant for workloads, only where a workload issuer is trusted.
  const jwtBearer = idJag || config.workloadIdentity.issuers.length > 0
  const authMethods = ['none', 'client_secret_basic', 'client_secret_post', ...(assertions ? ['private_key_jwt'] : [])]
  // Introspection is for operator-registered resource servers only (INT-01), which use secrets.
  const introspectionMethods = ['client_secret_basic', 'client_secret_post']
  const signingAlgs = [...config.cimd.privateKeyJwt.algorithms]
  const scopes = [...new Set(config.resources.flatMap((r) => r.scopes.map((s) => s.name)))]
  return {
    issuer: config.issuer,
    authorization_endpoint: `${base}${oauthPaths.authorize}`,
    token_endpoint: tokenEndpointOf(base),
    jwks_uri: `${base}${oauthPaths.jwks}`,
    revocation_endpoint: `${base}${oauthPaths.revoke}`,
    introspection_endpoint: `${base}${oauthPaths.introspect}`,
    // RFC 7591 §3: only when registration is on (DCR-01); absent otherwise.
    ...(config.registration.enabled && { registration_endpoint: `${base}${oauthPaths.register}` }),
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: [
      'authorization_code',
      'refresh_token',
      ...(machineClients ? ['client_credentials'] : []),
      ...(jwtBearer ? [JWT_BEARER_GRANT] : []),
    ],
    ...(idJag && { authorization_grant_profiles_supported: [ID_JAG_GRANT_PROFILE] }),
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_methods_supported: authMethods,
    introspection_endpoint_auth_methods_supported: introspectionMethods,
    // RFC 8414 §2: required when private_key_jwt is listed; the algorithms a client assertion may use.
    ...(assertions && {
      token_endpoint_auth_signing_alg_values_supported: signingAlgs,
      revocation_endpoint_auth_signing_alg_values_supported: signingAlgs,
    }),
    // offline_access is listed here only, never in resource metadata (OQ-12, MCPA-F04).
    scopes_supported: [...scopes, 'offline_access'],
    authorization_response_iss_parameter_supported: true,
    // DPOP-10: proofs are accepted at the token endpoint by every grant.
    dpop_signing_alg_values_supported: [...config.dpop.algorithms],
    // CIMD-32: published only when metadata documents are accepted.
    ...(config.cimd.enabled && { client_id_metadata_document_supported: true }),
    protected_resources: config.resources.map((r) => r.uri),
  }
}

/** RFC 8414 §3.1: the well-known path is inserted before the issuer's own path. */
export function metadataPath(issuer: string): string {
  const path = new URL(issuer).pathname
  return `/.well-known/oauth-authorization-server${path === '/' ? '' : path}`
}
