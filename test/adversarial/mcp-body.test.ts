/**
 * Red team: getting a denied call past the MCP-aware policy through the body. The gateway
 * decides from the bytes it forwards (MCPT-14); every trick here either reaches the upstream as
 * exactly what the policy saw, or is refused in JSON-RPC form before the upstream sees it.
 */
import { gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { postJsonRpc } from '../fixtures/mcp-clients.js'
import { call, echoUpstream, jsonOf, POLICY, rawPost, rawRequest, redTeamGateway } from './mcp-kit.js'

const V2025_03 = { 'mcp-protocol-version': '2025-03-26' }
const V2025_11 = { 'mcp-protocol-version': '2025-11-25' }

t.test('policy bypass through the JSON-RPC envelope (MCPT-14, JSON-RPC 2.0)', async (t) => {
  const up = await echoUpstream(t)
  const gw = await redTeamGateway(t, up.url)
  const auth = { authorization: `Bearer ${await gw.mint()}` }
  const post = (body: unknown, headers: Record<string, string> = {}) => postJsonRpc(gw.mcpUrl(), body, { ...auth, ...headers })
  // A refused request is answered (200, its JSON-RPC error); a batch, a notification or a message
  // without a usable id has no one request to answer: 403.
  const denied = (t: Test, res: { status: number; text: string }, what: string, status = 200) => {
    t.equal(res.status, status, `${what}: ${status}`)
    t.match(jsonOf(res.text), { jsonrpc: '2.0', error: { code: -32006, message: /no-deletes/ } }, `${what}: JSON-RPC error naming the rule`)
  }

  t.test('control: the denied tool itself', async (t) => {
    denied(t, await post(call('delete_file')), 'plain call')
    t.equal((await post(call('echo'))).status, 200, 'an allowed tool passes')
  })

  t.test('a denied call inside a 2025-03-26 batch is refused as a whole', async (t) => {
    const before = up.seen.length
    denied(t, await post([call('echo', 1), call('delete_file', 2)], V2025_03), 'batch', 403)
    denied(t, await post([call('echo', 1), call('delete_file')], V2025_03), 'batch with a notification', 403)
    denied(t, await post([call('delete_file', 1)]), 'batch without a version header (read as 2025-03-26)', 403)
    t.equal(up.seen.length, before, 'nothing reached the upstream')
  })

  t.test('batches after 2025-03-26 and empty batches: 400 invalid request', async (t) => {
    for (const [body, headers] of [
      [[call('echo', 1)], V2025_11],
      [[call('echo', 1)], { 'mcp-protocol-version': '2025-06-18' }],
      [[], V2025_03],
      [[[call('delete_file', 1)]], V2025_03],
    ] as const) {
      const res = await post(body, headers)
      t.equal(res.status, 400, JSON.stringify(body).slice(0, 60))
      t.match(jsonOf(res.text), { error: { code: -32600 } })
    }
  })

  t.test('duplicate keys: the gateway decides on the value the upstream will use (last wins)', async (t) => {
    denied(t, await post('{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"delete_file"}}'), 'duplicate method')
    denied(t, await post('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_file"}}'), 'duplicate name')
    denied(t, await post('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"params":{"name":"delete_file"}}'), 'duplicate params')
  })

  t.test('escapes and look-alikes: decided on the decoded name', async (t) => {
    denied(t, await post('{"jsonrpc":"2.0","id":1,"method":"tools\\/call","params":{"name":"\\u0064elete_file"}}'), 'JSON escapes')
    // Other spellings are other names to the upstream too (tool names compare exactly): not this rule.
    for (const name of ['Delete_file', 'DELETE_FILE', 'delete\u200b_file', 'ｄelete_file', ' delete_file', 'delete\u0000file']) {
      const res = await post(call(name))
      t.equal(res.status, 200, `${JSON.stringify(name)} is another tool`)
      const seen = JSON.parse(up.seen.at(-1)!.body.toString('utf8')) as { params: { name: string } }
      t.equal(seen.params.name, name, 'and reaches the upstream exactly as decided')
    }
  })

  t.test('params.name that is not a string: 400 invalid params, never a default decision', async (t) => {
    const before = up.seen.length
    for (const name of [['delete_file'], { toString: 'delete_file' }, 42, null, true]) {
      const res = await post(call(name))
      t.equal(res.status, 400, JSON.stringify(name))
      t.match(jsonOf(res.text), { jsonrpc: '2.0', id: 1, error: { code: -32602 } })
    }
    for (const params of [['delete_file'], 'delete_file', null]) {
      const res = await post({ jsonrpc: '2.0', id: 1, method: 'tools/call', params })
      t.equal(res.status, 400, `params ${JSON.stringify(params)}`)
    }
    t.equal(up.seen.length, before)
  })

  t.test('notifications, responses and odd ids are decided like requests', async (t) => {
    denied(t, await post({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'delete_file' } }), 'notification', 403)
    denied(t, await post({ jsonrpc: '2.0', id: 1, result: {}, method: 'tools/call', params: { name: 'delete_file' } }), 'response-shaped with a method')
    denied(t, await post({ jsonrpc: '2.0', id: { x: 1 }, method: 'tools/call', params: { name: 'delete_file' } }), 'object id', 403)
    denied(t, await post({ jsonrpc: '2.0', id: 1e400, method: 'tools/call', params: { name: 'delete_file' } }), 'huge numeric id')
    const response = await post({ jsonrpc: '2.0', id: 7, result: { content: [] } })
    t.not(response.status, 403, 'a plain response to the server is not a call (base scopes apply)')
  })

  t.test('prototype keys are data, not lookups', async (t) => {
    denied(t, await post('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"__proto__":{"name":"echo"},"name":"delete_file"}}'), '__proto__ in params')
    denied(t, await post('{"__proto__":{"method":"ping"},"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}'), '__proto__ at the top')
    // Methods named like Object.prototype members are ordinary (unknown) methods: the upstream answers them.
    for (const method of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const res = await post({ jsonrpc: '2.0', id: 1, method, params: {} })
      t.equal(res.status, 200, `${method} is passed on, not mistaken for a named method`)
    }
  })

  t.test('methods in other case or with spaces are other methods (the upstream will not run tools/call)', async (t) => {
    for (const method of ['Tools/Call', 'tools/call ', ' tools/call', 'tools/call\n']) {
      const res = await post({ jsonrpc: '2.0', id: 1, method, params: { name: 'delete_file' } })
      t.equal(res.status, 200, JSON.stringify(method))
      t.equal((JSON.parse(up.seen.at(-1)!.body.toString('utf8')) as { method: string }).method, method)
    }
  })

  t.test('not JSON-RPC 2.0: refused before the upstream', async (t) => {
    const before = up.seen.length
    const bodies: [string, number][] = [
      ['\ufeff{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}', -32700],
      ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}} {"x":1}', -32700],
      ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}\n{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_file"}}', -32700],
      ['{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}', -32600],
      ['{"id":1,"method":"tools/call","params":{"name":"delete_file"}}', -32600],
      ['{"jsonrpc":"2.0","id":1,"method":["tools/call"],"params":{"name":"delete_file"}}', -32600],
      ['"just a string"', -32600],
      [`${'['.repeat(100000)}${']'.repeat(100000)}`, -32600],
    ]
    for (const [body, code] of bodies) {
      const res = await post(body)
      t.equal(res.status, 400, body.slice(0, 50))
      t.match(jsonOf(res.text), { jsonrpc: '2.0', error: { code } })
    }
    t.equal(up.seen.length, before)
  })

  t.test('deeply nested arguments and huge numbers do not crash the gateway', async (t) => {
    const deep = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":${'['.repeat(5000)}${']'.repeat(5000)},"n":1e999999,"m":-123456789012345678901234567890}}}`
    const res = await post(deep)
    t.equal(res.status, 200)
    t.equal(up.seen.at(-1)!.body.toString('utf8'), deep, 'forwarded byte for byte')
  })
})

