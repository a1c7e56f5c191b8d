/**
 * The `oidc` login provider: signs people in at the company's OpenID Provider through
 * openid-client (authorization code flow with PKCE, `state` and `nonce`, ID token validation,
 * RFC 9207 `iss` check). Nothing here is hand-written OIDC: this file picks the parameters,
 * keeps the discovered metadata and turns claims into an Identity.
 *
 * Discovery happens on first use and is cached, so the gateway starts while the IdP is down; a
 * failed discovery is retried after a short back-off, and every IdP failure becomes an
 * UpstreamLoginError the authorization endpoint can show as a page (never a 500).
 */
import { readFileSync } from 'node:fs'
import * as oidc from 'openid-client'
import { Agent, fetch as undiciFetch } from 'undici'
import type { OidcProviderConfig } from '../config/login-schema.js'
import type { Identity } from './provider.js'

/** How an upstream login failed, as the client will hear it (RFC 6749 §4.1.2.1). */
export type UpstreamFailure =
  /** The IdP said no (the person cancelled, or may not use the gateway there): access_denied. */
  | 'denied'
  /** The IdP could not be reached or answered with an HTTP error: temporarily_unavailable. */
  | 'unavailable'
  /** The IdP's answer was invalid (bad ID token, wrong issuer or nonce, refused code): server_error. */
  | 'invalid'

export class UpstreamLoginError extends Error {
  override readonly name = 'UpstreamLoginError'
  constructor(
    readonly failure: UpstreamFailure,
    /** Log-only detail; never shown (SEC-36). */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(detail, options)
  }
}

/** What the callback needs to finish a login; kept server-side between the redirect and the callback. */
export interface UpstreamChecks {
  state: string
  nonce: string
  codeVerifier: string
  /** Sent as `max_age`; the ID token's `auth_time` is then checked against it. */
  maxAge?: number | undefined
}

export interface UpstreamLogin {
  identity: Identity
  /** When the person authenticated at the IdP (ID token `auth_time`), seconds since the epoch. */
  authTime: number
}

/** A failed discovery is not retried before this (every page view would otherwise wait on a dead IdP). */
const DISCOVERY_BACKOFF_MS = 5_000

export class OidcLoginProvider {
  readonly kind = 'oidc' as const
  readonly id: string
  readonly name: string
  /** The redirect URI to register at the IdP. */
  readonly redirectUri: string
  readonly #settings: OidcProviderConfig
  readonly #fetch: oidc.CustomFetch | undefined
  #discovered: oidc.Configuration | undefined
  #discovering: Promise<oidc.Configuration> | undefined
  #failedAt = 0
  #lastFailure: UpstreamLoginError | undefined

  constructor(settings: OidcProviderConfig, publicUrl: string) {
    this.#settings = settings
    this.id = settings.id
    this.name = settings.name
    this.redirectUri = callbackUrl(publicUrl, settings.id)
    if (settings.caFile !== undefined) {
      // Read at startup: a missing CA file is a deployment error, not something to find at first login.
      const dispatcher = new Agent({ connect: { ca: readFileSync(settings.caFile, 'utf8') } })
      const viaAgent = (url: string, options: oidc.CustomFetchOptions) =>
        undiciFetch(url, { ...(options as Parameters<typeof undiciFetch>[1]), dispatcher })
      this.#fetch = viaAgent as unknown as oidc.CustomFetch
    }
  }

