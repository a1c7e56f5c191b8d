/**
 * Which kind of endpoint a request hit, as a bounded label: derived from the pattern of the
 * Fastify route that matched (never from the raw URL, which is attacker-chosen), and the
 * resource it belongs to (a configured id).
 */

export type RouteClass =
  | 'mcp'
  | 'prm'
  | 'as_metadata'
  | 'jwks'
  | 'authorize'
  | 'token'
  | 'register'
  | 'revoke'
  | 'introspect'
  | 'login'
  | 'health'
  | 'other'

export interface ClassifiedRoute {
  route: RouteClass
  /** The resource id, or "" for endpoints that belong to no resource. */
  resource: string
}

const PRM_ROOT = '/.well-known/oauth-protected-resource'
const OTHER: ClassifiedRoute = { route: 'other', resource: '' }

const FIXED: readonly [RegExp, RouteClass][] = [
  [/^\/\.well-known\/(oauth-authorization-server|openid-configuration)(\/|$)/, 'as_metadata'],
  [/^\/oauth\/jwks$/, 'jwks'],
  [/^\/oauth\/authorize(\/|$)/, 'authorize'],
  [/^\/oauth\/token$/, 'token'],
  [/^\/oauth\/register(\/|$)/, 'register'],
  [/^\/oauth\/revoke$/, 'revoke'],
  [/^\/oauth\/introspect$/, 'introspect'],
  [/^\/(oauth\/)?(login|logout|callback)(\/|$)/, 'login'],
  [/^\/(healthz|readyz)$/, 'health'],
]

export class RouteClassifier {
  readonly #cache = new Map<string, ClassifiedRoute>()
  readonly #resources: readonly { id: string; path: string; metadataPath: string }[]
  readonly #rootResource: string | undefined

  constructor(resources: readonly { id: string; path: string; metadataPath: string }[], defaultResourceId?: string) {
    this.#resources = resources
    this.#rootResource = defaultResourceId
  }

  /**
   * The class of a matched route pattern (`request.routeOptions.url`); undefined (no route
   * matched: the 404 handler) is `other`. Patterns are few, so the answers are cached.
   */
  classify(pattern: string | undefined): ClassifiedRoute {
    if (pattern === undefined) return OTHER
    let hit = this.#cache.get(pattern)
    if (!hit) {
      hit = this.#compute(pattern)
      // Route patterns are fixed at startup, so the cache is bounded by the routes; the guard
      // keeps it so even if something registered routes at run time.
      if (this.#cache.size < 1000) this.#cache.set(pattern, hit)
    }
    return hit
  }

  #compute(pattern: string): ClassifiedRoute {
    for (const r of this.#resources) {
      if (pattern === r.metadataPath) return { route: 'prm', resource: r.id }
      if (pattern === r.path) return { route: 'mcp', resource: r.id }
    }
    // The proxy's own sub-patterns (e.g. `/mcp/`, `/mcp/*`): the longest resource path owns them.
    let owner: { id: string; path: string } | undefined
    for (const r of this.#resources) {
      if (pattern.startsWith(`${r.path}/`) && (!owner || r.path.length > owner.path.length)) owner = r
    }
    if (owner) return { route: 'mcp', resource: owner.id }
    if (pattern === PRM_ROOT) return { route: 'prm', resource: this.#rootResource ?? '' }
    for (const [re, route] of FIXED) if (re.test(pattern)) return { route, resource: '' }
    return OTHER
  }
}
