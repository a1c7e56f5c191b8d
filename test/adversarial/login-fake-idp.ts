/**
 * A hostile OpenID Provider for the red-team login tests: a tiny hand-written OP on loopback
 * https whose every answer a test can bend (callback parameters, ID token claims and signing
 * algorithm, UserInfo, advertised metadata), to see that the gateway (through openid-client)
 * refuses what it must. test/login/idp.ts is the well-behaved real one.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:https'
import { exportJWK, SignJWT } from 'jose'
import type { Test } from 'tap'
import { makeTestCertificates } from '../cimd/servers.js'
import { rsaKeyPair } from '../fixtures/rsa-keys.js'

export const FAKE_CLIENT_ID = 'gatehouse'
export const FAKE_CLIENT_SECRET = 'fake-idp-client-secret-0123456789abcdef'

export interface AuthRequest {
  state: string
  nonce: string
  redirect_uri: string
  max_age?: string
}

export interface Behaviour {
  /** The query the IdP sends back to the gateway's callback. Default: code, state, iss. */
  callback(req: AuthRequest, code: string, issuer: string): Record<string, string>
  /** Extra or overriding ID token claims. */
  claims: Record<string, unknown>
  /** How the ID token is signed. */
  alg: 'RS256' | 'none' | 'HS256'
  /** UserInfo answer (sub is added); the endpoint is always advertised (discovery is cached). */
  userinfo: Record<string, unknown>
  issParameterSupported: boolean
  /** Replaces the nonce in the ID token (e.g. one from an earlier login). */
  nonce?: string
}

export interface FakeIdp {
  issuer: string
  caFile: string
  behaviour: Behaviour
  /** Authorization requests received, in order. */
  requests: AuthRequest[]
  reset(): void
}

const defaults = (): Behaviour => ({
  callback: (req, code, issuer) => ({ code, state: req.state, iss: issuer }),
  claims: { sub: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice' },
  alg: 'RS256',
  userinfo: {},
  issParameterSupported: true,
})

export async function startFakeIdp(t: Test): Promise<FakeIdp> {
  const tls = makeTestCertificates()
  t.teardown(() => tls.cleanup())
  const { privateKey, publicKey } = await rsaKeyPair()
  const jwk = { ...(await exportJWK(publicKey)), kid: 'fake', alg: 'RS256', use: 'sig' }
  const codes = new Map<string, AuthRequest>()
  const tokens = new Map<string, string>()
  const idp: FakeIdp = {
    issuer: '',
    caFile: tls.caFile,
    behaviour: defaults(),
    requests: [],
    reset() {
      idp.behaviour = defaults()
    },
  }
  const send = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body))
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', idp.issuer)
    const b = idp.behaviour
    if (url.pathname === '/.well-known/openid-configuration') {
      return send(res, 200, {
        issuer: idp.issuer,
        authorization_endpoint: `${idp.issuer}/auth`,
        token_endpoint: `${idp.issuer}/token`,
        jwks_uri: `${idp.issuer}/jwks`,
        userinfo_endpoint: `${idp.issuer}/userinfo`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'HS256', 'none'],
        code_challenge_methods_supported: ['S256'],
        authorization_response_iss_parameter_supported: b.issParameterSupported,
      })
    }
    if (url.pathname === '/jwks') return send(res, 200, { keys: [jwk] })
    if (url.pathname === '/auth') {
      const ar: AuthRequest = {
        state: url.searchParams.get('state') ?? '',
        nonce: url.searchParams.get('nonce') ?? '',
        redirect_uri: url.searchParams.get('redirect_uri') ?? '',
        ...(url.searchParams.has('max_age') && { max_age: url.searchParams.get('max_age')! }),
      }
      idp.requests.push(ar)
      const code = randomBytes(16).toString('base64url')
      codes.set(code, ar)
      const back = new URL(ar.redirect_uri)
      for (const [k, v] of Object.entries(b.callback(ar, code, idp.issuer))) back.searchParams.append(k, v)
      return res.writeHead(302, { location: back.href }).end()
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = ''
      for await (const chunk of req) body += chunk
      const form = new URLSearchParams(body)
      const ar = codes.get(form.get('code') ?? '')
      if (!ar) return send(res, 400, { error: 'invalid_grant' })
      codes.delete(form.get('code')!)
      const now = Math.floor(Date.now() / 1000)
      const claims: Record<string, unknown> = { iss: idp.issuer, aud: FAKE_CLIENT_ID, iat: now, exp: now + 300, auth_time: now, nonce: b.nonce ?? ar.nonce, ...b.claims }
      const accessToken = randomBytes(16).toString('base64url')
      tokens.set(accessToken, String(claims.sub))
      return send(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: 300, id_token: await sign(claims, b.alg) })
    }
    if (url.pathname === '/userinfo') {
      const sub = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''))
      if (!sub) return send(res, 401, { error: 'invalid_token' })
      return send(res, 200, { sub, ...b.userinfo })
    }
    res.writeHead(404).end()
  }
  async function sign(claims: Record<string, unknown>, alg: Behaviour['alg']): Promise<string> {
    if (alg === 'none') {
      const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
      return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`
    }
    if (alg === 'HS256') return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(FAKE_CLIENT_SECRET))
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'fake' }).sign(privateKey)
  }
  const server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    handler(req, res).catch(() => res.writeHead(500).end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  idp.issuer = `https://localhost:${(server.address() as { port: number }).port}`
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return idp
}
