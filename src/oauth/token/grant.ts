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
}

export type GrantHandler = (request: TokenRequest) => Promise<TokenAnswer>
