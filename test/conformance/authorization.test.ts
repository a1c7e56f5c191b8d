/**
 * The MCP conformance suite's authorization-server scenarios (`conformance authorization`)
 * against Gatehouse as the authorization server: RFC 8414 metadata
 * (authorization-server-metadata-endpoint) and the authorization code grant with PKCE
 * (authorization-code-grant), for each way an MCP client can be known to it:
 * a dynamically registered client (RFC 7591), a Client ID Metadata Document client, and a
 * pre-registered public client. A pre-registered confidential client is run too, to record
 * what the suite sends and check Gatehouse's answer to it (see that test).
 *
 * The suite prints the authorization URL and waits for the browser to come back to its
 * callback server on 127.0.0.1:<port>; here a FormBrowser (a person at a browser) signs in,
 * consents and follows the redirect there.
 *
 * Needs the suite and Node 22 (.ci/install-node22); skipped with one line without them.
 */
import t, { type Test } from 'tap'
import { hashPassword } from '../../src/login/passwords.js'
import { startHttpDocServer, json } from '../cimd/servers.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'
import { CONFORMANCE_VERSION, conformanceForTests, report, runSuite, scenariosPassed, type Results } from './suite.js'

t.setTimeout(240_000)

const SECRET = 'conformance-confidential-secret-0123456789'
const SCENARIOS = ['authorization-code-grant', 'authorization-server-metadata-endpoint']

const conformance = conformanceForTests(t)
if (conformance) {
  const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
  t.teardown(() => upstream.close())
  const docs = await startHttpDocServer()
  t.teardown(() => docs.close())
  const cimdUrl = `${docs.origin}/clients/conformance.json`
  const gw = await startTestGateway(t, {
    resources: [{ upstream: upstream.url }],
    config: {
      login: { static: { users: [{ username: 'alice', passwordHash: await hashPassword('alice-password') }] } },
      registration: { enabled: true },
      // Plain http and a loopback address for the document server of this test only; the hardened
      // https fetch with a test CA is test/sdk/cimd-flow.test.ts's subject.
      cimd: { enabled: true, allowHttp: true, allowPrivateAddresses: true, trust: { allow: [{ url: cimdUrl }] } },
      clients: [
        // Loopback redirect URIs match on any port (OQ-04): the suite picks its callback port.
        { clientId: 'conformance-public', name: 'Conformance public client', redirectUris: ['http://127.0.0.1/callback'] },
        {
          clientId: 'conformance-confidential',
          name: 'Conformance confidential client',
          redirectUris: ['http://127.0.0.1/callback'],
          tokenEndpointAuthMethod: 'client_secret_post',
          secret: SECRET,
        },
      ],
    },
  })
  const results = new Map<string, Results>()

  t.test('a dynamically registered public client (RFC 7591)', async (t) => {
    const port = await reservePort(t)
    const res = await fetch(`${gw.origin}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'Conformance DCR client',
        redirect_uris: [`http://127.0.0.1:${port}/callback`],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        application_type: 'native',
      }),
    })
    t.equal(res.status, 201, 'registered')
    const { client_id } = (await res.json()) as { client_id: string }
    const run = await authorize(t, gw, conformance, port, ['--client-id', client_id, '--resource', gw.mcpUrl()])
    expectAllPass(t, run)
    results.set('DCR client', run)
  })

  t.test('a Client ID Metadata Document client', async (t) => {
    const port = await reservePort(t)
    docs.routes.set(
      '/clients/conformance.json',
      json({
        client_id: cimdUrl,
        client_name: 'Conformance CIMD client',
        redirect_uris: [`http://127.0.0.1:${port}/callback`],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }),
    )
    const run = await authorize(t, gw, conformance, port, ['--client-id', cimdUrl, '--resource', gw.mcpUrl()])
    expectAllPass(t, run)
    t.ok((docs.hits.get('/clients/conformance.json') ?? 0) > 0, 'the gateway fetched the document')
    results.set('CIMD client', run)
  })

  t.test('a pre-registered public client, without a resource parameter (the default resource, OQ-06)', async (t) => {
    const port = await reservePort(t)
    const run = await authorize(t, gw, conformance, port, ['--client-id', 'conformance-public'])
    expectAllPass(t, run)
    results.set('pre-registered public client', run)
  })

  t.test('a pre-registered confidential client: what the suite sends, and what Gatehouse answers', async (t) => {
    const port = await reservePort(t)
    const run = await authorize(t, gw, conformance, port, ['--client-id', 'conformance-confidential', '--client-secret', SECRET, '--resource', gw.mcpUrl()])
    // The suite authenticates with `none` whenever the metadata lists it, secret or not (its
    // selectTokenAuthMethod: "!clientSecret || methods.includes('none')"), and Gatehouse lists
    // `none` for its public clients. So it redeems the code of a client_secret_post client with
    // client_id alone. The right answer is a refusal: RFC 6749 §3.2.1, a confidential client must
    // authenticate; Gatehouse answers 401 invalid_client and the check fails with that status.
    const grant = run.get('authorization-code-grant')?.[0]
    t.equal(grant?.status, 'FAILURE', 'the code grant check fails…')
    t.match(grant?.errorMessage, /Invalid status code: 401/, '…because Gatehouse refuses an unauthenticated confidential client (401)')
    t.equal(run.get('authorization-server-metadata-endpoint')?.every((c) => c.status !== 'FAILURE'), true, 'the metadata checks pass')
    const refused = gw.logs.filter((l) => JSON.stringify(l).includes('invalid_client'))
    t.ok(refused.length > 0, 'the log tells why: invalid_client', { logs: refused })
  })

  t.test('report', async (t) => {
    const runs = [...results.entries()]
    const passed = runs.reduce((n, [, r]) => n + scenariosPassed(r), 0)
    const total = runs.reduce((n, [, r]) => n + r.size, 0)
    const line =
      `conformance ${CONFORMANCE_VERSION} authorization (${runs.map(([k]) => k).join(', ')}): ` +
      `${passed}/${total} scenarios passed; the confidential client is refused as it should be (the suite sends no secret)`
    t.comment(line)
    report(line)
    t.pass('reported')
  })
}

