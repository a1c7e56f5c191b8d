/**
 * Red team: what crosses the gateway in headers, both ways. Upstream-bound: never the client's
 * token or the gateway's cookies, never a client-made identity or forwarding header in any
 * spelling a server framework might read as the real one (MCPA-60, BCP-13). Client-bound:
 * hop-by-hop headers of the upstream hop stay there (RFC 9110 §7.6.1); the upstream cannot
 * plant the gateway's cookies.
 */
import t from 'tap'
import { postJsonRpc } from '../fixtures/mcp-clients.js'
import { call, echoUpstream, jsonOf, rawPost, rawRequest, redTeamGateway } from './mcp-kit.js'

t.test('upstream-bound headers (MCPA-60, BCP-13)', async (t) => {
  const up = await echoUpstream(t)
  const gw = await redTeamGateway(t, up.url)
  const token = await gw.mint({ sub: 'alice', clientId: 'app', scopes: ['mcp'] })
  const body = JSON.stringify(call('echo'))
  const send = async (headers: string[]) => {
    const res = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', `Content-Length: ${body.length}`, ...headers], body))
    return { res, seen: up.seen.at(-1)! }
  }

  t.test('identity and forwarding headers in other spellings never reach the upstream (WSGI/CGI read _ as -)', async (t) => {
    const { res, seen } = await send([
      'X_User: mallory',
      'x_client: evil-app',
      'X_SCOPE: admin',
      'X-uSeR: mallory2',
      'X_Forwarded_For: 6.6.6.6',
      'X_Forwarded_Host: evil.example',
      'X_Forwarded_Proto: https',
      'Mcp_Session_Id: someone-elses-session',
      'X_Real_IP: 6.6.6.6',
    ])
    t.equal(res.status, 200)
    t.equal(seen.headers['x-user'], 'alice')
    t.equal(seen.headers['x-client'], 'app')
    t.equal(seen.headers['x-scope'], 'mcp')
    t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
    for (const n of names) t.notOk(/^(x_user|x_client|x_scope|x_forwarded_\w+|mcp_session_id|x_real_ip)$/.test(n), `${n} was dropped`)
    t.notMatch(JSON.stringify(seen.rawHeaders), /mallory|evil|6\.6\.6\.6|someone-elses/)
  })

  t.test('credentials: duplicate Authorization refused; Proxy-Authorization and the token never forwarded', async (t) => {
    const before = up.seen.length
    const dup = await rawRequest(gw.origin, rawPost(gw.origin, token, ['authorization: Bearer other', 'Content-Type: application/json', `Content-Length: ${body.length}`], body))
    t.equal(dup.status, 400)
    t.match(dup.head, /www-authenticate: Bearer error="invalid_request"/i)
    t.equal(up.seen.length, before)
    const { seen } = await send(['Proxy-Authorization: Bearer ' + token, 'Cookie: gatehouse-session=s1; __Host-gatehouse-csrf=s2; app=1'])
    t.notMatch(JSON.stringify(seen), token, 'the token appears nowhere upstream')
    t.equal(seen.headers['cookie'], 'app=1')
  })

  t.test('a Connection header cannot make the proxy drop what it adds', async (t) => {
    const { res, seen } = await send(['Connection: keep-alive, X-User, X-Forwarded-For, X-Client, X-Scope'])
    t.equal(res.status, 200)
    t.equal(seen.headers['x-user'], 'alice')
    t.equal(seen.headers['x-client'], 'app')
    t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
    t.equal(seen.headers['connection'] === undefined || seen.headers['connection'] === 'keep-alive', true)
    const named = await send(['Connection: X-Secret', 'X-Secret: hop-by-hop'])
    t.equal(named.seen.headers['x-secret'], undefined, 'a header the client named hop-by-hop stays on its hop')
  })

  t.test('Mcp-Session-Id repeated: one value, or refused', async (t) => {
    const before = up.seen.length
    const { res } = await send(['Mcp-Session-Id: a', 'mcp-session-id: b'])
    t.equal(res.status, 404, 'an unbound (combined) session id is refused')
    t.equal(up.seen.length, before)
  })

  t.test('Forwarded, X-Original-URL and friends are not trusted and not passed on as the gateway’s', async (t) => {
    const { seen } = await send(['Forwarded: for=6.6.6.6;host=evil', 'X-Forwarded-Prefix: /admin', 'X-Forwarded-Port: 1'])
    t.equal(seen.headers['forwarded'], undefined)
    t.equal(seen.headers['x-forwarded-prefix'], undefined)
    t.equal(seen.headers['x-forwarded-port'], undefined)
    t.equal(seen.headers['x-forwarded-host'], new URL(gw.origin).host)
  })

  t.test('query strings reach the upstream, a session id in the query is not a session', async (t) => {
    const res = await postJsonRpc(`${gw.mcpUrl()}?mcp-session-id=x&sessionId=y`, call('echo'), { authorization: `Bearer ${token}` })
    t.equal(res.status, 200)
    t.equal(up.seen.at(-1)!.headers['mcp-session-id'], undefined)
  })
})