t.test('the body the policy read is the body the upstream decodes: charset and content coding', async (t) => {
  const up = await echoUpstream(t)
  const gw = await redTeamGateway(t, up.url)
  const token = await gw.mint()
  const auth = { authorization: `Bearer ${token}` }

  t.test('RFC 8259 §8.1: a charset other than UTF-8 is refused with 415 (UTF-7 would hide a second name)', async (t) => {
    // Read as UTF-8 this calls echo; read as UTF-7 (iconv-lite, as body-parser does) it calls delete_file.
    const smuggled = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","x":"+ACI-,+ACI-name+ACI-:+ACI-delete_file"}}'
    const before = up.seen.length
    for (const ct of [
      'application/json; charset=utf-7',
      'application/json; charset=UTF-7',
      'application/json;charset="utf-7"',
      'application/json; charset=utf-8; charset=utf-7',
      'application/json; charset=utf-16le',
      'application/json; charset=iso-8859-1',
    ]) {
      const res = await postJsonRpc(gw.mcpUrl(), smuggled, { ...auth, 'content-type': ct })
      t.equal(res.status, 415, ct)
      t.match(jsonOf(res.text), { jsonrpc: '2.0', error: { code: -32600 } })
    }
    t.equal(up.seen.length, before, 'none reached the upstream')
    for (const ct of ['application/json', 'application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json; charset=utf8']) {
      t.equal((await postJsonRpc(gw.mcpUrl(), call('echo'), { ...auth, 'content-type': ct })).status, 200, `${ct} passes`)
    }
  })

  t.test('RFC 9110 §8.4: a compressed request body is refused with 415, never inspected as the wrong bytes', async (t) => {
    const before = up.seen.length
    const body = gzipSync(JSON.stringify(call('delete_file')))
    for (const coding of ['gzip', 'deflate', 'br', 'identity, gzip', 'GZIP']) {
      const res = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', `Content-Encoding: ${coding}`, `Content-Length: ${body.length}`], body))
      t.equal(res.status, 415, coding)
      t.match(jsonOf(res.body), { jsonrpc: '2.0', error: { code: -32600 } })
    }
    t.equal(up.seen.length, before)
    const plain = JSON.stringify(call('echo'))
    const identity = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', 'Content-Encoding: identity', `Content-Length: ${plain.length}`], plain))
    t.equal(identity.status, 200, 'identity is no coding at all')
  })

  t.test('content types: the policy applies whatever the label; the upstream judges the label', async (t) => {
    for (const ct of ['text/plain', 'application/json-seq', 'application/x-www-form-urlencoded', '']) {
      const res = await postJsonRpc(gw.mcpUrl(), call('delete_file'), { ...auth, 'content-type': ct })
      t.equal(res.status, 200, `content-type ${JSON.stringify(ct)}: still decided`)
      t.match(jsonOf(res.text), { error: { code: -32006 } })
    }
    const noType = await rawRequest(gw.origin, rawPost(gw.origin, token, [`Content-Length: ${JSON.stringify(call('delete_file')).length}`], JSON.stringify(call('delete_file'))))
    t.equal(noType.status, 200, 'no Content-Type at all: still decided')
    t.match(noType.body, /-32006/)
  })
})

