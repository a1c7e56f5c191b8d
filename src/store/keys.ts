/**
 * Every key Gatehouse writes, in one place (documented in src/store/README.md).
 * The Redis store adds its configured prefix; values are JSON unless stated.
 */
export const storeKeys = {
  /** Binding of an upstream Mcp-Session-Id to the principal that created it (MCPS-11/12). */
  mcpSession: (resourceId: string, sessionIdHash: string) => `mcp-session:${resourceId}:${sessionIdHash}`,
  /** The generated development signing key, shared by replicas (private JWK). */
  devSigningKey: () => 'keys:dev-signing-key',
  /** The HMAC secret of DPoP server nonces, shared by replicas (RFC 9449 §8). */
  dpopNonceSecret: 'keys:dpop-nonce-secret',
  /** A browser login session at the gateway, by the hash of its cookie value. */
  loginSession: (idHash: string) => `login-session:${idHash}`,
  /** An operator console session started with the admin token, by the hash of its cookie value. */
  adminSession: (idHash: string) => `admin-session:${idHash}`,
  /** An authorization request between /authorize and the code: login and consent happen meanwhile. */
  authorizationRequest: (id: string) => `authz-request:${id}`,
  /** An issued authorization code, by its hash; taken once at the token endpoint. */
  authorizationCode: (codeHash: string) => `code:${codeHash}`,
  /** A redeemed code, remembered so a replay can revoke what it issued. */
  redeemedCode: (codeHash: string) => `code-redeemed:${codeHash}`,
  /** A grant: what one user allowed one client on one resource; refresh tokens live while it does. */
  grant: (grantId: string) => `grant:${grantId}`,
  /** The ids of one person's grants (a set), so the account page lists them by one key; stale ids are dropped on read. */
  grantsOfSubject: (subHash: string) => `grants-of:${subHash}`,
  /** A revoked grant's marker, kept through the code-replay window: a grant stored after its revocation is undone. */
  revokedGrant: (grantId: string) => `grant-revoked:${grantId}`,
  /** The log of revoked grants (a Redis stream) every replica reads into memory (§11.4 REV-01, REV-02). */
  revocations: 'revocations',
  /** A refresh token, live or rotated (with the salt of its successor), by its hash (REF-01..03). */
  refreshToken: (tokenHash: string) => `refresh:${tokenHash}`,
  /** Legacy (read only): a token rotated by an older version, by its hash: its reuse after the grace window revokes the grant. */
  rotatedRefreshToken: (tokenHash: string) => `refresh-rotated:${tokenHash}`,
  /** A remembered consent of one user for one client and resource. */
  consent: (subHash: string, clientIdHash: string, resourceId: string) => `consent:${subHash}:${clientIdHash}:${resourceId}`,
  /** A validated Client ID Metadata Document, by the SHA-256 of the exact client id string (it repeats the id). */
  cimdDocument: (clientIdHash: string) => `cimd-doc:${clientIdHash}`,
  /** A recent CIMD failure (fetch, document or policy), by the SHA-256 of the client id: never a client. */
  cimdFailure: (clientIdHash: string) => `cimd-fail:${clientIdHash}`,
  /** A dynamically registered client (RFC 7591), by its client id (always `dcr.…`). */
  registeredClient: (clientId: string) => `registered-client:${clientId}`,
  /** The client id an identical registration from one address already got, by hash of both. */
  registrationDedupe: (hash: string) => `registration-dedupe:${hash}`,
  /** Counter of new registrations in one window of unusedTtlSeconds (the global cap). */
  registrationCount: (window: number) => `registration-count:${window}`,
  /** Counter of registration requests from one source address in the current rate window. */
  registrationRate: (addressHash: string) => `registration-rate:${addressHash}`,
  /** Counter of one rate limit (`authorize`, `token`, `mcp`) for one address, client or subject, by hash. */
  rateLimit: (limit: string, scope: string, keyHash: string) => `rate:${limit}:${scope}:${keyHash}`,
  /** A key set fetched from a CIMD client's jwks_uri, by the SHA-256 of client id and jwks_uri (it repeats both). */
  cimdJwks: (hash: string) => `cimd-jwks:${hash}`,
  /** Marker of a recent unknown-kid refetch of one CIMD client's jwks_uri, by the SHA-256 of the client id (SEC-32). */
  cimdJwksRefetch: (clientIdHash: string) => `cimd-jwks-refetch:${clientIdHash}`,
  /** Counter of outbound metadata and key set fetches for one client-id host in the current window (SEC-14). */
  cimdFetchRate: (hostHash: string) => `cimd-fetch-rate:${hostHash}`,
  /** The last security and display fingerprints seen of one CIMD client's document, by the SHA-256 of its id (SEC-23). */
  cimdFingerprint: (clientIdHash: string) => `cimd-fingerprint:${clientIdHash}`,
  /** A client assertion jti already used, by the SHA-256 of client id and jti: single use until exp (SEC-31). */
  assertionJti: (hash: string) => `assertion-jti:${hash}`,
  /** An ID-JAG jti already used, by the SHA-256 of its issuer and jti: single use until exp (XAA-06). */
  idJagJti: (hash: string) => `id-jag-jti:${hash}`,
  /** WIF-04: a workload token used for a token: its issuer with its jti, or its hash without one. */
  workloadJti: (hash: string) => `workload-jti:${hash}`,
  /** A DPoP proof already seen, by the SHA-256 of its key thumbprint and jti: refused again within the proof window (RFC 9449 §11.1). */
  dpopJti: (hash: string) => `dpop-jti:${hash}`,
  /** An upstream OIDC login between the approval and the IdP's callback, by the hash of its `state`: taken once (MCPS-05). */
  upstreamLoginState: (stateHash: string) => `oidc-state:${stateHash}`,
} as const
