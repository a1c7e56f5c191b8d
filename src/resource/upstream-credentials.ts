/**
 * What the gateway presents to the upstream MCP server about itself and the caller, per resource
 * (`upstreamAuth`): a static secret header, or a short-lived JWT the gateway signs (UPS-02) so
 * that the upstream can verify who is calling instead of trusting plain headers. The client's
 * own token never goes upstream (UPS-01: upstream.ts drops Authorization and DPoP first).
 *
 * Upstream JWTs carry typ upstream+jwt and the upstream's audience, so neither the gateway's
 * resource side (which requires at+jwt and its own resource URIs) nor another upstream accepts
 * one as an access token. One signature per call, cached per caller until shortly before expiry.
 */
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import type { Resource } from '../config/load.js'
import type { SigningKey } from '../keys/keystore.js'
import type { Principal } from './principal.js'

export interface UpstreamCredential {
  /** Lower-case header name. */
  name: string
  value: string
}

export type UpstreamCredentials = (principal: Principal) => Promise<UpstreamCredential | undefined>

const UPSTREAM_JWT_TYPE = 'upstream+jwt'
/** A cached upstream token is replaced this long before it expires, so none arrives stale. */
const RENEW_BEFORE_SECONDS = 5
const MAX_CACHED = 10_000

export function createUpstreamCredentials(resource: Resource, issuer: string, signer: SigningKey | undefined): UpstreamCredentials {
  const auth = resource.upstreamAuth
  if (auth?.header) {
    const credential = { name: auth.header.name.toLowerCase(), value: auth.header.value }
    return async () => credential
  }
  if (!auth?.jwt || !signer) return async () => undefined
  const audience = auth.jwt.audience ?? new URL(resource.upstream).origin
  const ttl = auth.jwt.ttlSeconds
  const cache = new Map<string, { value: string; renewAt: number }>()
  return async (principal) => {
    const token = principal.token
    const key = JSON.stringify([principal.sub, principal.clientId, [...principal.scopes].sort(), token.email, token.groups])
    const now = Math.floor(Date.now() / 1000)
    const cached = cache.get(key)
    if (cached && cached.renewAt > now) return { name: 'authorization', value: cached.value }
    const jwt = await new SignJWT({
      client_id: principal.clientId,
      scope: [...principal.scopes].join(' '),
      ...(token.email !== undefined && { email: token.email }),
      ...(token.groups !== undefined && { groups: [...token.groups] }),
    })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: UPSTREAM_JWT_TYPE })
      .setIssuer(issuer)
      .setSubject(principal.sub)
      .setAudience(audience)
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .setJti(randomUUID())
      .sign(signer.privateKey)
    const value = `Bearer ${jwt}`
    if (cache.size >= MAX_CACHED) cache.clear()
    cache.set(key, { value, renewAt: now + ttl - RENEW_BEFORE_SECONDS })
    return { name: 'authorization', value }
  }
}