t.test('client-bound headers: the upstream hop’s own headers stay there (RFC 9110 §7.6.1)', async (t) => {
  const up = await echoUpstream(t, (_req, res) => {
    res.setHeader('connection', 'keep-alive, X-Internal')
    res.setHeader('keep-alive', 'timeout=1, max=1')
    res.setHeader('x-internal', 'upstream-only')
    res.setHeader('proxy-authenticate', 'Basic realm="upstream"')
    res.setHeader('upgrade', 'h2c')
    res.setHeader('set-cookie', [
      'gatehouse-session=planted; Path=/',
      '__HOST-gatehouse-session=planted; Path=/; Secure',
      ' gatehouse-csrf=planted',
      '=gatehouse-session=planted; Path=/',
      'GATEHOUSE-session=planted',
      'app=fine; Path=/',
    ])
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}')
  })
  const gw = await redTeamGateway(t, up.url)
  const res = await postJsonRpc(gw.mcpUrl(), call('echo'), { authorization: `Bearer ${await gw.mint()}` })
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-internal'), null, 'a header the upstream named in Connection')
  t.equal(res.headers.get('proxy-authenticate'), null)
  t.equal(res.headers.get('upgrade'), null)
  t.not(res.headers.get('keep-alive'), 'timeout=1, max=1', 'the upstream’s keep-alive is its own')
  t.same(res.headers.getSetCookie(), ['app=fine; Path=/'], 'no spelling of a gateway cookie is planted')
})

t.test('MCPS-07: the upstream cannot challenge the client or send it to another authorization server', async (t) => {
  const evil = 'Bearer resource_metadata="https://evil.example/.well-known/oauth-protected-resource"'
  const up = await echoUpstream(t, (req, res) => {
    const wanted = req.url?.includes('forbidden') ? 403 : 401
    res.writeHead(wanted, { 'content-type': 'application/json', 'www-authenticate': evil }).end('{"error":"no"}')
  })
  const gw = await redTeamGateway(t, up.url)
  const token = await gw.mint()
  const unauthorized = await postJsonRpc(gw.mcpUrl(), call('echo'), { authorization: `Bearer ${token}` })
  t.equal(unauthorized.status, 502, 'an upstream 401 is the gateway\'s problem, not the client\'s: 502')
  t.equal(unauthorized.headers.get('www-authenticate'), null, 'no challenge reaches the client')
  t.match(JSON.parse(unauthorized.text), { jsonrpc: '2.0', error: { message: /refused the gateway/ } })
  const forbidden = await postJsonRpc(`${gw.mcpUrl()}?forbidden`, call('echo'), { authorization: `Bearer ${token}` })
  t.equal(forbidden.status, 403, 'other statuses pass through')
  t.equal(forbidden.headers.get('www-authenticate'), null, 'without the upstream\'s challenge')
})