t.test('framing: chunked, Content-Length mismatches, Expect, TE+CL (no desync, no 500)', async (t) => {
  const up = await echoUpstream(t)
  const gw = await redTeamGateway(t, up.url)
  const token = await gw.mint()
  const allowed = JSON.stringify(call('echo'))
  const denied = JSON.stringify(call('delete_file'))

  t.test('a chunked body is decided whole', async (t) => {
    const half = Math.floor(denied.length / 2)
    const chunked = `${half.toString(16)}\r\n${denied.slice(0, half)}\r\n${(denied.length - half).toString(16)}\r\n${denied.slice(half)}\r\n0\r\n\r\n`
    const res = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', 'Transfer-Encoding: chunked'], chunked))
    t.equal(res.status, 200)
    t.match(res.body, /-32006/, 'refused by the policy')
    const ok = `${allowed.length.toString(16)}\r\n${allowed}\r\n0\r\n\r\n`
    const pass = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', 'Transfer-Encoding: chunked'], ok))
    t.equal(pass.status, 200)
    const last = up.seen.at(-1)!
    t.equal(last.body.toString('utf8'), allowed)
    t.equal(last.headers['transfer-encoding'], undefined, 'the upstream gets a Content-Length body')
    t.equal(last.headers['content-length'], String(allowed.length))
  })

  t.test('Transfer-Encoding with Content-Length, or obs-fold: 400 from the HTTP parser', async (t) => {
    const before = up.seen.length
    const smuggle = `${allowed.length.toString(16)}\r\n${allowed}\r\n0\r\n\r\nPOST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: ${denied.length}\r\n\r\n${denied}`
    const teCl = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', 'Transfer-Encoding: chunked', `Content-Length: ${allowed.length}`], smuggle))
    t.equal(teCl.status, 400)
    const fold = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', 'X-User: alice', ' bob', `Content-Length: ${allowed.length}`], allowed))
    t.equal(fold.status, 400)
    const twoCl = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', `Content-Length: ${allowed.length}`, `Content-Length: ${allowed.length + 5}`], allowed))
    t.equal(twoCl.status, 400)
    t.equal(up.seen.length, before)
  })

  t.test('bytes after Content-Length are the next request, and are checked as one', async (t) => {
    const next = `POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${denied.length}\r\nConnection: close\r\n\r\n${denied}`
    const res = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', `Content-Length: ${allowed.length}`], allowed + next), 2000)
    const statuses = [...res.all.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])
    t.same(statuses, ['200', '200'], 'the pipelined denied call got its own answer')
    t.equal([...res.all.matchAll(/-32006/g)].length, 1, 'a refusal by the policy, once')
    t.notOk(up.seen.some((s) => s.body.includes('delete_file')), 'the denied call never reached the upstream')
  })

  t.test('a body shorter than its Content-Length is never forwarded', async (t) => {
    const before = up.seen.length
    const res = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', `Content-Length: ${allowed.length + 50}`], allowed), 800)
    t.not(res.status, 200)
    t.equal(up.seen.length, before)
  })

  t.test('Expect: 100-continue (curl sends it for bodies over 1 KiB) works end to end', async (t) => {
    const big = JSON.stringify(call('echo', 1, { params: { name: 'echo', arguments: { text: 'x'.repeat(2000) } } }))
    const res = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', 'Expect: 100-continue', `Content-Length: ${big.length}`], big), 2000)
    t.match(res.all, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /, '100 Continue, then the answer')
    t.equal(up.seen.at(-1)!.headers['expect'], undefined, 'the expectation was met by the gateway, not passed on')
    const bigDenied = JSON.stringify({ ...call('delete_file'), pad: 'x'.repeat(2000) })
    const refused = await rawRequest(gw.origin, rawPost(gw.origin, token, ['Content-Type: application/json', 'Expect: 100-continue', `Content-Length: ${bigDenied.length}`], bigDenied), 2000)
    t.match(refused.all, /HTTP\/1\.1 200 [\s\S]*-32006/)
  })
})

