/**
 * The OAuthClientProvider an MCP client application implements, kept in memory, for tests
 * that drive the SDK's own auth(): it remembers what the SDK hands it and exposes the
 * authorization URL the SDK would open in a browser.
 */
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js'
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js'

export interface ProviderOptions {
  redirectUrl: string
  /** Pre-registered client information; undefined lets the SDK register or use a metadata URL. */
  info?: OAuthClientInformationMixed
  clientMetadata?: Partial<OAuthClientMetadata>
  clientMetadataUrl?: string
  state?: string
}

export class MemoryClientProvider implements OAuthClientProvider {
  info: OAuthClientInformationMixed | undefined
  savedTokens: OAuthTokens | undefined
  verifier = ''
  authorizationUrl: URL | undefined
  readonly redirectUrl: string
  readonly clientMetadataUrl: string | undefined

  constructor(private readonly options: ProviderOptions) {
    this.redirectUrl = options.redirectUrl
    this.info = options.info
    this.clientMetadataUrl = options.clientMetadataUrl
  }

  get clientMetadata(): OAuthClientMetadata {
    return { client_name: 'Test MCP client', redirect_uris: [this.redirectUrl], token_endpoint_auth_method: 'none', ...this.options.clientMetadata }
  }
  state() {
    return this.options.state ?? 'state-123'
  }
  clientInformation() {
    return this.info
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info
  }
  tokens() {
    return this.savedTokens
  }
  saveTokens(tokens: OAuthTokens) {
    this.savedTokens = tokens
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url
  }
  saveCodeVerifier(v: string) {
    this.verifier = v
  }
  codeVerifier() {
    return this.verifier
  }
}
