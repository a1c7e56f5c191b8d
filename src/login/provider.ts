/**
 * Who a person is, as a login provider established it. Providers are pluggable: `static`
 * (users in the YAML, a password form) and `oidc` (the company's OpenID Provider, a redirect:
 * see oidc.ts), without the authorization endpoint knowing more than these shapes.
 */
export interface Identity {
  /** Stable, issuer-scoped subject; never URL-shaped, so it cannot pass for a client id (BCP-12). */
  readonly sub: string
  readonly name?: string
  /** Only a verified address (oidc: email_verified, unless the operator turned that off). */
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
