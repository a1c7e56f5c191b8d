/**
 * The resource side's check of who is calling, in `onRequest`, before the body is read
 * (MCPA-58): Origin (MCPT-01), bearer token (MCPA-51..57, JWT-03), audience (MCPA-53, MCPA-59,
 * RI-08), session ownership (MCPS-10..12). Scopes are the policy step's, once the body says
 * which call this is.
 * Refusals are thrown as PublicErrors carrying their challenge; the root handler writes them.
 */
import type { AuditContext, AuditEvent, AuditTrail } from '../audit/events.js'
import type { Resource } from '../config/load.js'
import {
  ForbiddenError,
  InvalidDpopProofAtResourceError,
  InvalidRequestError,
  UseDpopNonceAtResourceError,
  InvalidTokenError,
  NotFoundError,
  TemporarilyUnavailableError,
} from '../errors.js'
import { DpopRejected, dpopHeaderOf, type DpopProofs } from '../keys/dpop.js'
import { TokenRejectedError, type AccessTokenVerifier, type VerifiedToken } from '../keys/tokens.js'
import { extractBearer } from './bearer.js'
import { bearerChallenge, type BearerErrorCode, type DpopErrorCode } from './challenge.js'
import { principalOf, type Principal } from './principal.js'
import type { SessionBindings } from './sessions.js'
import type { IncomingMessage } from 'node:http'

export interface GuardDeps {
  resource: Resource
  verifier: AccessTokenVerifier
  sessions: SessionBindings
  /** Origins allowed besides the configured ones: the gateway's own. */
  ownOrigin: string
  /** Every refused bearer token is a `bearer.refused` event. */
  audit?: AuditTrail
  /** DPoP proofs of bound tokens (RFC 9449 §7), with their replay cache in the shared store. */
  dpop: DpopProofs
  dpopAlgorithms: readonly string[]
}

/**
 * The check of one request: the principal, or a promise of it when the check must wait (a token
 * not seen before, a DPoP proof's replay record, a session lookup). A call with a known bearer
 * token and no session is checked without waiting. Refusals are thrown (or rejected).
 */
export type Guard = (raw: IncomingMessage, context?: AuditContext) => Principal | Promise<Principal>

type BearerRefusal = Extract<AuditEvent, { type: 'bearer.refused' }>['reason']

