/**
 * The hardened fetcher (SEC-06..15). Traffic goes to loopback servers this test starts, and
 * nowhere else: special-use addresses are classified as values, and resolver stubs that return
 * them prove the connection is refused before any packet.
 */
import t from 'tap'
import { FetchError, SafeFetcher, specialUseRange, USER_AGENT, type SafeFetchOptions } from '../../src/oauth/clients/cimd/fetch.js'
import { json, makeTestCertificates, startHttpDocServer, startHttpsDocServer } from './servers.js'

const base: SafeFetchOptions = { maxBytes: 5120, connectTimeoutMs: 1000, timeoutMs: 1500, maxConcurrent: 4, allowPrivateAddresses: true }

const kindOf = async (p: Promise<unknown>) => {
  try {
    await p
    return 'ok'
  } catch (err) {
    return err instanceof FetchError ? err.kind : `unexpected ${String(err)}`
  }
}

t.test('special-use classification on the addresses themselves (SEC-06)', async (t) => {
  const special = [
    '127.0.0.1', '127.255.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '0.1.2.3', '224.0.0.1', '255.255.255.255', '192.0.2.1', '198.51.100.7', '203.0.113.9', '198.18.0.1', '192.0.0.8',
    '240.0.0.1', '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1',
    '::ffff:169.254.169.254', '64:ff9b::a9fe:a9fe', '64:ff9b:1::1', '2002:7f00:1::1', '2001:0:4136:e378::1', '2001:db8::1',
    '100::1', '2001:2::1', 'fec0::1', '2001:20::1', '3fff::1',
  ]
  for (const a of special) t.ok(specialUseRange(a), `${a} is special-use (${specialUseRange(a)})`)
  for (const a of ['8.8.8.8', '1.1.1.1', '93.184.216.34', '2606:4700:4700::1111', '2a00:1450:4001::1', '::ffff:8.8.8.8']) {
    t.equal(specialUseRange(a), undefined, `${a} is public unicast`)
  }
  t.equal(specialUseRange('not an address'), 'unparseable')
})

