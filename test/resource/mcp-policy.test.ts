/**
 * MCP-aware rules and JSON-RPC inspection, as pure functions.
 */
import t from 'tap'
import { globToRegExp, McpPolicy } from '../../src/policy/mcp-rules.js'
import { inspectMcpBody } from '../../src/resource/mcp-request.js'

const caller = (scopes: string[], extra: Record<string, unknown> = {}) => ({ sub: 'alice', scopes: new Set(scopes), ...extra })

t.test('globs: * is any run, everything else literal', async (t) => {
  t.ok(globToRegExp('delete_*').test('delete_file'))
  t.ok(globToRegExp('delete_*').test('delete_'))
  t.notOk(globToRegExp('delete_*').test('undelete_file'))
  t.ok(globToRegExp('file:///secrets/*').test('file:///secrets/a/b.txt'))
  t.notOk(globToRegExp('file:///secrets/*').test('file:///secretsX'))
  t.notOk(globToRegExp('a.b').test('axb'), 'a dot is a dot')
  t.notOk(globToRegExp('(x)+').test('xx'), 'regex syntax is literal')
  t.ok(globToRegExp('tools/*').test('tools/call'))
})

t.test('first matching rule decides; unmatched calls need the base scopes', async (t) => {
  const policy = new McpPolicy(
    [
      { id: 'admin-deletes', method: 'tools/call', name: 'delete_*', action: 'allow', scopes: ['files:admin'] },
      { id: 'no-secrets', method: 'resources/read', name: 'file:///secrets/*', action: 'deny' },
      { id: 'open-prompts', method: 'prompts/get', action: 'allow', scopes: [] },
      { method: 'tools/call', name: 'delete_all', action: 'deny' },
    ],
    ['files:read'],
  )
  t.match(policy.decide({ method: 'tools/call', name: 'delete_file' }, caller(['files:read'])), {
    allowed: false,
    reason: 'insufficient_scope',
    rule: 'admin-deletes',
    needed: ['files:admin'],
  })
  t.match(policy.decide({ method: 'tools/call', name: 'delete_all' }, caller(['files:admin'])), { allowed: true, rule: 'admin-deletes' }, 'order matters: the earlier rule wins')
  t.match(policy.decide({ method: 'resources/read', name: 'file:///secrets/key' }, caller(['files:read', 'files:admin'])), { allowed: false, reason: 'denied', rule: 'no-secrets' })
  // A resources/* rule on a URI covers subscribing to it too: updates of a secret are secret.
  const wide = new McpPolicy([{ id: 'no-secrets', method: 'resources/*', name: 'file:///secrets/*', action: 'deny' }], ['files:read'])
  for (const method of ['resources/read', 'resources/subscribe', 'resources/unsubscribe']) {
    t.match(wide.decide({ method, name: 'file:///secrets/key' }, caller(['files:read'])), { allowed: false, rule: 'no-secrets' }, method)
  }
  t.match(policy.decide({ method: 'prompts/get', name: 'greeting' }, caller([])), { allowed: true, rule: 'open-prompts' }, 'any valid token')
  t.match(policy.decide({ method: 'tools/call', name: 'read_file' }, caller([])), { allowed: false, rule: 'default', needed: ['files:read'] })
  t.match(policy.decide({ method: 'tools/call', name: 'read_file' }, caller(['files:read'])), { allowed: true, rule: 'default' })
  t.match(policy.decideBase(caller([])), { allowed: false, needed: ['files:read'] })
})

t.test('user conditions: subjects, emails, domains, groups', async (t) => {
  const policy = new McpPolicy(
    [
      { id: 'ops', method: 'tools/call', name: 'restart', action: 'allow', users: { groupsAnyOf: ['ops', 'sre'], emailDomains: ['example.com'] } },
      { id: 'both', method: 'tools/call', name: 'deploy', action: 'allow', users: { groupsAllOf: ['ops', 'release'] } },
      { id: 'bob', method: 'tools/call', name: 'bob_only', action: 'allow', users: { subjects: ['bob'] } },
    ],
    [],
  )
  const restart = { method: 'tools/call', name: 'restart' }
  t.ok(policy.decide(restart, caller([], { email: 'A@Example.com', groups: ['sre'] })).allowed, 'domain compares case-insensitively')
  t.notOk(policy.decide(restart, caller([], { email: 'a@evil-example.com', groups: ['sre'] })).allowed, 'a suffix is not the domain')
  t.notOk(policy.decide(restart, caller([], { email: 'a@example.com', groups: ['dev'] })).allowed)
  t.notOk(policy.decide(restart, caller([], { groups: ['ops'] })).allowed, 'no email claim, no match')
  t.ok(policy.decide({ method: 'tools/call', name: 'deploy' }, caller([], { groups: ['release', 'ops'] })).allowed)
  t.notOk(policy.decide({ method: 'tools/call', name: 'deploy' }, caller([], { groups: ['ops'] })).allowed)
  t.notOk(policy.decide({ method: 'tools/call', name: 'bob_only' }, caller([])).allowed)
})