export function createGuard({ resource, verifier, sessions, ownOrigin, audit, dpop, dpopAlgorithms }: GuardDeps): Guard {
  const allowedOrigins = new Set([ownOrigin, ...resource.allowedOrigins])
  const requiredScopes = resource.requiredScopes
  const challenge = (error?: BearerErrorCode, description?: string, dpopError?: DpopErrorCode) => ({
    'www-authenticate': bearerChallenge({
      resourceMetadataUrl: resource.metadataUrl,
      scopes: requiredScopes,
      ...(error && !dpopError && { error }),
      ...(description && !dpopError && { description }),
      dpop: { algorithms: dpopAlgorithms, ...(dpopError && { error: dpopError, ...(description && { description }) }) },
    }),
  })
  /** DPOP-05..07: the refusal of a DPoP-scheme request, in a DPoP challenge. */
  const proofRefused = (description: string, detail: string) =>
    new InvalidDpopProofAtResourceError(description, { headers: challenge(undefined, description, 'invalid_dpop_proof'), detail })

  /** The refusal for a token that failed verification. */
  const verificationRefused = (err: unknown, refused: (reason: BearerRefusal) => void): Error => {
    if (err instanceof TokenRejectedError && err.reason === 'keys_unavailable') {
      return new TemporarilyUnavailableError('the token issuer keys cannot be loaded; try again', { cause: err })
    }
    const reason = err instanceof TokenRejectedError ? err.reason : undefined
    refused(reason === 'expired' || reason === 'malformed' ? reason : 'invalid')
    const description = err instanceof TokenRejectedError ? err.message : 'the access token is invalid'
    return new InvalidTokenError(description, {
      headers: challenge('invalid_token', description),
      detail: err instanceof TokenRejectedError ? err.reason : undefined,
      cause: err,
    })
  }

  return function guard(raw, context = {}) {
    const refused = (reason: BearerRefusal) => audit?.record({ type: 'bearer.refused', resource: resource.id, reason }, context)
    const origin = raw.headers.origin
    if (origin !== undefined && !allowedOrigins.has(origin)) {
      throw new ForbiddenError('this origin may not call the MCP endpoint', { detail: `origin ${origin}` })
    }

    const bearer = extractBearer(raw)
    if (bearer.kind === 'none') {
      refused('missing')
      throw new InvalidTokenError('an access token is required', { headers: challenge() })
    }
    if (bearer.kind === 'invalid') {
      refused('malformed')
      throw new InvalidRequestError(bearer.description, { headers: challenge('invalid_request', bearer.description) })
    }

    let known: VerifiedToken | undefined
    try {
      known = verifier.verifyCached(bearer.token)
    } catch (err) {
      throw verificationRefused(err, refused)
    }
    if (known !== undefined) return afterVerification(raw, bearer, principalOf(known), refused)
    return verifier.verify(bearer.token).then(
      (verified) => afterVerification(raw, bearer, principalOf(verified), refused),
      (err: unknown) => {
        throw verificationRefused(err, refused)
      },
    )
  }

  /** Audience, DPoP binding and session ownership of a verified token. */
  function afterVerification(
    raw: IncomingMessage,
    bearer: Extract<ReturnType<typeof extractBearer>, { kind: 'token' }>,
    principal: Principal,
    refused: (reason: BearerRefusal) => void,
  ): Principal | Promise<Principal> {
    // RFC 8707 §2, MCPA-59: a genuine token for another resource is still not valid here.
    if (!principal.token.audiences.includes(resource.uri)) {
      refused('audience')
      const description = 'the access token was not issued for this resource'
      throw new InvalidTokenError(description, { headers: challenge('invalid_token', description), detail: 'audience' })
    }

    const bound = principal.token.jkt
    if (bearer.scheme === 'bearer' && bound !== undefined) {
      // DPOP-06: a bound token sent as a bearer token is refused: whoever holds it lacks the key.
      refused('invalid')
      const description = 'this access token is DPoP-bound: send it with the DPoP scheme and a proof'
      throw new InvalidTokenError(description, { headers: challenge('invalid_token', description, 'invalid_token'), detail: 'dpop-bound token as bearer' })
    }
    if (bearer.scheme === 'dpop') return checkProof(raw, bearer.token, bound, refused).then(() => ownsSession(raw, principal))
    return ownsSession(raw, principal)
  }

  async function checkProof(raw: IncomingMessage, token: string, bound: string | undefined, refused: (reason: BearerRefusal) => void): Promise<void> {
    if (bound === undefined) {
      refused('invalid')
      const description = 'this access token is not DPoP-bound: send it with the Bearer scheme'
      throw new InvalidTokenError(description, { headers: challenge('invalid_token', description, 'invalid_token'), detail: 'unbound token as dpop' })
    }
    const header = dpopHeaderOf(raw.rawHeaders)
    if ('count' in header) {
      refused('invalid')
      throw proofRefused('send exactly one DPoP header with the request', `dpop headers: ${header.count}`)
    }
    let jkt: string
    try {
      jkt = (await dpop.verify(header.proof, { method: raw.method ?? '', url: resource.uri, accessToken: token })).jkt
    } catch (err) {
      if (!(err instanceof DpopRejected)) throw new TemporarilyUnavailableError('DPoP replay state is unavailable; try again', { cause: err })
      if (err.check === 'nonce' && dpop.nonces) {
        // RFC 9449 §9: not a failure of the client, a round trip to learn the nonce.
        const description = 'send the DPoP proof again with the nonce given'
        throw new UseDpopNonceAtResourceError(description, {
          headers: { ...challenge(undefined, description, 'use_dpop_nonce'), 'dpop-nonce': await dpop.nonces.current() },
          detail: err.detail,
        })
      }
      refused('invalid')
      throw proofRefused('the DPoP proof is not acceptable', `dpop ${err.check}: ${err.detail}`)
    }
    // DPOP-05: the proof is by the key the token is bound to.
    if (jkt !== bound) {
      refused('invalid')
      throw proofRefused('the DPoP proof is by another key than the token is bound to', 'dpop cnf.jkt mismatch')
    }
  }

  /** MCPS-10..12: the session named belongs to this principal; no session, nothing to wait for. */
  function ownsSession(raw: IncomingMessage, principal: Principal): Principal | Promise<Principal> {
    const sessionId = raw.headers['mcp-session-id']
    if (typeof sessionId !== 'string') return principal
    return sessions.check(sessionId, principal).then(
      (owned) => {
        // Unknown and foreign sessions look the same, so a session id cannot be probed (MCPS-11).
        if (!owned) throw new NotFoundError('session not found', { detail: 'session not bound to this principal' })
        return principal
      },
      (err: unknown) => {
        throw new TemporarilyUnavailableError('session state is unavailable; try again', { cause: err })
      },
    )
  }
}
