/**
 * The `cimd` section of the configuration: Client ID Metadata Documents (CIMD draft -02).
 * Kept in its own module and included by schema.ts.
 */
import { Type, type Static, type TProperties } from '@sinclair/typebox'

import { machineLimits, strict } from './schema-kit.js'

const ClientCredentials = Type.Object(machineLimits, {
  ...strict,
  description:
    'Client ids this entry admits may list client_credentials in their document (OAuth 2.1 §4.2; CC-01): such a ' +
    'client must declare private_key_jwt with jwks or jwks_uri, and needs no redirect_uris when client_credentials ' +
    'is its only grant. Without this, a document listing client_credentials is refused.',
})

/** The three kinds of entry; allow entries may also admit machine clients. */
const trustEntry = <E extends TProperties>(extra: E, description: string) =>
  Type.Union(
    [
      Type.Object(
        { url: Type.String({ minLength: 1, maxLength: 8192, description: 'Exactly this client id (simple string comparison).' }), ...extra },
        strict,
      ),
      Type.Object(
        {
          prefix: Type.String({
            minLength: 1,
            maxLength: 8192,
            description:
              'Same scheme and authority, and a path starting with all of these path segments (https://example.com/a/b ' +
              'admits /a/b and /a/b/c, never /a/bc; a trailing slash admits only what is below). A query in the entry ' +
              'must match exactly.',
          }),
          ...extra,
        },
        strict,
      ),
      Type.Object(
        {
          host: Type.String({
            minLength: 1,
            maxLength: 260,
            description: 'The client id host, on the default port unless host:port; *.example.com matches any name below example.com.',
          }),
          ...extra,
        },
        strict,
      ),
    ],
    { description },
  )
const TrustEntry = trustEntry({}, 'One of url, prefix or host.')
const AllowEntry = trustEntry({ clientCredentials: Type.Optional(ClientCredentials) }, 'One of url, prefix or host; clientCredentials admits machines.')

const AnyJson = Type.Unknown()
const FieldPolicy = Type.Object(
  {
    value: Type.Optional(Type.Unknown({ description: 'Sets the member (null removes it). Applied first.' })),
    add: Type.Optional(Type.Array(AnyJson, { description: 'Adds these to an array member (creating it).' })),
    default: Type.Optional(Type.Unknown({ description: 'Sets the member when the document has none.' })),
    one_of: Type.Optional(Type.Array(AnyJson, { description: 'A present single value must be one of these.' })),
    subset_of: Type.Optional(
      Type.Array(AnyJson, { description: 'A present array is narrowed to these (values outside are dropped).' }),
    ),
    superset_of: Type.Optional(Type.Array(AnyJson, { description: 'A present array must contain all of these.' })),
    essential: Type.Optional(Type.Boolean({ description: 'true: the member must be present after the other operators.' })),
  },
  { ...strict, description: 'OpenID Federation 1.0 §6.1.3.1 operators for one client metadata member.' },
)

export const DEFAULT_CIMD_METADATA_POLICY = {
  grant_types: {
    default: ['authorization_code'],
    subset_of: ['authorization_code', 'refresh_token'],
    superset_of: ['authorization_code'],
  },
  response_types: { default: ['code'], subset_of: ['code'] },
}

/** Asymmetric JWS algorithms a client assertion may use; none and HS* cannot be listed (SEC-31). */
export const ASSERTION_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA', 'Ed25519'] as const