const body = (v: unknown) => Buffer.from(JSON.stringify(v))
const call = (name: string, extra: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name, arguments: {}, ...extra } })

t.test('inspection: messages, names and malformed bodies', async (t) => {
  t.match(inspectMcpBody(body(call('echo')), {}), { batch: false, messages: [{ id: 5, method: 'tools/call', name: 'echo' }] })
  t.match(inspectMcpBody(body({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'file:///a' } }), {}), { messages: [{ name: 'file:///a' }] })
  t.match(inspectMcpBody(body({ jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'file:///a' } }), {}), { messages: [{ name: 'file:///a' }] })
  const complete = (ref: unknown) => body({ jsonrpc: '2.0', id: 1, method: 'completion/complete', params: { ref, argument: { name: 'a', value: '' } } })
  t.match(inspectMcpBody(complete({ type: 'ref/prompt', name: 'secret_prompt' }), {}), { messages: [{ name: 'secret_prompt' }] }, 'a prompt completion is that prompt\'s')
  t.match(inspectMcpBody(complete({ type: 'ref/resource', uri: 'file:///{path}' }), {}), { messages: [{ name: 'file:///{path}' }] })
  t.match(inspectMcpBody(complete({ type: 'ref/prompt' }), {}), { messages: [{ method: 'completion/complete', name: undefined }] }, 'a reference without a name names nothing: the upstream answers it')
  t.throws(() => inspectMcpBody(complete({ type: 'ref/prompt', name: ['secret_prompt'] }), {}), { name: 'JsonRpcError', rpcCode: -32602 }, 'a name that is not a string')
  t.throws(() => inspectMcpBody(complete('secret_prompt'), {}), { name: 'JsonRpcError', rpcCode: -32602 }, 'a reference that is not an object')
  t.throws(() => inspectMcpBody(complete({ type: 'ref/other', name: 'x' }), {}), { name: 'JsonRpcError', rpcCode: -32602 }, 'an unknown reference type')
  t.match(inspectMcpBody(body({ jsonrpc: '2.0', id: 1, result: {} }), {}), { messages: [{ method: undefined }] }, 'a response to the server')
  t.throws(() => inspectMcpBody(Buffer.from('{nope'), {}), { name: 'JsonRpcError', status: 400, rpcCode: -32700 })
  t.throws(() => inspectMcpBody(body({ id: 1, method: 'x' }), {}), { name: 'JsonRpcError', rpcCode: -32600 }, 'no jsonrpc member')
  // A missing target is the upstream's to answer (invalid params, or 404/-32601 where the
  // revision removed the method: conformance check
  // sep-2575-http-server-method-not-found-404-resources-subscribe); one that is there but not a
  // string is refused, since an upstream could coerce it into a name the policy never saw.
  t.match(inspectMcpBody(body({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: {} }), {}), { messages: [{ method: 'tools/call', name: undefined }] }, 'tools/call without a name')
  t.match(inspectMcpBody(body({ jsonrpc: '2.0', id: 1, method: 'resources/subscribe' }), {}), { messages: [{ method: 'resources/subscribe', name: undefined }] }, 'resources/subscribe without params')
  t.throws(() => inspectMcpBody(body({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: ['delete_file'] } }), {}), { name: 'JsonRpcError', rpcCode: -32602, rpcId: 1 }, 'a tool name that is an array')
  t.throws(() => inspectMcpBody(body({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 7 } }), {}), { name: 'JsonRpcError', rpcCode: -32602 }, 'a URI that is a number')
  t.throws(() => inspectMcpBody(body({ jsonrpc: '2.0', id: 1, method: 7 }), {}), { name: 'JsonRpcError', rpcCode: -32600 })
})

t.test('batches: element by element in 2025-03-26, refused after it', async (t) => {
  const batch = body([call('read_file'), call('delete_file')])
  t.match(inspectMcpBody(batch, { 'mcp-protocol-version': '2025-03-26' }), { batch: true, messages: [{ name: 'read_file' }, { name: 'delete_file' }] })
  t.match(inspectMcpBody(batch, {}), { batch: true }, 'no version header: the oldest revision is assumed')
  t.throws(() => inspectMcpBody(batch, { 'mcp-protocol-version': '2025-11-25' }), { name: 'JsonRpcError', rpcCode: -32600 })
  t.throws(() => inspectMcpBody(body([]), {}), { name: 'JsonRpcError', rpcCode: -32600 }, 'an empty batch')
})

