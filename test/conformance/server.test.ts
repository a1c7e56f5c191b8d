/**
 * The MCP conformance suite's server scenarios, run twice against the same real upstream:
 * direct, and through Gatehouse (with a bearer token added by a client-side proxy,
 * ./bearer-proxy.ts). Check by check, everything that passes direct must pass through the
 * gateway: a gateway is invisible to the protocol (MCPT-03, MCPT-17) and refuses only what its
 * own rules refuse. Checks where the gateway does better than the bare upstream are reported.
 *
 * - 2025-11-25 requirements against the reference "everything" server, the published npm
 *   package @modelcontextprotocol/server-everything (SDK 1.x), started as a program
 *   (./everything-server.ts). It implements the protocol's features under its own tool, resource
 *   and prompt names, not the ones the scenarios call, so many scenarios fail direct; they are
 *   compared all the same (a check that fails direct may do anything through the gateway).
 * - 2026-07-28 requirements against the project's SDK 2.x fixture (@modelcontextprotocol/server,
 *   createMcpHandler) with what the scenarios call (test/fixtures/conformance-tools.ts).
 *
 * Neither upstream checks Host and Origin itself, so `dns-rebinding-protection` fails direct and
 * passes through the gateway (it refuses a foreign Origin, MCPT-01): asserted below as the
 * gateway doing better.
 *
 * Needs the suite and Node 22 (.ci/install-node22); skipped with one line without them.
 */
import t, { type Test } from 'tap'
import { startSdk2Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway } from '../helpers/gateway.js'
import { startBearerProxy } from './bearer-proxy.js'
import { everythingServerForTests, startEverythingServer } from './everything-server.js'
import { compare, CONFORMANCE_VERSION, conformanceForTests, describeDiff, report, runSuite, scenariosPassed } from './suite.js'

t.setTimeout(240_000)

interface Upstream {
  url: string
  close(): Promise<void>
}

const generations: { requirements: string; upstreamName: string; start: (t: Test, conformance: string) => Promise<Upstream | undefined> }[] = [
  {
    requirements: '2025-11-25',
    upstreamName: '@modelcontextprotocol/server-everything 2026.8.31 (SDK 1.x)',
    start: async (t, conformance) => {
      const entry = everythingServerForTests(t, conformance)
      return entry ? startEverythingServer(t, entry) : undefined
    },
  },
  {
    requirements: '2026-07-28',
    upstreamName: 'the project\'s SDK 2.x fixture with the conformance tools',
    start: () => startSdk2Upstream({ conformance: true }),
  },
]

for (const g of generations) {
  t.test(`conformance ${CONFORMANCE_VERSION} server scenarios, --requirements ${g.requirements}: ${g.upstreamName}, direct vs through the gateway`, async (t) => {
    const conformance = conformanceForTests(t)
    if (!conformance) return
    const upstream = await g.start(t, conformance)
    if (!upstream) return
    t.teardown(() => upstream.close())
    const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }], logLevel: 'warn' })
    const token = await gw.mint({ scopes: ['mcp', 'admin'], ttlSeconds: 600 })
    const proxy = await startBearerProxy(gw.mcpUrl(), () => token)
    t.teardown(() => proxy.close())

    const args = (url: string) => ['server', '--url', url, '--requirements', g.requirements]
    const direct = await runSuite(conformance, args(upstream.url), { prefix: 'server' })
    const through = await runSuite(conformance, args(proxy.url), { prefix: 'server' })

    t.ok(direct.results.size > 0, `the suite ran scenarios direct (${direct.results.size} in ${direct.ms} ms)`, { output: direct.output.slice(-2000) })
    t.same([...through.results.keys()].sort(), [...direct.results.keys()].sort(), 'the same scenarios ran through the gateway')
    const cmp = compare(direct.results, through.results)
    for (const d of cmp.worse) t.fail(`worse through the gateway: ${describeDiff(d)}`)
    t.equal(cmp.worse.length, 0, 'no check that passes direct fails through the gateway')
    for (const d of cmp.better) t.comment(`better through the gateway: ${describeDiff(d)}`)
    const rebinding = (r: typeof direct.results) => (r.get('dns-rebinding-protection') ?? []).every((c) => c.status === 'SUCCESS')
    t.notOk(rebinding(direct.results), 'dns-rebinding-protection fails direct (the upstream does not check Host or Origin)')
    t.ok(rebinding(through.results), 'dns-rebinding-protection passes through the gateway: it does better than the upstream', {
      checks: through.results.get('dns-rebinding-protection'),
    })

    const line =
      `conformance ${CONFORMANCE_VERSION} server --requirements ${g.requirements} (${g.upstreamName}): ` +
      `through the gateway ${cmp.scenariosPassed}/${cmp.scenarios} scenarios passed ` +
      `(direct ${scenariosPassed(direct.results)}/${direct.results.size}), ` +
      `${cmp.worse.length} checks worse than direct, ${cmp.better.length} better; ${direct.ms + through.ms} ms`
    t.comment(line)
    report(line)
    // Every scenario's outcome, for the record (the README's Compatibility table comes from here).
    for (const [scenario, checks] of through.results) {
      const failing = checks.filter((c) => c.status === 'FAILURE').length
      const directFailing = (direct.results.get(scenario) ?? []).filter((c) => c.status === 'FAILURE').length
      t.comment(`  ${scenario}: gateway ${failing ? `${failing} failing` : 'pass'}, direct ${directFailing ? `${directFailing} failing` : 'pass'}`)
    }
  })
}
