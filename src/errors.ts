/**
 * Errors that reach a client, in the protocol's own form. Every error body the gateway writes
 * comes from one of these (the root error handler is the only writer).
 *
 * OAuth errors Each carries the wire code (RFC 6749 §5.2,
 * RFC 6750 §3.1, RFC 8707 §2), the HTTP status, a description safe to show the client, and a
 * log-only detail that never leaves the process (SEC-36: no internal details to requesters).
 * `redirectable` says whether the authorization endpoint may send it to the client's redirect
 * URI; it may only once client and redirect URI are verified (O21-09, SEC-26).
 */
export interface PublicErrorOptions {
  /** Logged, never sent. */
  detail?: string
  /** Response headers that belong to the error, e.g. a WWW-Authenticate challenge. */
  headers?: Readonly<Record<string, string>>
  redirectable?: boolean
  cause?: unknown
}

/** An error whose code, status and description are meant for the client. */
export class PublicError extends Error {
  override readonly name: string = 'PublicError'
  readonly detail: string | undefined
  readonly headers: Readonly<Record<string, string>>
  readonly redirectable: boolean

  constructor(
    readonly code: string,
    readonly status: number,
    readonly description: string,
    options: PublicErrorOptions = {},
  ) {
    super(description, { cause: options.cause })
    this.detail = options.detail
    this.headers = options.headers ?? {}
    this.redirectable = options.redirectable ?? false
  }

  /** The JSON body of RFC 6749 §5.2. */
  toJSON(): { error: string; error_description: string } {
    return { error: this.code, error_description: this.description }
  }
}

/** An error defined by OAuth (RFC 6749 §5.2, RFC 6750 §3.1, RFC 8707 §2). */
export class OAuthError extends PublicError {
  override readonly name: string = 'OAuthError'
}

const kind = (code: string, status: number) =>
  class extends OAuthError {
    override readonly name = code
    constructor(description: string, options?: PublicErrorOptions) {
      super(code, status, description, options)
    }
  }

const httpKind = (code: string, status: number) =>
  class extends PublicError {
    override readonly name = code
    constructor(description: string, options?: PublicErrorOptions) {
      super(code, status, description, options)
    }
  }

export class InvalidRequestError extends kind('invalid_request', 400) {}
export class InvalidClientError extends kind('invalid_client', 401) {}
export class InvalidGrantError extends kind('invalid_grant', 400) {}
export class UnauthorizedClientError extends kind('unauthorized_client', 400) {}
export class UnsupportedGrantTypeError extends kind('unsupported_grant_type', 400) {}
export class InvalidScopeError extends kind('invalid_scope', 400) {}
export class InvalidTargetError extends kind('invalid_target', 400) {}
export class AccessDeniedError extends kind('access_denied', 403) {}
export class InvalidTokenError extends kind('invalid_token', 401) {}
export class InsufficientScopeError extends kind('insufficient_scope', 403) {}
export class ServerError extends kind('server_error', 500) {}
export class TemporarilyUnavailableError extends kind('temporarily_unavailable', 503) {}
/** RFC 9449 §5 (token endpoint: 400) and §7.1 (resource: 401, with a DPoP challenge). */
export class InvalidDpopProofError extends kind('invalid_dpop_proof', 400) {}
export class InvalidDpopProofAtResourceError extends kind('invalid_dpop_proof', 401) {}
/** RFC 9449 §8.1 (token endpoint: 400) and §9 (resource: 401): retry with the DPoP-Nonce given. */
export class UseDpopNonceError extends kind('use_dpop_nonce', 400) {}
export class UseDpopNonceAtResourceError extends kind('use_dpop_nonce', 401) {}
/** RFC 7591 §3.2.2. */
export class InvalidRedirectUriError extends kind('invalid_redirect_uri', 400) {}
export class InvalidClientMetadataError extends kind('invalid_client_metadata', 400) {}

export class NotFoundError extends httpKind('not_found', 404) {}
export class ForbiddenError extends httpKind('forbidden', 403) {}
export class PayloadTooLargeError extends httpKind('payload_too_large', 413) {}
export class BadGatewayError extends httpKind('bad_gateway', 502) {}
export class GatewayTimeoutError extends httpKind('gateway_timeout', 504) {}
/** A rate limit or capacity limit; give a Retry-After header. */
export class TooManyRequestsError extends httpKind('too_many_requests', 429) {}

/**
 * A signed artefact refused by one named check (a client assertion, an ID-JAG, a DPoP proof).
 * Internal: the endpoint turns it into its protocol's error and logs `check` and `detail` only;
 * neither ever carries the artefact itself.
 */
export class CheckFailed extends Error {
  constructor(
    readonly check: string,
    /** Log-only. */
    readonly detail: string,
    what: string,
  ) {
    super(`${what} refused (${check}): ${detail}`)
  }
}