t.test('2026-07-28: mirrored headers must agree with the body (MCPT-11..13)', async (t) => {
  const v = { 'mcp-protocol-version': '2026-07-28' }
  const ok = { ...v, 'mcp-method': 'tools/call', 'mcp-name': 'read_file' }
  t.doesNotThrow(() => inspectMcpBody(body(call('read_file')), ok))
  t.throws(() => inspectMcpBody(body(call('delete_file')), ok), { name: 'JsonRpcError', status: 400, rpcCode: -32020, rpcId: 5 }, 'Mcp-Name says read_file, body deletes')
  t.throws(() => inspectMcpBody(body(call('read_file')), { ...ok, 'mcp-method': 'tools/list' }), { name: 'JsonRpcError', rpcCode: -32020 })
  t.throws(() => inspectMcpBody(body(call('read_file')), { ...v, 'mcp-method': 'tools/call' }), { name: 'JsonRpcError', rpcCode: -32020 }, 'Mcp-Name missing')
  t.throws(() => inspectMcpBody(body(call('read_file')), { ...v, 'mcp-name': 'read_file' }), { name: 'JsonRpcError', rpcCode: -32020 }, 'Mcp-Method missing')
  t.throws(() => inspectMcpBody(body(call('read_file')), { ...ok, 'mcp-name': 'READ_FILE' }), { name: 'JsonRpcError', rpcCode: -32020 }, 'values compare case-sensitively')
  const name = 'läsa_fil ✓'
  const encoded = `=?base64?${Buffer.from(name).toString('base64')}?=`
  t.doesNotThrow(() => inspectMcpBody(body(call(name)), { ...ok, 'mcp-name': encoded }), 'base64 form decoded first (MCPT-13)')
  t.throws(() => inspectMcpBody(body(call('read_file')), { ...ok, 'mcp-name': `=?base64?${Buffer.from('delete_file').toString('base64')}?=` }), { name: 'JsonRpcError', rpcCode: -32020 })
  t.throws(() => inspectMcpBody(body(call('x')), { ...ok, 'mcp-name': '=?base64?!!!?=' }), { name: 'JsonRpcError', rpcCode: -32020 }, 'malformed base64')
  const meta = call('read_file', { _meta: { 'io.modelcontextprotocol/protocolVersion': '2025-11-25' } })
  t.throws(() => inspectMcpBody(body(meta), ok), { name: 'JsonRpcError', rpcCode: -32020 }, 'the version in _meta must agree')
  t.throws(() => inspectMcpBody(body([call('read_file')]), ok), { name: 'JsonRpcError', rpcCode: -32600 }, 'no batches in this revision')
  t.doesNotThrow(() => inspectMcpBody(body({ jsonrpc: '2.0', method: 'notifications/cancelled', params: {} }), v), 'a notification may omit Mcp-Method')
  t.doesNotThrow(() => inspectMcpBody(body(call('delete_file')), { 'mcp-protocol-version': '2025-11-25', 'mcp-name': 'read_file' }), 'older revisions: headers are not consulted at all (MCPT-14)')
  // Mcp-Name mirrors only the targets of tools/call, resources/read and prompts/get (MCPT-11);
  // the policy's other targets travel without one (conformance check completion-complete).
  const completion = { jsonrpc: '2.0', id: 2, method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'p' }, argument: { name: 'a', value: '' } } }
  t.match(inspectMcpBody(body(completion), { ...v, 'mcp-method': 'completion/complete' }), { messages: [{ name: 'p' }] }, 'completion/complete needs no Mcp-Name')
  const subscribe = { jsonrpc: '2.0', id: 3, method: 'resources/subscribe', params: { uri: 'file:///a' } }
  t.doesNotThrow(() => inspectMcpBody(body(subscribe), { ...v, 'mcp-method': 'resources/subscribe' }), 'resources/subscribe needs no Mcp-Name')
  const nameless = { jsonrpc: '2.0', id: 4, method: 'tools/call', params: {} }
  t.doesNotThrow(() => inspectMcpBody(body(nameless), { ...v, 'mcp-method': 'tools/call' }), 'no name in the body, none in the header: the upstream answers')
  t.throws(() => inspectMcpBody(body(nameless), { ...ok }), { name: 'JsonRpcError', rpcCode: -32020 }, 'an Mcp-Name the body does not have is a mismatch')
})
