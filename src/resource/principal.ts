import type { VerifiedToken } from '../keys/tokens.js'

/** Who is calling, as established by the bearer check of one request. */
export interface Principal {
  readonly sub: string
  readonly clientId: string | undefined
  readonly scopes: ReadonlySet<string>
  readonly token: VerifiedToken
}

export function principalOf(token: VerifiedToken): Principal {
  return { sub: token.sub, clientId: token.clientId, scopes: token.scopes, token }
}
