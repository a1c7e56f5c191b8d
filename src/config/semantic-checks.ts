/**
 * What the schema cannot say about the configuration as a whole: the public URL is an origin,
 * paths do not collide with the gateway's own, upstreams are not the gateway itself, identity
 * headers cannot carry credentials, client ids stay in their namespaces. Called by load.ts,
 * which reports every problem at once with its path.
 */
import { NAMED_METHODS } from '../policy/mcp-rules.js'
import { adminConfigProblems } from './admin-schema.js'
import { cimdConfigProblems } from './cimd-checks.js'
import { enterpriseConfigProblems } from './enterprise-schema.js'
import { workloadConfigProblems } from './workload-schema.js'
import { loginConfigProblems } from './login-schema.js'
import { isAcceptableRedirectUri, isLoopbackHost } from './loopback.js'
import { REGISTERED_CLIENT_ID_PREFIX, type Config } from './schema.js'
import { machineLimitProblems, staticClientProblems } from './static-client-checks.js'

const RESERVED_PATH = /^\/(\.well-known|oauth|healthz|readyz|metrics|account|admin)(\/|$)/

export function semanticProblems(c: Config): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = []
  const add = (path: string, message: string) => problems.push({ path, message })
  // Every published URL (issuer, resource identifiers, metadata) is built from this string, so it
  // must be exactly an origin: no credentials, spaces, backslashes, default port or upper case.
  const publicUrl = URL.canParse(c.publicUrl) ? new URL(c.publicUrl) : undefined
  if (!publicUrl || publicUrl.origin !== c.publicUrl.replace(/\/$/, '')) {
    add('publicUrl', `must be an origin written as ${publicUrl ? publicUrl.origin : 'https://host[:port]'} (scheme, lower-case host, port only if not the default)`)
    return problems
  }
  if (publicUrl.protocol === 'http:' && !isLoopbackHost(publicUrl.hostname)) {
    add('publicUrl', 'must be https (http is allowed for localhost, 127.0.0.1 and [::1] only)')
  }
  if (c.issuer !== undefined) {
    const issuer = new URL(c.issuer)
    if (issuer.search || issuer.hash) add('issuer', 'must not have a query or fragment (RFC 8414 §2)')
    if (issuer.username || issuer.password) add('issuer', 'must not carry credentials')
    if (issuer.origin !== publicUrl.origin) add('issuer', 'must be on the publicUrl origin (it serves the metadata)')
  }
  if (c.externalIssuer && c.keys.length > 0) {
    add('keys', 'signing keys are not used when externalIssuer is set; remove one of them')
  }
  const active = c.keys.filter((k) => k.active).length
  if (c.keys.length > 1 && active !== 1) add('keys', `exactly one key must be active (found ${active})`)
  if (c.store.type === 'redis' && c.store.redis?.sentinels && !c.store.redis.sentinelMasterName) {
    add('store.redis.sentinelMasterName', 'is required with sentinels')
  }
  if (c.store.redis?.sentinelPassword && !c.store.redis.sentinels) {
    add('store.redis.sentinelPassword', 'is the password of sentinels: it needs store.redis.sentinels')
  }
  if (c.store.redis?.sentinels && c.store.redis.clusterNodes) {
    add('store.redis', 'give sentinels or clusterNodes, not both')
  }

  const seen = { id: new Map<string, number>(), path: new Map<string, number>() }
  c.resources.forEach((r, i) => {
    const at = `resources[${i}]`
    for (const key of ['id', 'path'] as const) {
      const prev = seen[key].get(r[key])
      if (prev !== undefined) add(`${at}.${key}`, `"${r[key]}" is already used by resources[${prev}]`)
      else seen[key].set(r[key], i)
    }
    // The router decodes %XX before matching: /%6fauth/token is /oauth/token (RFC 3986 §6.2.2.2).
    const encodedUnreserved = /%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2[DE]|5F|7E)/i.exec(r.path)
    if (encodedUnreserved) add(`${at}.path`, `write ${encodedUnreserved[0]} as the character itself`)
    if (RESERVED_PATH.test(r.path)) add(`${at}.path`, `${r.path} is reserved for the gateway's own endpoints`)
    if (r.path.includes('//')) add(`${at}.path`, 'must not contain empty segments (//)')
    if (r.path.endsWith('/')) {
      add(`${at}.path`, 'must not end with "/" (MCPA-50: the canonical URI has no trailing slash)')
    }
    if (/(^|\/)\.\.?(\/|$)/.test(r.path)) add(`${at}.path`, 'must not contain . or .. segments')
    // Not a URL only when the schema refused it already (load.ts still runs these checks then).
    const upstream = URL.canParse(r.upstream) ? new URL(r.upstream) : undefined
    if (upstream) {
      if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:') add(`${at}.upstream`, 'must be http or https')
      if (upstream.username || upstream.password) add(`${at}.upstream`, 'must not carry credentials')
      if (upstream.hash) add(`${at}.upstream`, 'must not have a fragment')
      // SEC-05's rule for client ids, applied to upstreams: the gateway never proxies to itself.
      const upstreamPort = Number(upstream.port || (upstream.protocol === 'https:' ? 443 : 80))
      const ownListener =
        c.listen.port !== 0 && upstreamPort === c.listen.port && (isLoopbackHost(upstream.hostname) || upstream.hostname === c.listen.host)
      if (upstream.origin === publicUrl.origin || ownListener) add(`${at}.upstream`, 'points at the gateway itself')
    }
    const known = new Set(r.scopes.map((s) => s.name))
    if (known.size !== r.scopes.length) add(`${at}.scopes`, 'lists a scope twice')
    for (const s of r.requiredScopes) {
      if (!known.has(s)) add(`${at}.requiredScopes`, `"${s}" is not listed in scopes`)
    }
    r.policy.rules.forEach((rule, j) => {
      const where = `${at}.policy.rules[${j}]`
      for (const scope of rule.scopes ?? []) {
        if (!known.has(scope)) add(`${where}.scopes`, `"${scope}" is not listed in the resource's scopes`)
      }
      if (rule.name !== undefined && !rule.method.includes('*') && !(rule.method in NAMED_METHODS)) {
        add(`${where}.name`, `${rule.method} calls have no name; name applies to ${Object.keys(NAMED_METHODS).join(', ')}`)
      }
      if (rule.action === 'deny' && (rule.scopes !== undefined || rule.users !== undefined)) {
        add(where, 'a deny rule takes no scopes or users')
      }
    })
    const headers = Object.values(r.identityHeaders).map((h) => h.toLowerCase())
    if (new Set(headers).size !== headers.length) add(`${at}.identityHeaders`, 'names one header twice')
    const auth = r.upstreamAuth
    const kinds = auth === undefined ? [] : (['header', 'jwt', 'exchange'] as const).filter((k) => auth[k] !== undefined)
    if (auth !== undefined && kinds.length !== 1) add(`${at}.upstreamAuth`, 'give exactly one of header, jwt or exchange')
    for (const kind of ['jwt', 'exchange'] as const) {
      // Both sign a JWT about the caller with the active key, which only the built-in AS has.
      if (auth?.[kind] !== undefined && c.externalIssuer) add(`${at}.upstreamAuth.${kind}`, 'needs the gateway\'s own signing keys, which externalIssuer mode does not have')
    }
    const exchange = auth?.exchange
    if (exchange !== undefined) {
      const endpoint = new URL(exchange.tokenEndpoint)
      const secure = endpoint.protocol === 'https:' || (endpoint.protocol === 'http:' && isLoopbackHost(endpoint.hostname))
      // The client secret and the subject token travel in this request (RFC 6749 §2.3.1 requires TLS).
      if (!secure) add(`${at}.upstreamAuth.exchange.tokenEndpoint`, 'must be https (http only on localhost, 127.0.0.1 or [::1])')
      if (endpoint.username || endpoint.password || endpoint.hash) add(`${at}.upstreamAuth.exchange.tokenEndpoint`, 'must not carry credentials or a fragment')
      if (exchange.audience === undefined && exchange.resource === undefined) {
        add(`${at}.upstreamAuth.exchange`, 'give audience or resource (or both): the token service must know which upstream the token is for')
      }
    }
    const secretHeader = auth?.header?.name.toLowerCase()
    // Authorization is the usual place of an API key; the client's own Authorization never passes.
    if (secretHeader !== undefined && secretHeader !== 'authorization' && (PROTECTED_HEADERS.has(secretHeader) || secretHeader.startsWith('mcp-') || headers.includes(secretHeader))) {
      add(`${at}.upstreamAuth.header.name`, `"${auth!.header!.name}" is a header the gateway already owns`)
    }
    for (const h of headers) {
      if (PROTECTED_HEADERS.has(h) || h.startsWith('mcp-')) add(`${at}.identityHeaders`, `"${h}" cannot carry identity`)
    }
  })
  if (c.resources.filter((r) => r.default).length > 1) add('resources', 'at most one resource can be the default')

  const clientIds = new Set<string>()
  c.clients.forEach((client, i) => {
    const at = `clients[${i}]`
    if (clientIds.has(client.clientId)) add(`${at}.clientId`, `"${client.clientId}" is listed twice`)
    if (client.clientId.toLowerCase().startsWith(REGISTERED_CLIENT_ID_PREFIX)) {
      add(`${at}.clientId`, `must not start with "${REGISTERED_CLIENT_ID_PREFIX}" (reserved for dynamically registered clients)`)
    }
    clientIds.add(client.clientId)
    problems.push(...staticClientProblems(client, at, c.resources))
    for (const [j, uri] of (client.redirectUris ?? []).entries()) {
      if (!isAcceptableRedirectUri(uri)) {
        add(`${at}.redirectUris[${j}]`, 'must be https, http on localhost/127.0.0.1/[::1], or a private-use scheme, without fragment')
      }
    }
  })
  if (c.clients.length > 0 && c.externalIssuer) add('clients', 'clients belong to the built-in authorization server, unused with externalIssuer')
  if (c.registration.enabled && c.externalIssuer) {
    add('registration.enabled', 'registration belongs to the built-in authorization server, unused with externalIssuer')
  }
  if (c.metrics.enabled && c.metrics.listen.port !== 0 && c.metrics.listen.port === c.listen.port) {
    add('metrics.listen.port', 'must differ from listen.port: metrics have a listener of their own, never the main one')
  }
  const machineReg = c.registration.clientCredentials
  if (machineReg) {
    problems.push(...machineLimitProblems(machineReg, 'registration.clientCredentials', c.resources))
    // CC-01: only a confidential registration may get the grant, so a secret method must be registrable.
    if (!c.registration.tokenEndpointAuthMethods.some((m) => m !== 'none')) {
      add('registration.clientCredentials', 'needs client_secret_basic or client_secret_post in registration.tokenEndpointAuthMethods: machine clients are confidential')
    }
  }
  problems.push(...cimdConfigProblems(c.cimd, c.externalIssuer !== undefined))
  c.cimd.trust.allow.forEach((entry, i) => {
    problems.push(...machineLimitProblems(entry.clientCredentials, `cimd.trust.allow[${i}].clientCredentials`, c.resources))
  })
  // A person's subject is <prefix>:<id>; the prefixes of static users and machine clients are taken.
  problems.push(...enterpriseConfigProblems(c.enterpriseAuthorization, c.clients, ['static', 'client', 'workload']))
  if (c.enterpriseAuthorization.issuers.length > 0 && c.externalIssuer) {
    add('enterpriseAuthorization.issuers', 'ID-JAG assertions belong to the built-in authorization server, unused with externalIssuer')
  }
  // WIF-05: workload subjects are workload:<issuer id>:<sub>, client ids workload:<name>.
  const scopesOf = (id: string) => c.resources.find((r) => r.id === id)?.scopes.map((s) => s.name) ?? []
  problems.push(...workloadConfigProblems(c.workloadIdentity, c.resources.map((r) => r.id), scopesOf))
  if (c.workloadIdentity.issuers.length > 0 && c.externalIssuer) {
    add('workloadIdentity.issuers', 'workload tokens are exchanged at the built-in authorization server, unused with externalIssuer')
  }
  problems.push(...loginConfigProblems(c.login, c.resources))
  problems.push(...adminConfigProblems(c.admin))
  if (c.admin.enabled && c.externalIssuer) add('admin.enabled', 'the console is part of the built-in authorization server, which externalIssuer mode does not run')
  if (c.admin.enabled && c.admin.access && !c.login.static && c.login.oidc.length === 0) {
    add('admin.access', 'names people, but no login (login.static or login.oidc) lets anyone sign in')
  }
  return problems
}

const PROTECTED_HEADERS = new Set(['authorization', 'cookie', 'host', 'content-type', 'content-length', 'origin'])
