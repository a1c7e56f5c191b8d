/** The shape of one grant type's handler at the token endpoint (OAuth 2.1 §3.2.2). */
import type { AuditContext } from '../../audit/events.js'
import type { OAuthClient } from '../clients/registry.js'
import type { Params } from '../params.js'
import type { TokenAnswer } from './issue.js'

export interface TokenRequest {
  form: Params
  /** The client, already authenticated (or identified, for a public client). */
  client: OAuthClient
  context: AuditContext
  /** The key of a valid DPoP proof sent with the request (RFC 9449 §5); the token gets bound to it. */
  dpopJkt: string | undefined
}

export type GrantHandler = (request: TokenRequest) => Promise<TokenAnswer>