t.test('the challenge (RFC 6750 §3, RFC 9728 §5.1, BRR-01..03)', async (t) => {
  const up = await echoUpstream(t)
  const gw = await redTeamGateway(t, up.url)
  const metadata = `${gw.origin}/.well-known/oauth-protected-resource/mcp`
  const token = await gw.mint()

  t.test('no credentials: no error code; other schemes count as none', async (t) => {
    for (const authorization of [undefined, 'Basic YTpi', 'Digest x', 'Bearer', 'bearer']) {
      const res = await postJsonRpc(gw.mcpUrl(), call('echo'), authorization === undefined ? {} : { authorization })
      const challenge = res.headers.get('www-authenticate') ?? ''
      if (authorization === 'Bearer' || authorization === 'bearer') {
        t.equal(res.status, 400, `${authorization}: a malformed bearer attempt`)
        t.match(challenge, /error="invalid_request"/)
        continue
      }
      t.equal(res.status, 401, String(authorization))
      // No error code in either challenge (BRR-03); the DPoP one names the algorithms (RFC 9449 §7.1).
      t.equal(challenge, `Bearer scope="mcp", resource_metadata="${metadata}", DPoP algs="ES256 ES384 PS256 RS256 EdDSA"`)
      t.match(jsonOf(res.text), { jsonrpc: '2.0', id: null, error: { code: -32004 } }, 'authenticationRequired')
    }
  })

  t.test('a token in the query or the form body is never accepted (BRR-01, MCPA-51)', async (t) => {
    const before = up.seen.length
    for (const query of [`access_token=${token}`, `x=1&access_token=${token}`, `access%5Ftoken=${token}`, `x=1;y=2&%61ccess_token=${token}`, `access_token`]) {
      const res = await postJsonRpc(`${gw.mcpUrl()}?${query}`, call('echo'), { authorization: `Bearer ${token}` })
      t.equal(res.status, 400, query.slice(0, 24))
      t.match(res.headers.get('www-authenticate') ?? '', /error="invalid_request"/)
    }
    const queryOnly = await postJsonRpc(`${gw.mcpUrl()}?access_token=${token}`, call('echo'))
    t.equal(queryOnly.status, 400, 'a query token alone is refused, not ignored')
    const form = await postJsonRpc(gw.mcpUrl(), `access_token=${token}`, { 'content-type': 'application/x-www-form-urlencoded' })
    t.equal(form.status, 401, 'a form-body token alone is no token')
    t.equal(up.seen.length, before, 'no token-carrying request reached the upstream')
  })

  t.test('error_description cannot break the header; expired and wrong-audience tokens are 401 invalid_token', async (t) => {
    const expired = await gw.mint({ ttlSeconds: -60 })
    const other = await gw.mint({ audience: 'https://other.example/mcp' })
    for (const bad of [expired, other, `${token.slice(0, -4)}AAAA`]) {
      const res = await postJsonRpc(gw.mcpUrl(), call('echo'), { authorization: `Bearer ${bad}` })
      t.equal(res.status, 401)
      const challenge = res.headers.get('www-authenticate') ?? ''
      t.match(challenge, /^Bearer error="invalid_token", error_description="[\x20\x21\x23-\x5B\x5D-\x7E]*", scope="mcp", resource_metadata="[^"]+", DPoP algs="[A-Za-z0-9 ]+"$/)
    }
  })

  t.test('insufficient scope: 403 naming every scope the call needs', async (t) => {
    const res = await postJsonRpc(gw.mcpUrl(), call('admin_reset'), { authorization: `Bearer ${token}` })
    t.equal(res.status, 403)
    t.equal(
      res.headers.get('www-authenticate'),
      `Bearer error="insufficient_scope", error_description="this call needs the scope mcp admin", scope="mcp admin", resource_metadata="${metadata}"`,
    )
    t.match(jsonOf(res.text), { jsonrpc: '2.0', id: 1, error: { code: -32005 } }, 'insufficientScope')
    const admin = await gw.mint({ scopes: ['mcp', 'admin'] })
    t.equal((await postJsonRpc(gw.mcpUrl(), call('admin_reset'), { authorization: `Bearer ${admin}` })).status, 200)
  })
})
