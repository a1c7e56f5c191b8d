/**
 * The cost of the MCP-aware step per request: parsing a tools/call body, checking the
 * 2026-07-28 mirrored headers, and deciding with a ten-rule policy. Prints ns per request.
 * Not a test: `npm run bench`.
 */
import { McpPolicy } from '../../src/policy/mcp-rules.js'
import { inspectMcpBody } from '../../src/resource/mcp-request.js'

const rules = [
  ...Array.from({ length: 8 }, (_, i) => ({ method: 'tools/call', name: `tool_${i}_*`, action: 'allow' as const, scopes: ['a'] })),
  { method: 'tools/call', name: 'delete_*', action: 'allow' as const, scopes: ['files:read', 'files:admin'] },
  { method: 'resources/read', name: 'file:///secrets/*', action: 'deny' as const },
]
const policy = new McpPolicy(rules, ['files:read'])
const caller = { sub: 'alice', scopes: new Set(['files:read']) }
const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read_file', arguments: { path: '/tmp/a.txt' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } }))
const headers2025 = { 'mcp-protocol-version': '2025-11-25' }
const headers2026 = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'read_file' }

function measure(label: string, fn: () => void): void {
  for (let i = 0; i < 50_000; i++) fn() // warm-up
  const rounds: number[] = []
  for (let r = 0; r < 5; r++) {
    const n = 200_000
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) fn()
    rounds.push(Number(process.hrtime.bigint() - start) / n)
  }
  rounds.sort((a, b) => a - b)
  console.log(`${label.padEnd(52)} ${rounds[2]!.toFixed(0).padStart(6)} ns/request (median of 5 rounds of 200k)`)
}

console.log(`MCP policy step, node ${process.version}, ${rules.length} rules, body ${body.length} bytes`)
measure('decide only (unmatched call, 10 rules)', () => policy.decide({ method: 'tools/call', name: 'read_file' }, caller))
measure('inspect body, 2025-11-25 (parse + shape)', () => inspectMcpBody(body, headers2025))
measure('inspect body, 2026-07-28 (parse + header check)', () => inspectMcpBody(body, headers2026))
measure('whole step: inspect (2026-07-28) + decide', () => {
  const m = inspectMcpBody(body, headers2026).messages[0]!
  policy.decide({ method: m.method!, name: m.name }, caller)
})
