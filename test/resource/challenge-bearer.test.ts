import type { IncomingMessage } from 'node:http'
import t from 'tap'
import { extractBearer } from '../../src/resource/bearer.js'
import { bearerChallenge } from '../../src/resource/challenge.js'

const PRM = 'https://gw.example.com/.well-known/oauth-protected-resource/mcp'

t.test('no credentials: challenge without an error code (BRR-03, MCPA-18)', async (t) => {
  t.equal(
    bearerChallenge({ resourceMetadataUrl: PRM, scopes: ['files:read', 'files:list'] }),
    `Bearer scope="files:read files:list", resource_metadata="${PRM}"`,
  )
})

t.test('invalid token and insufficient scope carry their error (MCPA-43, BRR-02)', async (t) => {
  t.equal(
    bearerChallenge({ resourceMetadataUrl: PRM, scopes: ['a'], error: 'insufficient_scope', description: 'needs a' }),
    `Bearer error="insufficient_scope", error_description="needs a", scope="a", resource_metadata="${PRM}"`,
  )
  t.equal(
    bearerChallenge({ resourceMetadataUrl: PRM, scopes: [], error: 'invalid_token' }),
    `Bearer error="invalid_token", resource_metadata="${PRM}"`,
    'no scope attribute when none is needed',
  )
})

t.test('error_description cannot break out of its quotes (RFC 6750 §3 charset)', async (t) => {
  const header = bearerChallenge({
    resourceMetadataUrl: PRM,
    scopes: [],
    error: 'invalid_token',
    description: 'x", scope="admin\\ \r\nSet-Cookie: a=b é',
  })
  t.equal(header.match(/"/g)?.length, 6, 'three quoted attributes, no injected fourth')
  t.notMatch(header, /[\r\n\\é]/)
})

const req = (headers: [string, string][], url = '/mcp') =>
  ({
    url,
    rawHeaders: headers.flat(),
    headers: Object.fromEntries(headers.map(([k, v]) => [k.toLowerCase(), v])),
  }) as unknown as IncomingMessage

t.test('bearer extraction (MCPA-51, BRR-01, RFC 6750 §2.1)', async (t) => {
  t.same(extractBearer(req([['Authorization', 'Bearer abc.def-_~+/=']])), { kind: 'token', token: 'abc.def-_~+/=', scheme: 'bearer' })
  t.same(extractBearer(req([['authorization', 'bearer abc']])), { kind: 'token', token: 'abc', scheme: 'bearer' }, 'scheme is case-insensitive')
  t.same(extractBearer(req([['Authorization', 'DPoP abc']])), { kind: 'token', token: 'abc', scheme: 'dpop' }, 'the DPoP scheme (RFC 9449 §7.1)')
  t.same(extractBearer(req([])), { kind: 'none' })
  t.same(extractBearer(req([['Authorization', 'Basic dXNlcjpwYXNz']])), { kind: 'none' }, 'another scheme is no bearer credential')
  t.match(extractBearer(req([['Authorization', 'Bearer']])), { kind: 'invalid' }, 'scheme without token')
  t.match(extractBearer(req([['Authorization', 'Bearer a b']])), { kind: 'invalid' }, 'space inside the token')
  t.match(extractBearer(req([['Authorization', 'Bearer a"b']])), { kind: 'invalid' }, 'characters outside b64token')
  t.match(
    extractBearer(req([['Authorization', 'Bearer a'], ['Authorization', 'Bearer b']])),
    { kind: 'invalid', description: /more than one/ },
    'two Authorization headers are refused, not resolved',
  )
  t.match(extractBearer(req([], '/mcp?access_token=abc')), { kind: 'invalid', description: /query string/ })
  t.match(
    extractBearer(req([['Authorization', 'Bearer abc']], '/mcp?x=1&access_token=abc')),
    { kind: 'invalid' },
    'a query token is refused even beside a header token',
  )
})