const PrivateKeyJwt = Type.Object(
  {
    algorithms: Type.Array(Type.Union(ASSERTION_ALGORITHMS.map((a) => Type.Literal(a))), {
      minItems: 1,
      uniqueItems: true,
      default: ['ES256', 'ES384', 'PS256', 'PS384', 'RS256', 'EdDSA'],
      description:
        'JWS algorithms accepted for client assertions (RFC 7523 §3), advertised as ' +
        'token_endpoint_auth_signing_alg_values_supported. The default covers what MCP clients sign with (ChatGPT: ES256, ' +
        'the MCP SDK: any of them); none and HS* are never accepted, since a symmetric key would be a shared secret (CIMD §4.1).',
    }),
    maxAssertionLifetimeSeconds: Type.Integer({
      minimum: 10,
      maximum: 3600,
      default: 300,
      description:
        'An assertion whose exp lies further in the future than this is refused as too long-lived: the jti replay cache ' +
        'must hold every jti until its exp, and the MCP SDK signs for exactly 300 s.',
    }),
    clockToleranceSeconds: Type.Integer({
      minimum: 0,
      maximum: 300,
      default: 30,
      description: 'Allowed clock skew when checking exp, iat and nbf of an assertion: small, since the lifetime itself is short.',
    }),
    jwksMaxBytes: Type.Integer({
      minimum: 1024,
      maximum: 262144,
      default: 65536,
      description:
        'Largest key set accepted from a jwks_uri, refused while it streams: 64 KiB holds dozens of RSA keys, and key ' +
        'sets are larger than metadata documents (SEC-32).',
    }),
    jwksRefetchIntervalSeconds: Type.Integer({
      minimum: 1,
      maximum: 3600,
      default: 60,
      description:
        'An assertion naming an unknown kid makes the gateway fetch the client\'s jwks_uri again, at most once per this ' +
        'interval per client (SEC-31, SEC-32): a rotated key is picked up within a minute, and forged kids cannot make ' +
        'the gateway hammer the host.',
    }),
  },
  {
    ...strict,
    default: {},
    description:
      'private_key_jwt client authentication (RFC 7523) for metadata-document clients that declare it: assertion checks, ' +
      'and key sets from jwks or jwks_uri. Key sets from jwks_uri are cached within the cache bounds above.',
  },
)

const FetchRateLimit = Type.Object(
  {
    perHost: Type.Integer({
      minimum: 1,
      maximum: 100000,
      default: 60,
      description:
        'Metadata and key set fetches per client-id host in one window (cache hits are not counted). Generous: a real ' +
        'client host is fetched about once per cache lifetime; the limit stops the gateway being used as a fetch ' +
        'amplifier against one host (SEC-14, SEC-35).',
    }),
    windowSeconds: Type.Integer({
      minimum: 1,
      maximum: 86400,
      default: 60,
      description: 'The fixed window of the per-host limit, counted in the store so replicas share it.',
    }),
  },
  { ...strict, default: {}, description: 'Outbound fetches per client-id host (SEC-14); above it the client is refused as invalid_client without a fetch.' },
)

