/**
 * What the gateway presents to the upstream MCP server about itself and the caller, per resource
 * (`upstreamAuth`): a static secret header; a short-lived JWT the gateway signs (UPS-02) so that
 * the upstream can verify who is calling instead of trusting plain headers; or a token obtained by
 * RFC 8693 token exchange at the operator's token service (UPS-03, token-exchange.ts). The
 * client's own token never goes upstream (UPS-01: upstream.ts drops Authorization and DPoP first).
 *
 * Upstream JWTs carry typ upstream+jwt and the upstream's audience, so neither the gateway's
 * resource side (which requires at+jwt and its own resource URIs) nor another upstream accepts
 * one as an access token. One signature per call, cached per caller until shortly before expiry.
 */
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import type { AuditContext, AuditTrail } from '../audit/events.js'
import type { Resource } from '../config/load.js'
import type { SigningKey } from '../keys/keystore.js'
import type { Principal } from './principal.js'
import { TokenExchanger } from './token-exchange.js'

export interface UpstreamCredential {
  /** Lower-case header name. */
  name: string
  value: string
}

export interface UpstreamCredentials {
  /** A static header or none at once; a signed or exchanged token when it is ready. */
  (principal: Principal, context?: AuditContext): UpstreamCredential | undefined | Promise<UpstreamCredential | undefined>
  /** Releases outbound connections (the token service's), when there are any. */
  close(): Promise<void>
}

const UPSTREAM_JWT_TYPE = 'upstream+jwt'
/** A cached upstream token is replaced this long before it expires, so none arrives stale. */
const RENEW_BEFORE_SECONDS = 5
const MAX_CACHED = 10_000

export function createUpstreamCredentials(
  resource: Resource,
  issuer: string,
  signer: SigningKey | undefined,
  audit?: AuditTrail,
): UpstreamCredentials {
  const auth = resource.upstreamAuth
  const closeNothing = async () => {}
  if (auth?.header) {
    const credential = { name: auth.header.name.toLowerCase(), value: auth.header.value }
    return Object.assign(() => credential, { close: closeNothing })
  }
  if (!signer || (!auth?.jwt && !auth?.exchange)) return Object.assign(() => undefined, { close: closeNothing })
  const sign = (principal: Principal, audience: string, ttl: number) => signCallerJwt(signer, issuer, principal, audience, ttl)
  if (auth.exchange) {
    const exchanger = new TokenExchanger(resource.id, auth.exchange, sign, audit)
    const credentials = async (principal: Principal, context?: AuditContext) => ({
      name: 'authorization',
      value: await exchanger.authorization(principal, context),
    })
    return Object.assign(credentials, { close: () => exchanger.close() })
  }
  const audience = auth.jwt!.audience ?? new URL(resource.upstream).origin
  const ttl = auth.jwt!.ttlSeconds
  const cache = new Map<string, { value: string; renewAt: number }>()
  const credentials = async (principal: Principal) => {
    const token = principal.token
    const key = JSON.stringify([principal.sub, principal.clientId, [...principal.scopes].sort(), token.email, token.groups])
    const now = Math.floor(Date.now() / 1000)
    const cached = cache.get(key)
    if (cached && cached.renewAt > now) return { name: 'authorization', value: cached.value }
    const value = `Bearer ${await sign(principal, audience, ttl)}`
    if (cache.size >= MAX_CACHED) cache.clear()
    cache.set(key, { value, renewAt: now + ttl - RENEW_BEFORE_SECONDS })
    return { name: 'authorization', value }
  }
  return Object.assign(credentials, { close: closeNothing })
}

/**
 * A JWT about the caller (UPS-02): iss the gateway, the given aud, sub and client_id of the
 * caller, its scopes, email and groups when known, typ upstream+jwt, signed with the active key
 * of the published JWKS. Also the subject token of a token exchange (RFC 8693 §2.1).
 */
export async function signCallerJwt(signer: SigningKey, issuer: string, principal: Principal, audience: string, ttlSeconds: number): Promise<string> {
  const token = principal.token
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({
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
    .setExpirationTime(now + ttlSeconds)
    .setJti(randomUUID())
    .sign(signer.privateKey)
}
