/**
 * The embedded configuration `gatehouse serve` uses when given none: everything in one process
 * on loopback (memory store, generated key, the bundled demo MCP server upstream), with one
 * demo user and one pre-registered public client for local MCP clients.
 */
export const DEMO_USER = { username: 'demo', password: 'demo-password' }
export const DEMO_CLIENT_ID = 'demo-client'

export function demoConfig(port: number, upstreamUrl: string, demoPasswordHash: string): object {
  return {
    publicUrl: `http://localhost:${port}`,
    listen: { host: '127.0.0.1', port },
    login: { static: { users: [{ username: DEMO_USER.username, passwordHash: demoPasswordHash, name: 'Demo User' }] } },
    // Off-the-shelf MCP clients (the Inspector, most IDEs) register themselves: open for the demo.
    registration: { enabled: true },
    clients: [
      {
        clientId: DEMO_CLIENT_ID,
        name: 'Local MCP client (demo)',
        // Loopback redirect URIs match on any port (RFC 8252 §7.3).
        redirectUris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
      },
    ],
    resources: [
      {
        id: 'demo',
        name: 'Gatehouse demo MCP server',
        path: '/mcp',
        upstream: upstreamUrl,
        default: true,
        scopes: [
          { name: 'mcp:tools', description: 'Use the demo tools' },
          { name: 'mcp:admin', description: 'Administer the demo server' },
        ],
        requiredScopes: ['mcp:tools'],
        identityHeaders: {
          subject: 'X-Gatehouse-Subject',
          clientId: 'X-Gatehouse-Client-Id',
          scope: 'X-Gatehouse-Scope',
        },
      },
    ],
  }
}
