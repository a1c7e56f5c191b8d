/**
 * The embedded configuration `gatehouse serve` uses when given none: everything in one process
 * on loopback (memory store, generated key, the bundled demo MCP server upstream).
 */
export function demoConfig(port: number, upstreamUrl: string): object {
  return {
    publicUrl: `http://localhost:${port}`,
    listen: { host: '127.0.0.1', port },
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
