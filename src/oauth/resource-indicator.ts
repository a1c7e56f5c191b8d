/**
 * RFC 8707 `resource`: which protected MCP endpoint a token is for. Scheme and host compare
 * case-insensitively and one trailing slash is tolerated (MCPA-49, MCPA-50, OQ-07); the token's
 * `aud` is always the canonical form. Omitted → the default resource (RI-06, OQ-06).
 */
import type { GatewayConfig, Resource } from '../config/load.js'
import { InvalidTargetError } from '../errors.js'

export function resolveResource(
  config: Pick<GatewayConfig, 'resources' | 'defaultResource'>,
  requested: string | undefined,
  redirectable = false,
): Resource {
  if (requested === undefined) {
    if (config.defaultResource) return config.defaultResource
    throw new InvalidTargetError('name the MCP server with the resource parameter', { redirectable })
  }
  const wanted = comparable(requested)
  const match = wanted === undefined ? undefined : config.resources.find((r) => comparable(r.uri) === wanted)
  if (!match) throw new InvalidTargetError('the resource is not served by this gateway', { redirectable, detail: requested })
  return match
}

function comparable(uri: string): string | undefined {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return undefined
  }
  if (url.hash || uri.includes('#')) return undefined // RI-01: no fragment
  const path = url.pathname.length > 1 && url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname
  return `${url.protocol}//${url.host}${path}${url.search}`
}
