/**
 * Where the authorization server's endpoints live, in one place: the routes, the RFC 8414
 * metadata and the accepted client assertion audiences (RFC 7523 §3) all read them from here.
 */
export const oauthPaths = {
  authorize: '/oauth/authorize',
  token: '/oauth/token',
  jwks: '/oauth/jwks',
  revoke: '/oauth/revoke',
  introspect: '/oauth/introspect',
  register: '/oauth/register',
  logout: '/oauth/logout',
  /** A person's own page: the applications they allowed, each revocable. */
  account: '/account',
} as const

/** The token endpoint URL; also an accepted client assertion audience (RFC 7523 §3). */
export const tokenEndpointOf = (issuer: string) => `${issuer}${oauthPaths.token}`