  /**
   * The origin the browser is sent to: the authorization endpoint's once discovered, the
   * issuer's before. The consent page's CSP `form-action` must allow it (Chromium applies
   * form-action to the redirect after a form POST).
   */
  get authorizationOrigin(): string {
    const endpoint = this.#discovered?.serverMetadata().authorization_endpoint
    return new URL(endpoint ?? this.#settings.issuer).origin
  }

  /**
   * Discovery, waited for at most `waitMs` when not done yet: the consent page's CSP
   * `form-action` must name the authorization endpoint's origin, known only once discovered,
   * and it can differ from the issuer's (e.g. Amazon Cognito), in which case Chromium blocks
   * the click's redirect to an origin the page did not name. A failure is left for the click to
   * show; past `waitMs` discovery goes on in the background (a page rendered then names the
   * issuer's origin only).
   */
  async prefetch(waitMs: number): Promise<void> {
    if (this.#discovered) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.#configuration().then(
        () => {},
        () => {},
      ),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, waitMs)
      }),
    ])
    clearTimeout(timer)
  }

  /** The authorization request URL for a new login; the checks go into the server-side state record. */
  async start(maxAge: number | undefined): Promise<{ url: URL; checks: UpstreamChecks }> {
    const configuration = await this.#configuration()
    const checks: UpstreamChecks = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
      ...(maxAge !== undefined && { maxAge }),
    }
    const url = oidc.buildAuthorizationUrl(configuration, {
      ...this.#settings.authorizationParams,
      redirect_uri: this.redirectUri,
      scope: this.#settings.scopes.join(' '),
      state: checks.state,
      nonce: checks.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
      ...(maxAge !== undefined && { max_age: String(maxAge) }),
    })
    return { url, checks }
  }

  /**
   * Finishes a login from the callback URL (built from publicUrl, never from Host): openid-client
   * checks the response (`state` exactly, RFC 9207 `iss`), redeems the code with the PKCE
   * verifier and validates the ID token (signature, `iss`, `aud`, `nonce`, `auth_time` vs max_age).
   */
  async complete(callback: URL, checks: UpstreamChecks): Promise<UpstreamLogin> {
    const configuration = await this.#configuration()
    let claims: Record<string, unknown>
    try {
      const tokens = await oidc.authorizationCodeGrant(configuration, callback, {
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        pkceCodeVerifier: checks.codeVerifier,
        ...(checks.maxAge !== undefined && { maxAge: checks.maxAge }),
      })
      const idToken = tokens.claims()
      if (!idToken) throw new UpstreamLoginError('invalid', 'the IdP returned no ID token')
      // Many IdPs release email and groups only at UserInfo; the ID token's claims win where both speak.
      const userInfo = configuration.serverMetadata().userinfo_endpoint
        ? await oidc.fetchUserInfo(configuration, tokens.access_token, idToken.sub)
        : {}
      // email_verified speaks for the email of its own source only: an unverified ID token
      // address must not borrow UserInfo's email_verified (made for another address).
      const emailSource: Record<string, unknown> = idToken[this.#settings.claims.email] !== undefined ? idToken : userInfo
      claims = { ...userInfo, ...idToken, email_verified: emailSource.email_verified }
    } catch (err) {
      throw classify(err)
    }
    return { identity: this.#identity(claims), authTime: authTimeOf(claims) }
  }

  #identity(claims: Record<string, unknown>): Identity {
    const names = this.#settings.claims
    const subject = claims[names.subject]
    if (typeof subject !== 'string' || subject === '' || subject.length > 255) {
      throw new UpstreamLoginError('invalid', `the ${names.subject} claim is missing or not a string`)
    }
    const email = claims[names.email]
    const verified = !this.#settings.requireVerifiedEmail || claims.email_verified === true
    const name = claims[names.name]
    return {
      // Issuer-scoped and never URL-shaped (BCP-12): the provider id, then the IdP's own subject.
      sub: `${this.id}:${subject}`,
      ...(isPlainAddress(email) && verified && { email: email.toLowerCase() }),
      ...(typeof name === 'string' && name !== '' && { name: name.slice(0, MAX_CLAIM_LENGTH) }),
      groups: groupsOf(claims[names.groups]),
      provider: this.id,
    }
  }

  #configuration(): Promise<oidc.Configuration> {
    if (this.#discovered) return Promise.resolve(this.#discovered)
    if (this.#discovering) return this.#discovering
    if (this.#lastFailure && Date.now() - this.#failedAt < DISCOVERY_BACKOFF_MS) {
      const { failure, detail } = this.#lastFailure
      return Promise.reject(new UpstreamLoginError(failure, `${detail} (not retried for ${DISCOVERY_BACKOFF_MS / 1000} s)`))
    }
    const s = this.#settings
    const auth =
      s.clientSecret === undefined
        ? oidc.None()
        : s.tokenEndpointAuthMethod === 'client_secret_post'
          ? oidc.ClientSecretPost(s.clientSecret)
          : oidc.ClientSecretBasic(s.clientSecret)
    this.#discovering = oidc
      .discovery(new URL(s.issuer), s.clientId, { redirect_uris: [this.redirectUri] }, auth, {
        timeout: s.timeoutSeconds,
        ...(this.#fetch && { [oidc.customFetch]: this.#fetch }),
      })
      .then(
        (configuration) => {
          // OIDC Core 3.1.3.7 lets a client trust TLS alone for an ID token from the token
          // endpoint, and openid-client then checks no signature: an unsigned (alg none) or
          // HS256 token keyed with our client secret would pass. Verify every ID token against
          // the IdP's published keys: asymmetric signatures only.
          oidc.enableNonRepudiationChecks(configuration)
          this.#discovered = configuration
          return configuration
        },
        (err: unknown) => {
          this.#failedAt = Date.now()
          const failure = classify(err)
          this.#lastFailure = new UpstreamLoginError(failure.failure, `discovery of ${s.issuer}: ${failure.detail}`, { cause: err })
          throw this.#lastFailure
        },
      )
      .finally(() => {
        this.#discovering = undefined
      })
    return this.#discovering
  }
}

export function callbackUrl(publicUrl: string, providerId: string): string {
  return `${publicUrl.replace(/\/$/, '')}/oauth/callback/${providerId}`
}

function classify(err: unknown): UpstreamLoginError {
  if (err instanceof UpstreamLoginError) return err
  if (err instanceof oidc.AuthorizationResponseError) {
    // The IdP answered the authorization request with an error (RFC 6749 §4.1.2.1).
    const failure = err.error === 'temporarily_unavailable' ? 'unavailable' : err.error === 'server_error' ? 'invalid' : 'denied'
    return new UpstreamLoginError(failure, `the IdP answered ${err.error}`, { cause: err })
  }
  if (err instanceof oidc.ResponseBodyError) {
    return new UpstreamLoginError(err.status >= 500 ? 'unavailable' : 'invalid', `the IdP refused: ${err.error} (${err.status})`, { cause: err })
  }
  // fetch() rejects with a TypeError when the connection fails (refused, reset, TLS, DNS).
  if (err instanceof TypeError) {
    const cause = (err.cause as { code?: string } | undefined)?.code
    return new UpstreamLoginError('unavailable', `the IdP cannot be reached${cause ? ` (${cause})` : ''}`, { cause: err })
  }
  if (err instanceof oidc.ClientError) {
    const unavailable = ['OAUTH_TIMEOUT', 'OAUTH_ABORT', 'OAUTH_RESPONSE_IS_NOT_CONFORM', 'OAUTH_RESPONSE_IS_NOT_JSON'].includes(err.code ?? '')
    return new UpstreamLoginError(unavailable ? 'unavailable' : 'invalid', `${err.code ?? 'error'}: ${err.message}`, { cause: err })
  }
  return new UpstreamLoginError('invalid', 'unexpected failure', { cause: err })
}

/** Longest email, name or group name taken from the IdP (RFC 5321 bounds an address to 254). */
const MAX_CLAIM_LENGTH = 254

/**
 * An email the access rules may read: one `@`, no whitespace, control, format (bidi) or list
 * characters (`,` `;` `<` `>` `"` `\`), bounded. Anything else is treated as no email at all, so
 * an `emails`/`emailDomains` rule refuses it instead of guessing where its domain starts.
 */
function isPlainAddress(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_CLAIM_LENGTH && /^[^\s@,;<>"\\\p{C}]+@[^\s@,;<>"\\\p{C}]+$/u.test(value)
}

/**
 * Group names as strings; a single string counts as one group (some IdPs send that for one).
 * Over-long names are dropped, never cut (a cut name could match a rule the whole one does not).
 */
function groupsOf(value: unknown): string[] {
  if (typeof value === 'string') return value !== '' && value.length <= MAX_CLAIM_LENGTH ? [value] : []
  if (!Array.isArray(value)) return []
  return value.filter((g): g is string => typeof g === 'string' && g !== '' && g.length <= MAX_CLAIM_LENGTH).slice(0, 1000)
}

function authTimeOf(claims: Record<string, unknown>): number {
  const t = claims.auth_time
  return typeof t === 'number' && Number.isFinite(t) ? Math.floor(t) : Math.floor(Date.now() / 1000)
}
