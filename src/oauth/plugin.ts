/**
 * The authorization-server role: metadata, keys, the authorization endpoint with login and
 * consent, token, revocation and introspection. Not registered in external-issuer mode.
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance } from 'fastify'
import { AuditTrail } from '../audit/events.js'
import type { GatewayConfig } from '../config/load.js'
import { CookieJar } from '../http/cookies.js'
import { PasswordFailureLimit } from '../http/password-failures.js'
import { limitAuthorizationServer, RateLimiter } from '../http/rate-limit.js'
import type { Keystore } from '../keys/keystore.js'
import type { RevocationList } from '../keys/revocations.js'
import type { AccessTokenVerifier } from '../keys/tokens.js'
import { OidcLoginProvider } from '../login/oidc.js'
import { LoginSessions } from '../login/sessions.js'
import { StaticLoginProvider } from '../login/static.js'
import type { Store } from '../store/store.js'
import { registerAccount } from './account/routes.js'
import { registerConsole } from './admin/console.js'
import { registerAuthorize } from './authorize/endpoint.js'
import { registerLogout } from './authorize/logout.js'
import { authorizeSteps } from './authorize/steps.js'
import { registerUpstreamLogin } from './authorize/upstream-login.js'
import { createClientKeyChecks } from './clients/create-key-checks.js'
import { RegisteredClients } from './clients/registered.js'
import { ClientSources, StaticClients } from './clients/registry.js'
import { oauthPaths } from './endpoints.js'
import { Grants } from './grants/grants.js'
import { authorizationServerMetadata, metadataPath } from './metadata.js'
import { registrationRoutes } from './registration/endpoint.js'
import { registerRevokeIntrospect } from './token/revoke-introspect.js'
import { registerToken } from './token/endpoint.js'

export interface OAuthPluginOptions {
  config: GatewayConfig
  store: Store
  keystore: Keystore
  verifier: AccessTokenVerifier
  /** Revoked grants, shared with the token check of the resource side (§11.4 REV-01). */
  revocations?: RevocationList | undefined
  /** Records the authorization server's security decisions. Default: recorded nowhere. */
  audit?: AuditTrail
}

export async function oauthPlugin(
  app: FastifyInstance,
  { config, store, keystore, verifier, revocations, audit = new AuditTrail() }: OAuthPluginOptions,
) {
  // OAuth endpoints take form-encoded bodies only (RFC 6749 §3.2, §4.1.3); nothing else is parsed.
  app.removeAllContentTypeParsers()
  await app.register(formbody, { bodyLimit: 16 * 1024 })
  // Before any route: the limits attach to routes as they are registered.
  const limiter = new RateLimiter(store, audit)
  limitAuthorizationServer(app, limiter, config.rateLimits)
  const as = config.authorizationServer
  // Pre-registered clients first, so their ids always win (SEC-05); then dynamically registered
  // ones (ids `dcr.…`, never URL-shaped), only while registration is on; metadata documents last.
  const registered = new RegisteredClients(store, config.registration)
  const { cimdClients, assertions } = createClientKeyChecks(app, config, store, audit)
  const clients = new ClientSources([
    new StaticClients(config.clients),
    ...(config.registration.enabled ? [registered] : []),
    ...(cimdClients ? [cimdClients] : []),
  ])
  const grants = new Grants(store, as, audit, revocations)
  const sessions = new LoginSessions(store, as.sessionTtlSeconds)
  const login = config.login.static ? new StaticLoginProvider(config.login.static.users) : undefined
  const oidc = config.login.oidc.map((p) => new OidcLoginProvider(p, config.publicUrl))
  const cookies = new CookieJar(config.publicUrl)

  const metadata = JSON.stringify(authorizationServerMetadata(config))
  const jwks = JSON.stringify(keystore.jwks)
  const publicJson = (body: string) => async (_request: unknown, reply: import('fastify').FastifyReply) =>
    reply.type('application/json').header('cache-control', 'public, max-age=300').header('access-control-allow-origin', '*').send(body)
  app.get(metadataPath(config.issuer), publicJson(metadata))
  app.get(oauthPaths.jwks, publicJson(jwks))

  const passwordFailures = config.rateLimits.enabled
    ? new PasswordFailureLimit(store, audit, config.rateLimits.passwordLogin)
    : undefined
  const authorizeDeps = { config, store, clients, grants, sessions, login, oidc, cookies, audit, passwordFailures }
  const steps = authorizeSteps(authorizeDeps)
  registerAuthorize(app, authorizeDeps, steps)
  registerUpstreamLogin(app, authorizeDeps, steps)
  registerLogout(app, { config, sessions, cookies })
  registerAccount(app, { config, store, grants, clients, sessions, login, oidc, cookies, audit, passwordFailures })
  if (config.admin.enabled) {
    const sessionRules = { passwordLogin: login !== undefined, oidcProviderIds: oidc.map((p) => p.id), maxAgeSeconds: config.login.session.maxAgeSeconds }
    registerConsole(app, { config, store, grants, keystore, sessions, sessionRules, cookies, audit })
  }
  registerToken(app, { config, clients, grants, keystore, store, assertions, audit })
  registerRevokeIntrospect(app, { config, clients, grants, verifier, assertions })
  if (config.registration.enabled) await app.register(registrationRoutes, { config, registered, limiter, audit })
}