export const CimdSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description:
        'Accept client ids that are URLs of Client ID Metadata Documents and advertise ' +
        'client_id_metadata_document_supported. Off by default; nothing is trusted until trust says so.',
    }),
    trust: Type.Object(
      {
        allow: Type.Array(AllowEntry, {
          default: [],
          description:
            'Client ids the gateway will fetch, checked on the raw string before any DNS or network traffic. ' +
            'Empty (and any: false) means no CIMD client is accepted. An entry may add clientCredentials: ' +
            '{ resources?, scopes? } so that the client ids it admits may list client_credentials (private_key_jwt ' +
            'only; CC-01); documents admitted otherwise that list it are refused.',
        }),
        deny: Type.Array(TrustEntry, { default: [], description: 'Client ids refused even when allowed; deny always wins.' }),
        any: Type.Boolean({
          default: false,
          description:
            'Accept any client id that passes the URL rules (an open gateway, like plain CIMD). Warned about at startup; ' +
            'deny entries still apply.',
        }),
      },
      { ...strict, default: {}, description: 'Which client id URLs are considered at all; refusals name the rule.' },
    ),
    allowHttp: Type.Boolean({
      default: false,
      description: 'DEVELOPMENT: accept http:// client ids (Authlete\'s "HTTP scheme permitted"). Warned about at startup.',
    }),
    allowPrivateAddresses: Type.Boolean({
      default: false,
      description:
        'DEVELOPMENT: fetch from loopback, private and other special-use addresses and accept IP-literal hosts ' +
        '(CIMD -02 §8.6 allows this for a test server on the same loopback only). Warned about at startup.',
    }),
    allowQuery: Type.Boolean({
      default: false,
      description: 'Accept client ids with a query component (the draft says SHOULD NOT; Authlete refuses them by default).',
    }),
    maxUrlLength: Type.Integer({
      minimum: 32,
      maximum: 8192,
      default: 2048,
      description: 'Longest accepted client id, in characters: 2048 is far above real ones (about 60) and keeps keys and logs small.',
    }),
    cache: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description:
            'DEVELOPMENT when false: fetch the document on every use (Authlete\'s "always retrieved"), no negative cache ' +
            'either. Warned about at startup.',
        }),
        minSeconds: Type.Integer({
          minimum: 0,
          default: 60,
          description:
            'Lower bound on a document\'s cache lifetime, even with no-store or max-age=0: one fetch a minute per client ' +
            'at most (fetch amplification, SEC-35; a documented deviation from RFC 9111).',
        }),
        maxSeconds: Type.Integer({
          minimum: 1,
          default: 86400,
          description: 'Upper bound on the cache lifetime: 24 h as SEP-991 suggests, so changed documents are seen within a day.',
        }),
        defaultSeconds: Type.Integer({
          minimum: 0,
          default: 3600,
          description: 'Lifetime when the response has neither Cache-Control max-age nor Expires (then clamped to the bounds).',
        }),
        negativeSeconds: Type.Integer({
          minimum: 1,
          maximum: 3600,
          default: 30,
          description:
            'A failed fetch or invalid document is remembered this long, in a separate record that never holds a client, ' +
            'so retries do not hammer the host; short, because the fix is usually on the other side.',
        }),
      },
      { ...strict, default: {}, description: 'The document cache in the store, shared by replicas.' },
    ),
    fetch: Type.Object(
      {
        maxBytes: Type.Integer({
          minimum: 512,
          maximum: 65536,
          default: 5120,
          description:
            'Largest document accepted: 5120 bytes as the draft recommends (real documents are under 1 KB); up to 65536 ' +
            'for unusual clients. A larger body is refused while it streams.',
        }),
        connectTimeoutMs: Type.Integer({
          minimum: 100,
          maximum: 30000,
          default: 2000,
          description: 'TCP and TLS connection deadline: a document host is a fast static server, and a person is waiting.',
        }),
        timeoutMs: Type.Integer({
          minimum: 100,
          maximum: 60000,
          default: 5000,
          description: 'Deadline for the whole fetch (waiting for a slot, connecting, headers and body).',
        }),
        maxConcurrent: Type.Integer({
          minimum: 1,
          maximum: 1024,
          default: 16,
          description: 'Document fetches in flight at once per process; further ones wait within their deadline.',
        }),
      },
      { ...strict, default: {}, description: 'The hardened outbound fetch (also used for jwks_uri).' },
    ),
    fetchRateLimit: FetchRateLimit,
    privateKeyJwt: PrivateKeyJwt,
    metadataPolicy: Type.Record(Type.String({ pattern: '^[a-z0-9_]{1,64}$' }), FieldPolicy, {
      default: DEFAULT_CIMD_METADATA_POLICY,
      description:
        'OpenID Federation 1.0 §6.1 metadata policy keyed by client metadata name (as Authlete\'s cimdMetadataPolicy), ' +
        'applied to every document; the result is the client the gateway uses. The default drops grant types the ' +
        'gateway does not support (Claude Desktop lists one) and requires authorization_code. Giving a policy replaces ' +
        'the default: keep a grant_types subset_of. Invalid operator combinations fail at load.',
    }),
  },
  {
    ...strict,
    default: {},
    description:
      'Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-02): clients identified by an https ' +
      'URL whose JSON document the gateway fetches under SSRF protections, trust policy and metadata policy.',
  },
)

export type CimdConfig = Static<typeof CimdSchema>
export type PrivateKeyJwtConfig = Static<typeof PrivateKeyJwt>
export type CimdFetchRateLimitConfig = Static<typeof FetchRateLimit>
export type CimdTrustEntryConfig = Static<typeof TrustEntry>
export type CimdAllowEntryConfig = Static<typeof AllowEntry>
export type MachineLimitsConfig = Static<typeof ClientCredentials>