/** Runs both authorization-server scenarios, playing the person at the browser. */
async function authorize(t: Test, gw: TestGateway, command: string, port: number, args: string[]): Promise<Results> {
  let browsing: Promise<void> | undefined
  const run = await runSuite(command, ['authorization', '--url', gw.origin, '-p', String(port), ...args], {
    prefix: 'authorization-server',
    onLine: (line) => {
      if (browsing || !line.startsWith(`${gw.origin}/oauth/authorize?`)) return
      browsing = signInAndConsent(gw, line.trim()).catch((err: unknown) => {
        t.fail(`the browser did not get back to the suite: ${String(err)}`)
      })
    },
  })
  await browsing
  t.ok(browsing, 'the suite asked for an authorization')
  t.same([...run.results.keys()].sort(), SCENARIOS, 'both scenarios ran', { output: run.output.slice(-3000) })
  return run.results
}

async function signInAndConsent(gw: TestGateway, authorizationUrl: string): Promise<void> {
  const browser = new FormBrowser(gw.origin)
  const login = await browser.get(authorizationUrl)
  if (login.status !== 200) throw new Error(`authorize answered ${login.status}: ${login.html.slice(0, 300)}`)
  const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
  if (consent.status !== 200) throw new Error(`sign-in answered ${consent.status}`)
  const back = await browser.submit(consent, { decision: 'allow' })
  if (back.status !== 303 || !back.location) throw new Error(`consent answered ${back.status}`)
  // The redirect goes to the suite's callback server, which then redeems the code.
  const callback = await fetch(back.location)
  await callback.text()
}

function expectAllPass(t: Test, results: Results): void {
  for (const [scenario, checks] of results) {
    for (const c of checks) {
      // authorization-server-metadata-cimd is a WARNING where CIMD is off; here it is on.
      t.equal(c.status, 'SUCCESS', `${scenario} / ${c.id}${c.errorMessage ? `: ${c.errorMessage}` : ''}`)
    }
  }
}
