/**
 * Red team: reaching the upstream by another path, method or origin than the one guarded
 * endpoint, and riding sessions (MCPT-01, MCPS-10..12, OQ-07). Also: the official SDK clients
 * keep working end to end through all of the above.
 */
import t from 'tap'
import { connectSdk1Client, connectSdk2Client, postJsonRpc } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { call, echoUpstream, jsonOf, rawRequest, redTeamGateway } from './mcp-kit.js'

t.test('paths: only the exact endpoint is proxied; nothing else reaches the upstream', async (t) => {
  const up = await echoUpstream(t)
  const gw = await redTeamGateway(t, up.url)
  const token = await gw.mint()
  const body = JSON.stringify(call('echo'))
  for (const path of ['/mcp/', '/MCP', '/mcp;x', '/mcp%2F..', '/mcp%2f', '//mcp', '/./mcp', '/x/../mcp', '/%2e/mcp', '/mcp/.', '/mcp/..', '/%6dcp', '/mcp%00', '/mcp#x', '/mcp/%2e%2e/r1/mcp']) {
    const res = await rawRequest(
      gw.origin,
      `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    )
    t.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}`)
  }
  t.equal(up.seen.length, 0, 'none reached the upstream')
  const ok = await postJsonRpc(`${gw.mcpUrl()}?x=1`, call('echo'), { authorization: `Bearer ${token}` })
  t.equal(ok.status, 200, 'a query string is fine')
  t.equal(up.seen.at(-1)!.url, '/mcp?x=1')
})

