/**
 * RFC 9728 Protected Resource Metadata for one resource (PRM-01..05, MCPA-07, MCPA-10).
 * `resource` is the configured public URL, never derived from the request (PRM-05, BCP-13);
 * members with no value are omitted (PRM-02); `offline_access` is never listed (MCPA-F04).
 */
import type { Resource } from '../config/load.js'

export function protectedResourceMetadata(resource: Resource, issuer: string, dpopAlgorithms: readonly string[]): Record<string, unknown> {
  const scopes = resource.scopes.map((s) => s.name).filter((s) => s !== 'offline_access')
  return {
    resource: resource.uri,
    authorization_servers: [issuer],
    ...(scopes.length > 0 && { scopes_supported: scopes }),
    bearer_methods_supported: ['header'],
    // RFC 9728 §2: DPoP-bound tokens are accepted (DPOP-05), never required of every client.
    dpop_signing_alg_values_supported: [...dpopAlgorithms],
    resource_name: resource.name,
    ...(resource.documentation && { resource_documentation: resource.documentation }),
  }
}
