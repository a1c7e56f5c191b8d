/**
 * Who a person is, as a login provider established it. Providers are pluggable: `static`
 * (users in the YAML) now, upstream OIDC later, without touching the authorization endpoint.
 */
export interface Identity {
  /** Stable, issuer-scoped subject; never URL-shaped, so it cannot pass for a client id (BCP-12). */
  readonly sub: string
  readonly name?: string
  readonly email?: string
  readonly groups: readonly string[]
  /** Which provider vouched for it. */
  readonly provider: string
}

export interface PasswordLoginProvider {
  readonly id: string
  readonly kind: 'password'
  /** The identity, or undefined for unknown users and wrong passwords alike. */
  authenticate(username: string, password: string): Promise<Identity | undefined>
}

export type LoginProvider = PasswordLoginProvider