t.test('methods: GET/POST/DELETE guarded, others never proxied, preflight only for allowed origins', async (t) => {
  const up = await echoUpstream(t)
  const gw = await redTeamGateway(t, up.url)
  const token = await gw.mint()
  for (const method of ['PUT', 'PATCH', 'TRACE', 'CONNECT', 'PROPFIND']) {
    const res = await rawRequest(gw.origin, `${method} /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
    // CONNECT is not a request node's HTTP server routes at all: it closes the connection.
    t.ok((res.status >= 400 && res.status < 500) || (method === 'CONNECT' && res.status === 0), `${method}: ${res.status}`)
  }
  for (const method of ['GET', 'DELETE', 'HEAD']) {
    const res = await rawRequest(gw.origin, `${method} /mcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    t.equal(res.status, 401, `${method} without a token`)
  }
  t.equal(up.seen.length, 0)

  const preflight = (origin: string | undefined) =>
    fetch(gw.mcpUrl(), {
      method: 'OPTIONS',
      headers: { ...(origin && { origin }), 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, mcp-session-id' },
    })
  const allowed = await preflight('https://app.example.com')
  t.equal(allowed.status, 204)
  t.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example.com')
  t.equal(allowed.headers.get('access-control-allow-credentials'), null, 'bearer tokens, never cookies')
  for (const origin of [undefined, 'null', 'https://evil.example', 'https://app.example.com.evil.example', 'https://APP.example.com', 'https://app.example.com:443', 'http://app.example.com', 'https://app.example.co']) {
    const res = await preflight(origin)
    t.equal(res.status, 403, `preflight from ${origin}`)
    t.equal(res.headers.get('access-control-allow-origin'), null)
  }
  t.equal(up.seen.length, 0, 'preflights never reach the upstream')
})

t.test('Origin on real requests: present and not allowed is 403 before anything else (MCPT-01)', async (t) => {
  const up = await echoUpstream(t)
  const gw = await redTeamGateway(t, up.url)
  const auth = { authorization: `Bearer ${await gw.mint()}` }
  for (const origin of ['null', 'https://evil.example', 'https://app.example.com.evil.example', 'https://APP.EXAMPLE.COM', 'https://app.example.com:8443', 'https://app.example.com/']) {
    const res = await postJsonRpc(gw.mcpUrl(), call('echo'), { ...auth, origin })
    t.equal(res.status, 403, origin)
    t.match(jsonOf(res.text), { jsonrpc: '2.0', error: { code: -32007 } }, 'forbidden: its own code')
  }
  t.equal(up.seen.length, 0)
  const ok = await postJsonRpc(gw.mcpUrl(), call('echo'), { ...auth, origin: 'https://app.example.com' })
  t.equal(ok.status, 200)
  t.equal(up.seen.at(-1)!.headers['origin'], undefined, 'Origin is checked here, not passed on')
})

t.test('a DELETE or GET body is not forwarded: the policy never read it', async (t) => {
  const up = await echoUpstream(t, (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
  const gw = await redTeamGateway(t, up.url)
  const token = await gw.mint()
  const body = JSON.stringify(call('delete_file'))
  const res = await rawRequest(
    gw.origin,
    `DELETE /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  )
  t.equal(res.status, 200)
  t.equal(up.seen.at(-1)!.body.length, 0, 'the upstream got no body with the DELETE')
  t.notOk(up.seen.some((s) => s.body.includes('delete_file')))
})

t.test('sessions: foreign, duplicated, ended (MCPS-10..12)', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
  t.teardown(() => upstream.close())
  const gw = await redTeamGateway(t, upstream.url)
  const alice = await gw.mint({ sub: 'alice', clientId: 'a' })
  const client = await connectSdk1Client(gw.mcpUrl(), { token: alice })
  t.teardown(() => client.close())
  await client.listTools()
  const sid = upstream.sessionIds()[0]!
  const list = { jsonrpc: '2.0', id: 3, method: 'tools/list' }
  const v = { 'mcp-protocol-version': '2025-11-25' }
  const before = upstream.requests.length
  const mallory = await gw.mint({ sub: 'mallory', clientId: 'a' })
  t.equal((await postJsonRpc(gw.mcpUrl(), list, { ...v, authorization: `Bearer ${mallory}`, 'mcp-session-id': sid })).status, 404)
  t.equal((await postJsonRpc(`${gw.mcpUrl()}?mcp-session-id=${sid}`, list, { ...v, authorization: `Bearer ${mallory}` })).status, 400, 'no session header: the upstream wants one (not a gateway session)')
  const twice = await rawRequest(
    gw.origin,
    `POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${mallory}\r\nMcp-Session-Id: ${sid}\r\nMcp-Session-Id: ${sid}\r\nMCP-Protocol-Version: 2025-11-25\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: ${JSON.stringify(list).length}\r\nConnection: close\r\n\r\n${JSON.stringify(list)}`,
  )
  t.equal(twice.status, 404, 'the same id twice is not the id')
  const underscored = await rawRequest(
    gw.origin,
    `POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${mallory}\r\nMcp_Session_Id: ${sid}\r\nMCP-Protocol-Version: 2025-11-25\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: ${JSON.stringify(list).length}\r\nConnection: close\r\n\r\n${JSON.stringify(list)}`,
  )
  t.not(underscored.status, 200, 'an underscored copy of the session header is no session')
  t.notOk(upstream.requests.slice(before).some((r) => r.headers['mcp-session-id'] === sid || r.headers['mcp_session_id'] === sid), 'mallory never reached alice’s session')
  // The SDK ends its session with a DELETE through the gateway, which unbinds it.
  await (client.transport as unknown as { terminateSession(): Promise<void> }).terminateSession()
  t.equal((await postJsonRpc(gw.mcpUrl(), list, { ...v, authorization: `Bearer ${alice}`, 'mcp-session-id': sid })).status, 404, 'after the session’s DELETE, alice cannot reuse it either')
})

t.test('official clients through the red-team gateway: full sessions, notifications, filtered lists', async (t) => {
  for (const jsonResponse of [false, true]) {
    const upstream = await startSdk1Upstream({ stateful: true, jsonResponse })
    t.teardown(() => upstream.close())
    const gw = await redTeamGateway(t, upstream.url)
    const token = await gw.mint()
    const c1 = await connectSdk1Client(gw.mcpUrl(), { token })
    const tools = (await c1.listTools()).tools.map((x) => x.name).sort()
    t.notOk(tools.includes('delete_file'), `SDK1 (${jsonResponse ? 'JSON' : 'SSE'}): the denied tool is not listed`)
    t.ok(tools.includes('echo'))
    const progress: number[] = []
    const r = await c1.callTool({ name: 'countdown', arguments: { count: 3, intervalMs: 5 } }, undefined, { onprogress: (p) => void progress.push(p.progress) })
    t.match(r, { content: [{ text: 'countdown of 3 done' }] })
    if (!jsonResponse) t.same(progress, [1, 2, 3], 'progress notifications streamed')
    await t.rejects(c1.callTool({ name: 'delete_file', arguments: { path: '/readme.txt' } }), { name: /Error/ }, 'the denied call fails in the client')
    await c1.close()
    const c2 = await connectSdk2Client(gw.mcpUrl(), { token })
    const tools2 = (await c2.listTools()).tools.map((x) => x.name)
    t.notOk(tools2.includes('delete_file'), 'SDK2 legacy mode: the denied tool is not listed')
    await c2.close()
  }
})
