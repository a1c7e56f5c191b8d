/**
 * The OAuthClient of a metadata document: what the gateway enforces is the effective metadata
 * (after the operator's policy); the fingerprints are of the document as published (SEC-23).
 */
import type { MachineLimitsConfig } from '../../../config/cimd-schema.js'
import type { OAuthClient } from '../registry.js'
import { grantTypesOf, type Metadata } from './document.js'
import { fingerprintsOf } from './fingerprint.js'
import type { ClientKeySource, PublicKeySet } from '../../../policy/client-public-keys.js'

const UNSAFE_TEXT = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g

/**
 * The client the gateway enforces (the effective metadata), fingerprinted as published (the
 * document). `machine`: the clientCredentials limits of the trust entry that admitted it (CC-01).
 */
export function toClient(clientId: string, host: string, document: Metadata, meta: Metadata, machine?: MachineLimitsConfig): OAuthClient {
  const name = typeof meta.client_name === 'string' ? meta.client_name.replace(UNSAFE_TEXT, '').trim() : ''
  const privateKeyJwt = meta.token_endpoint_auth_method === 'private_key_jwt'
  const keys: ClientKeySource | undefined = !privateKeyJwt
    ? undefined
    : meta.jwks !== undefined
      ? { jwks: meta.jwks as PublicKeySet }
      : { jwksUri: meta.jwks_uri as string }
  const { fingerprint, displayFingerprint } = fingerprintsOf(document)
  return {
    clientId,
    // OQ-03: a missing name shows the verified host instead.
    name: name || host,
    // A machine-only document (client_credentials alone) has none.
    redirectUris: Object.freeze([...((meta.redirect_uris as string[] | undefined) ?? [])]),
    authMethod: privateKeyJwt ? 'private_key_jwt' : 'none',
    grantTypes: Object.freeze(grantTypesOf(meta)),
    ...(machine &&
      grantTypesOf(meta).includes('client_credentials') && {
        machine: { ...(machine.resources && { resources: machine.resources }), ...(machine.scopes && { scopes: machine.scopes }) },
      }),
    source: 'cimd',
    verifiedAs: `client id hosted at ${host}`,
    ...(keys && { keys }),
    ...(privateKeyJwt && typeof meta.token_endpoint_auth_signing_alg === 'string' && { signingAlg: meta.token_endpoint_auth_signing_alg }),
    fingerprint,
    displayFingerprint,
    // RFC 9449 §5.2: the client declares it always wants bound tokens (DPOP-09).
    ...(meta.dpop_bound_access_tokens === true && { dpopBound: true }),
    verifySecret: () => false,
  }
}