t.test('with allowPrivateAddresses off, a name resolving to a special-use address is refused before connecting (SEC-06/07, CIMD-42)', async (t) => {
  const server = await startHttpDocServer()
  t.teardown(() => server.close())
  server.routes.set('/doc', json({ ok: true }))
  const answers: Record<string, string[]> = {
    'metadata.test': ['169.254.169.254'],
    'private.test': ['10.0.0.1'],
    'mapped.test': ['::ffff:127.0.0.1'],
    'nat64.test': ['64:ff9b::a9fe:a9fe'],
    'mixed.test': ['93.184.216.34', '127.0.0.1'],
    'loopback.test': ['127.0.0.1'],
  }
  const asked: string[] = []
  const fetcher = new SafeFetcher({
    ...base,
    allowPrivateAddresses: false,
    resolver: async (host) => {
      asked.push(host)
      return (answers[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
    },
  })
  t.teardown(() => fetcher.close())
  for (const host of Object.keys(answers)) {
    t.equal(await kindOf(fetcher.fetchJson(`http://${host}:${server.port}/doc`)), 'not_allowed_address', host)
  }
  t.same(asked.sort(), Object.keys(answers).sort(), 'every name went through the vetting resolver')
  t.equal(server.connections, 0, 'not one connection reached the loopback server')
  // IP literals skip DNS: refused before connecting too.
  t.equal(await kindOf(fetcher.fetchJson(`http://127.0.0.1:${server.port}/doc`)), 'not_allowed_address', 'IP literal')
  t.equal(await kindOf(fetcher.fetchJson(`http://[::1]:${server.port}/doc`)), 'not_allowed_address', 'IPv6 literal')
  t.equal(server.connections, 0, 'still no connection')
  // And the real resolver: localhost is loopback.
  const real = new SafeFetcher({ ...base, allowPrivateAddresses: false })
  t.teardown(() => real.close())
  t.equal(await kindOf(real.fetchJson(`http://localhost:${server.port}/doc`)), 'not_allowed_address', 'localhost via the system resolver')
  t.equal(server.connections, 0)
})

t.test('fetch rules against a loopback server (allowPrivateAddresses on): SEC-10..15', async (t) => {
  const server = await startHttpDocServer()
  t.teardown(() => server.close())
  let seen: Record<string, string | string[] | undefined> = {}
  server.routes.set('/doc', (req, res) => {
    seen = req.headers
    json({ client_id: 'x' }, { 'cache-control': 'max-age=600' })(req, res)
  })
  server.routes.set('/plus-json', json({ a: 1 }, { 'content-type': 'application/vnd.example+json; charset=utf-8' }))
  server.routes.set('/challenge', (_req, res) => res.writeHead(403, { 'content-type': 'text/html' }).end('<html>Just a moment...</html>'.repeat(500)))
  server.routes.set('/html', (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>'))
  server.routes.set('/no-type', (_req, res) => res.writeHead(200).end('{}'))
  server.routes.set('/redirect', (_req, res) => res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end())
  server.routes.set('/not-modified', (_req, res) => res.writeHead(304).end())
  server.routes.set('/203', (_req, res) => res.writeHead(203, { 'content-type': 'application/json' }).end('{}'))
  server.routes.set('/huge', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    const chunk = '"' + 'x'.repeat(1000) + '",'
    res.write('[')
    const timer = setInterval(() => {
      if (!res.write(chunk)) return
    }, 1)
    res.on('close', () => clearInterval(timer))
  })
  server.routes.set('/huge-declared', (_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': '999999' }).end())
  server.routes.set('/slow', () => {})
  server.routes.set('/slow-body', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"a":')
  })
  server.routes.set('/gzip', (_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end('xx'))
  server.routes.set('/bad-json', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"a":'))
  server.routes.set('/set-cookie', (_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'a=b' }).end('{}'))

  // A generous deadline for what must succeed (a loaded test machine answers late), a short one
  // for the deadline checks themselves.
  const fetcher = new SafeFetcher({ ...base, timeoutMs: 5000 })
  const hasty = new SafeFetcher({ ...base, timeoutMs: 600 })
  t.teardown(() => Promise.all([fetcher.close(), hasty.close()]))
  const url = (p: string) => `${server.origin}${p}`

  const ok = await fetcher.fetchJson(url('/doc'))
  t.same(ok.json, { client_id: 'x' })
  t.equal(ok.cacheControl, 'max-age=600')
  t.equal(seen['user-agent'], USER_AGENT, 'SEC-15 fixed User-Agent')
  t.equal(seen.accept, 'application/json', 'SEC-15 Accept')
  t.equal(seen['accept-encoding'], 'identity', 'SEC-13 identity encoding')
  t.notOk(seen.cookie ?? seen.authorization, 'SEC-15 no cookies or credentials')
  t.ok((await fetcher.fetchJson(url('/plus-json'))).json, 'CIMD-14 application/*+json')

  t.equal(await kindOf(fetcher.fetchJson(url('/challenge'))), 'status', 'IOP-03 bot challenge (403 HTML): status, not too_large')
  t.equal(await kindOf(fetcher.fetchJson(url('/html'))), 'content_type', 'SEC-12 text/html')
  t.equal(await kindOf(fetcher.fetchJson(url('/no-type'))), 'content_type')
  t.equal(await kindOf(fetcher.fetchJson(url('/redirect'))), 'redirect', 'SEC-10 no redirects')
  t.equal(server.hits.get('/redirect'), 1)
  t.equal(await kindOf(fetcher.fetchJson(url('/not-modified'))), 'redirect')
  t.equal(await kindOf(fetcher.fetchJson(url('/203'))), 'status', 'SEC-11 only 200')
  t.equal(await kindOf(fetcher.fetchJson(url('/missing'))), 'status')
  t.equal(await kindOf(fetcher.fetchJson(url('/huge'))), 'too_large', 'SEC-13 byte cap while streaming (chunked, no length)')
  t.equal(await kindOf(fetcher.fetchJson(url('/huge-declared'))), 'too_large')
  t.equal(await kindOf(fetcher.fetchJson(url('/gzip'))), 'content_type', 'encoded bodies refused')
  t.equal(await kindOf(fetcher.fetchJson(url('/bad-json'))), 'invalid_json')
  const started = Date.now()
  t.equal(await kindOf(hasty.fetchJson(url('/slow'))), 'timeout', 'SEC-14 total deadline (no headers)')
  t.equal(await kindOf(hasty.fetchJson(url('/slow-body'))), 'timeout', 'SEC-14 total deadline (trickling body)')
  t.ok(Date.now() - started < 3000, 'within the deadlines')
  t.equal(await kindOf(fetcher.fetchJson('http://127.0.0.1:1/doc')), 'network', 'refused connection')
  t.ok(await fetcher.fetchJson(url('/set-cookie')))

  // Errors never echo what the server sent.
  try {
    await fetcher.fetchJson(url('/challenge'))
  } catch (err) {
    t.notMatch(String((err as Error).message), /Just a moment/)
  }
})

t.test('concurrency bound (SEC-14)', async (t) => {
  const server = await startHttpDocServer()
  t.teardown(() => server.close())
  let active = 0
  let peak = 0
  server.routes.set('/doc', (req, res) => {
    active++
    peak = Math.max(peak, active)
    setTimeout(() => {
      active--
      json({})(req, res)
    }, 30)
  })
  const fetcher = new SafeFetcher({ ...base, maxConcurrent: 2, timeoutMs: 5000 })
  t.teardown(() => fetcher.close())
  await Promise.all(Array.from({ length: 8 }, () => fetcher.fetchJson(`${server.origin}/doc`)))
  t.ok(peak <= 2, `at most 2 in flight (peak ${peak})`)
})

t.test('https: SNI and certificate checked on the host name; connection pinned to the vetted address', async (t) => {
  let tls
  try {
    tls = makeTestCertificates()
  } catch {
    t.pass('openssl not available: skipped')
    return
  }
  t.teardown(() => tls.cleanup())
  const server = await startHttpsDocServer(tls)
  t.teardown(() => server.close())
  server.routes.set('/doc', json({ ok: 1 }))
  const trusting = new SafeFetcher({ ...base, ca: tls.caPem })
  t.teardown(() => trusting.close())
  t.same((await trusting.fetchJson(`https://localhost:${server.port}/doc`)).json, { ok: 1 })
  const untrusting = new SafeFetcher(base)
  t.teardown(() => untrusting.close())
  t.equal(await kindOf(untrusting.fetchJson(`https://localhost:${server.port}/doc`)), 'network', 'unknown CA refused')
  // A name the certificate does not cover, resolved (by a stub) to the same server: refused.
  const wrongName = new SafeFetcher({ ...base, ca: tls.caPem, resolver: async () => [{ address: '127.0.0.1', family: 4 }] })
  t.teardown(() => wrongName.close())
  t.equal(await kindOf(wrongName.fetchJson(`https://docs.test:${server.port}/doc`)), 'network', 'certificate checked against the host name')
})
