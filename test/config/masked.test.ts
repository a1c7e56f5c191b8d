/**
 * The console's configuration page masks every credential (maskedSecrets): values under the same
 * key rule as configuration reports, whole lists of secrets, passwords inside URLs; the names of
 * a token endpoint and its authentication method stay readable.
 */
import t from 'tap'
import { maskedSecrets } from '../../src/config/masked.js'

t.test('credentials are masked wherever they are; other values stay', async (t) => {
  const masked = maskedSecrets({
    store: { type: 'redis', redis: { url: 'redis://default:hunter2@redis:6379/0', password: 'p4ss', sentinelPassword: 's3nt' } },
    login: { oidc: [{ id: 'corp', clientSecret: 'idp-secret', tokenEndpointAuthMethod: 'client_secret_basic' }], static: { users: [{ username: 'a', passwordHash: 'scrypt$1$2' }] } },
    resources: [{ upstreamAuth: { header: { name: 'x-api-key', value: 'api-key-value' }, exchange: { tokenEndpoint: 'https://sts.example/token', clientSecret: 'sts' } } }],
    keys: [{ file: '/keys/a.pem', alg: 'ES256', active: true }],
    registration: { initialAccessToken: 'iat', tokenEndpointAuthMethods: ['none'] },
    admin: { tokenSha256: 'ab'.repeat(32), enabled: true },
    jwk: { kty: 'EC', d: 'private-scalar', x: 'x' },
    privateKeyJwt: { maxAssertionLifetimeSeconds: 300 },
  })
  const text = JSON.stringify(masked)
  for (const secret of ['hunter2', 'p4ss', 's3nt', 'idp-secret', 'scrypt$', 'api-key-value', '"sts"', '"iat"', 'abab', 'private-scalar']) {
    t.notOk(text.includes(secret), `${secret} is not shown`)
  }
  t.match(masked, {
    store: { redis: { url: 'redis://default:****@redis:6379/0' } },
    login: { oidc: [{ tokenEndpointAuthMethod: 'client_secret_basic' }] },
    resources: [{ upstreamAuth: { header: { name: 'x-api-key', value: '****' }, exchange: { tokenEndpoint: 'https://sts.example/token' } } }],
    keys: [{ file: '/keys/a.pem', alg: 'ES256', active: true }],
    registration: { tokenEndpointAuthMethods: ['none'] },
    admin: { enabled: true },
    privateKeyJwt: { maxAssertionLifetimeSeconds: 300 },
  })
})