t.test('UTF-7 against a real SDK 1.x server on createMcpExpressApp (express.json decodes the charset it is told)', async (t) => {
  const { createMcpExpressApp } = await import('@modelcontextprotocol/sdk/server/express.js')
  const { McpServer } = await import('@modelcontextprotocol/sdk/server/mcp.js')
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js')
  const { z } = await import('zod')
  const deleted: string[] = []
  const app = createMcpExpressApp()
  // express ships no types here; the SDK's handleRequest takes node's request and response.
  app.post('/mcp', async (req: import('node:http').IncomingMessage & { body?: unknown }, res: import('node:http').ServerResponse) => {
    const server = new McpServer({ name: 'express-upstream', version: '1.0.0' })
    server.registerTool('echo', { inputSchema: { text: z.string().optional() } }, ({ text }) => ({ content: [{ type: 'text', text: text ?? '' }] }))
    server.registerTool('delete_file', { inputSchema: { path: z.string() } }, ({ path }) => {
      deleted.push(path)
      return { content: [{ type: 'text', text: `deleted ${path}` }] }
    })
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    res.on('close', () => void transport.close())
    await server.connect(transport)
    await transport.handleRequest(req, res, req.body)
  })
  const listener = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  t.teardown(() => {
    listener.closeAllConnections()
    listener.close()
  })
  const upstream = `http://127.0.0.1:${(listener.address() as import('node:net').AddressInfo).port}/mcp`
  const gw = await redTeamGateway(t, upstream)
  const auth = { authorization: `Bearer ${await gw.mint()}`, 'mcp-protocol-version': '2025-06-18' }
  // As UTF-8: echo with an odd string. As UTF-7: params gains a second "name" (last wins) and arguments.path.
  const smuggled =
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},"x":"+ACI-,+ACI-name+ACI-:+ACI-delete_file+ACI-,+ACI-arguments+ACI-:+AHsAIg-path+ACI-:+ACI-/etc/passwd+ACIAfQAsACI-y+ACI-:+ACI-"}}'
  const res = await postJsonRpc(gw.mcpUrl(), smuggled, { ...auth, 'content-type': 'application/json; charset=utf-7' })
  t.equal(res.status, 415, 'refused by the gateway')
  t.same(deleted, [], 'the denied tool never ran')
  const control = await postJsonRpc(gw.mcpUrl(), call('echo'), auth)
  t.equal(control.status, 200, 'the server works through the gateway')
})

t.test('deeply nested arguments with policy.auditArguments on: no 500, no crash', async (t) => {
  const up = await echoUpstream(t)
  const gw = await redTeamGateway(t, up.url, { policy: { ...POLICY, auditArguments: true } })
  const auth = { authorization: `Bearer ${await gw.mint()}` }
  const deep = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":${'['.repeat(20000)}${']'.repeat(20000)}}}}`
  t.equal((await postJsonRpc(gw.mcpUrl(), deep, auth)).status, 200)
  const deepDenied = deep.replace('"echo"', '"delete_file"')
  const refused = await postJsonRpc(gw.mcpUrl(), deepDenied, auth)
  t.match(jsonOf(refused.text), { error: { code: -32006 } }, 'refused by the policy')
  t.equal((await postJsonRpc(gw.mcpUrl(), call('echo'), auth)).status, 200, 'the gateway still serves')
})
