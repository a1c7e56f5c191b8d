/**
 * Requests the gateway has no rule against get the upstream's own answer, not one the gateway
 * makes up: methods a protocol revision removed, unknown methods, calls without a target
 * (MCPT-03, MCPT-17). The gateway refuses only what its own rules refuse (authentication,
 * Origin, session binding, header/body mismatch, tool policy).
 *
 * Regression tests for divergences the MCP conformance suite found (test/conformance/), each
 * named by its conformance check: the same request, direct and through the gateway, must get the
 * same HTTP status and JSON-RPC error code.
 */
import t from 'tap'
import { modernHeaders, modernMeta, postJsonRpc, type RawResponse } from '../fixtures/mcp-clients.js'
import { startSdk2Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway } from '../helpers/gateway.js'

const outcome = (r: RawResponse) => {
  const json = JSON.parse(r.text) as { error?: { code?: number }; result?: unknown }
  return { status: r.status, code: json.error?.code, result: json.result !== undefined }
}

t.test('2026-07-28: the upstream answers removed and unknown methods (404, -32601), also through the gateway', async (t) => {
  const upstream = await startSdk2Upstream()
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const auth = { authorization: `Bearer ${await gw.mint()}` }

  // conformance checks sep-2575-http-server-method-not-found-404-<method> (server-stateless)
  // and sep-2575-http-server-method-not-found-404: the probe carries only the _meta envelope.
  for (const method of ['resources/subscribe', 'resources/unsubscribe', 'initialize', 'ping', 'logging/setLevel', 'unknown/method']) {
    const body = { jsonrpc: '2.0', id: 500, method, params: { _meta: modernMeta() } }
    const direct = outcome(await postJsonRpc(upstream.url, body, modernHeaders(method)))
    const through = outcome(await postJsonRpc(gw.mcpUrl(), body, { ...modernHeaders(method), ...auth }))
    t.same(through, direct, `${method}: the upstream's answer (${direct.status}, ${direct.code})`)
    t.same(direct, { status: 404, code: -32601, result: false }, `${method}: what the revision prescribes`)
  }
})

t.test('2026-07-28: completion/complete needs no Mcp-Name (conformance check completion-complete)', async (t) => {
  // The fixture with the conformance surface: it answers completions (the plain one does not).
  const upstream = await startSdk2Upstream({ conformance: true })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const auth = { authorization: `Bearer ${await gw.mint()}` }
  const body = {
    jsonrpc: '2.0',
    id: 7,
    method: 'completion/complete',
    params: { ref: { type: 'ref/prompt', name: 'test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'test' }, _meta: modernMeta() },
  }
  const direct = outcome(await postJsonRpc(upstream.url, body, modernHeaders('completion/complete')))
  t.same(direct, { status: 200, code: undefined, result: true }, 'the upstream completes')
  const through = outcome(await postJsonRpc(gw.mcpUrl(), body, { ...modernHeaders('completion/complete'), ...auth }))
  t.same(through, direct, 'and so it does through the gateway, with no HeaderMismatch')
})

t.test('a call without a target reaches the upstream, which answers it; a target that is not a string is refused', async (t) => {
  const upstream = await startSdk2Upstream()
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, {
    resources: [{ upstream: upstream.url, policy: { rules: [{ method: 'tools/call', name: 'delete_file', action: 'deny' }] } }],
  })
  const auth = { authorization: `Bearer ${await gw.mint()}` }
  const nameless = { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { arguments: {}, _meta: modernMeta() } }
  const direct = outcome(await postJsonRpc(upstream.url, nameless, modernHeaders('tools/call')))
  const through = outcome(await postJsonRpc(gw.mcpUrl(), nameless, { ...modernHeaders('tools/call'), ...auth }))
  t.same(through, direct, `no name: the upstream's answer (${direct.status}, ${direct.code})`)
  t.equal(direct.result, false, 'and that answer is an error')

  const before = upstream.requests.length
  const coerced = { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: ['delete_file'], arguments: {}, _meta: modernMeta() } }
  const refused = await postJsonRpc(gw.mcpUrl(), coerced, { ...modernHeaders('tools/call', 'delete_file'), ...auth })
  t.same(outcome(refused), { status: 400, code: -32602, result: false }, 'an array name is refused: the policy cannot read it')
  t.equal(upstream.requests.length, before, 'and it never reaches the upstream')
})
