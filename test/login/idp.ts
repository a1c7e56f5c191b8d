/**
 * A real OpenID Provider (oidc-provider) on a loopback https server, the upstream IdP of the
 * login tests, with a test CA the gateway is given through `caFile`. Its development login form
 * accepts any login name; the accounts below give claims to some of them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { Test } from 'tap'
import { exportJWK } from 'jose'
import { Provider, type Configuration } from 'oidc-provider'
import { makeTestCertificates } from '../cimd/servers.js'
import { reservePort } from '../helpers/ports.js'
import { rsaKeyPair } from '../fixtures/rsa-keys.js'

export interface TestAccount {
  email?: string
  email_verified?: boolean
  name?: string
  groups?: string[]
}

export const ACCOUNTS: Readonly<Record<string, TestAccount>> = {
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Example', groups: ['engineering', 'mcp-users'] },
  bob: { email: 'bob@example.com', email_verified: true, name: 'Bob Example', groups: ['sales'] },
  mallory: { email: 'mallory@evil.example', email_verified: true, name: 'Mallory', groups: ['mcp-users'] },
  /** Claims an allowed address the IdP never verified. */
  eve: { email: 'eve@example.com', email_verified: false, name: 'Eve', groups: [] },
}

export const IDP_CLIENT_ID = 'gatehouse'
export const IDP_CLIENT_SECRET = 'gatehouse-test-secret-0123456789abcdef'

export interface TestIdp {
  /** https://localhost:PORT */
  issuer: string
  port: number
  caFile: string
  /** The origin of the authorization endpoint it advertises (the issuer's unless `separateAuthorizationOrigin`). */
  authorizationOrigin: string
  /** The path of every request it received, in order (e.g. to see that discovery happened). */
  requests: string[]
  /** Stops accepting connections (the IdP is down: connecting is refused); `start` brings it back on the same port. */
  stop(): Promise<void>
  start(): Promise<void>
}

export interface TestIdpOptions {
  redirectUris: string[]
  /** A port the caller reserved (reservePort); default a new reservation. */
  port?: number
  /** The IdP asks for consent on its own page (default: a first-party client, no consent prompt). */
  consentPrompt?: boolean
  /**
   * Advertise the authorization endpoint on a second listener, https://127.0.0.1:OTHER-PORT,
   * serving the same provider (like an IdP whose login pages live on another host than its issuer).
   */
  separateAuthorizationOrigin?: boolean
}

export async function startTestIdp(t: Test, options: TestIdpOptions): Promise<TestIdp> {
  const tls = makeTestCertificates()
  t.teardown(() => tls.cleanup())
  const { privateKey } = await rsaKeyPair()
  const jwk = { ...(await exportJWK(privateKey)), kid: 'idp-test', alg: 'RS256', use: 'sig' }
  let server: Server | undefined
  // Reserved for the whole test rather than port 0: while stopped, the port stays ours (connecting
  // is refused, and nothing else can listen there), so `start` always gets it back.
  const port = options.port ?? (await reservePort(t))
  const listen = async (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    server = createServer({ key: tls.keyPem, cert: tls.certPem }, handler)
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve))
  }
  // The provider is made last, once the second origin's port (port 0, read after listening) is
  // known too; the handler looks it up per request.
  let provider: Provider | undefined
  const requests: string[] = []
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    requests.push(new URL(req.url ?? '/', 'https://localhost').pathname)
    provider!.callback()(req, res)
  }
  await listen(handler)
  const issuer = `https://localhost:${port}`
  let authorizationOrigin = issuer
  if (options.separateAuthorizationOrigin) {
    const second = createServer({ key: tls.keyPem, cert: tls.certPem }, handler)
    await new Promise<void>((resolve) => second.listen(0, '127.0.0.1', resolve))
    authorizationOrigin = `https://127.0.0.1:${(second.address() as { port: number }).port}`
    t.teardown(async () => {
      second.closeAllConnections()
      await new Promise<void>((resolve) => second.close(() => resolve()))
    })
  }
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: IDP_CLIENT_ID,
        client_secret: IDP_CLIENT_SECRET,
        redirect_uris: options.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: ['idp-test-cookie-key-0123456789abcdef'] },
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    features: { devInteractions: { enabled: true } },
    ttl: { Interaction: 600, Grant: 3600, Session: 3600, AccessToken: 600, IdToken: 600 },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, ...ACCOUNTS[id] }
        },
      }
    },
    // A first-party client: no consent prompt at the IdP (its login form is enough for the tests).
    ...(!options.consentPrompt && { loadExistingGrant }),
  })
  if (options.separateAuthorizationOrigin) {
    // Its other endpoints stay at the issuer; the browser goes to the second origin (and stays
    // there: oidc-provider builds its interaction and resume URLs from the request's host).
    provider.use(async (ctx, next) => {
      await next()
      if (ctx.path === '/.well-known/openid-configuration' && ctx.body) ctx.body.authorization_endpoint = `${authorizationOrigin}/auth`
    })
  }
  async function loadExistingGrant(ctx: Parameters<NonNullable<Configuration['loadExistingGrant']>>[0]) {
    const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId)
    if (grantId) return ctx.oidc.provider.Grant.find(grantId)
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId })
    grant.addOIDCScope('openid email profile groups')
    await grant.save()
    return grant
  }
  const stop = async () => {
    const s = server
    server = undefined
    if (!s) return
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }
  t.teardown(stop)
  return {
    issuer,
    port,
    caFile: tls.caFile,
    authorizationOrigin,
    requests,
    stop,
    start: () => listen(handler),
  }
}
