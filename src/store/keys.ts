/**
 * Every key Gatehouse writes, in one place (documented in src/store/README.md).
 * The Redis store adds its configured prefix; values are JSON unless stated.
 */
export const storeKeys = {
  /** Binding of an upstream Mcp-Session-Id to the principal that created it (MCPS-11/12). */
  mcpSession: (resourceId: string, sessionIdHash: string) => `mcp-session:${resourceId}:${sessionIdHash}`,
  /** The generated development signing key, shared by replicas (private JWK). */
  devSigningKey: () => 'keys:dev-signing-key',
} as const
