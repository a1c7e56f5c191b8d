/** `keys` and `externalIssuer`: the keys the gateway signs with, or the issuer it trusts instead. */
import { Type, type Static } from '@sinclair/typebox'
import { Seconds, strict, Url } from './schema-kit.js'

export const SigningKey = Type.Object(
  {
    file: Type.Optional(Type.String({ description: 'A private key file: PEM (PKCS#8) or a JWK in JSON.' })),
    env: Type.Optional(Type.String({ description: 'An environment variable holding the PEM or JWK.' })),
    kid: Type.Optional(Type.String({ description: 'Key id; defaults to the JWK thumbprint (RFC 7638).' })),
    alg: Type.Union([Type.Literal('ES256'), Type.Literal('RS256'), Type.Literal('PS256'), Type.Literal('EdDSA')], {
      default: 'ES256',
      description: 'The JWS algorithm this key signs with.',
    }),
    active: Type.Boolean({
      default: false,
      description:
        'The key that signs new tokens. Exactly one key is active; the others only verify, so keys rotate ' +
        'without invalidating tokens in flight.',
    }),
  },
  { ...strict, oneOf: [{ required: ['file'] }, { required: ['env'] }] },
)

export const ExternalIssuer = Type.Object(
  {
    issuer: Url('The issuer identifier; tokens must carry exactly this `iss`.'),
    jwksUri: Url('Where the issuer publishes its signing keys.'),
    algorithms: Type.Array(Type.String({ pattern: '^(RS|PS|ES)(256|384|512)$|^EdDSA$' }), {
      minItems: 1,
      default: ['RS256', 'ES256'],
      description: 'Accepted JWS algorithms; never none or HS*.',
    }),
    tokenTypes: Type.Array(Type.String(), {
      minItems: 1,
      default: ['at+jwt'],
      description:
        'Accepted `typ` headers (RFC 9068 says at+jwt; some providers send JWT, list it only if yours does).',
    }),
    jwksCacheSeconds: Seconds('How long fetched keys are trusted before a refresh.', 600),
    jwksRefreshCooldownSeconds: Seconds(
      'A token with an unknown kid triggers a JWKS refetch (key rotation) at most this often.',
      30,
    ),
  },
  {
    ...strict,
    description:
      'Resource-server-only mode: trust access tokens of an existing authorization server instead of minting them.',
  },
)


export type SigningKeyConfig = Static<typeof SigningKey>
export type ExternalIssuerConfig = Static<typeof ExternalIssuer>

/** The asymmetric algorithms a DPoP proof may use (RFC 9449 §4.2); none and HS* cannot be listed. */
const DPOP_ALGORITHM_NAMES = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA', 'Ed25519'] as const

export const DpopSchema = Type.Object(
  {
    algorithms: Type.Array(Type.Union(DPOP_ALGORITHM_NAMES.map((a) => Type.Literal(a))), {
      minItems: 1,
      uniqueItems: true,
      default: ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'],
      description: 'JWS algorithms accepted on DPoP proofs, advertised as dpop_signing_alg_values_supported.',
    }),
    requireNonce: Type.Boolean({
      default: false,
      description:
        'RFC 9449 §8/§9: proofs must carry a nonce the gateway issued within the last minute or two; a proof ' +
        'without one is answered use_dpop_nonce with a DPoP-Nonce header, and clients retry with it.',
    }),
    proofLifetimeSeconds: Type.Integer({
      minimum: 10,
      maximum: 600,
      default: 120,
      description:
        'How old a proof\'s iat may be (plus accessTokens.clockToleranceSeconds ahead); also how long a proof\'s jti ' +
        'is remembered, in the store every replica shares, to refuse its replay.',
    }),
  },
  {
    ...strict,
    default: {},
    description:
      'DPoP (RFC 9449): tokens bound to a key the client proves it holds on every request. Always accepted: a token ' +
      'request with a DPoP proof gets a bound token (token_type DPoP), which the resource then accepts only with ' +
      'the DPoP scheme and a fresh proof by the same key.',
  },
)

export type DpopConfig = Static<typeof DpopSchema>
