/**
 * What a running gateway can take over from a new configuration file (issue 17, live reload) and
 * what only a restart applies. Everything not listed in RESTART_ONLY reloads live: resources and
 * their policies, access rules and upstreams, clients, registration, CIMD trust and policy,
 * enterprise and workload issuers, login, the authorization server's settings, DPoP, rate limits,
 * trustProxy. The Helm chart rolls the pods only when one of these settings changes
 * (helm/gatehouse/templates/_helpers.tpl, `gatehouse.restartOnlyConfig`; a deploy test keeps the
 * two lists equal).
 */
import { isDeepStrictEqual } from 'node:util'
import { developmentWarnings, type GatewayConfig, type Resource } from './load.js'

/**
 * Each is read once at start by something that outlives a reload:
 * publicUrl, issuer: the token verifier and every token already issued name them (ISS-*), and
 *   resource URIs, which are token audiences, derive from publicUrl;
 * listen: the bound socket; log: the process's logger; store: the open connection;
 * keys, externalIssuer, accessTokens: the keystore and the token verifier (with the revocation
 *   list's retention, derived from the token lifetime);
 * audit, metrics, tracing: the open sink, the metrics listener, the tracing SDK;
 * shutdown: the chart derives the pod's termination grace period from it.
 */
export const RESTART_ONLY = [
  'publicUrl',
  'issuer',
  'listen',
  'log',
  'store',
  'keys',
  'externalIssuer',
  'accessTokens',
  'audit',
  'metrics',
  'tracing',
  'shutdown',
] as const satisfies readonly (keyof GatewayConfig)[]

/** The restart-only settings whose values differ between the running and the new configuration. */
export function restartOnlyChanges(running: GatewayConfig, next: GatewayConfig): string[] {
  return RESTART_ONLY.filter((key) => !isDeepStrictEqual(running[key], next[key]))
}

/**
 * The new configuration with the running values of every restart-only setting, as the gateway
 * will actually run it: resource URLs are derived again from the running publicUrl, so they stay
 * the audiences of the tokens the running verifier accepts.
 */
export function withRunningRestartOnly(running: GatewayConfig, next: GatewayConfig): GatewayConfig {
  const kept = Object.fromEntries(RESTART_ONLY.map((key) => [key, running[key]]))
  const publicUrl = running.publicUrl
  const resources: Resource[] = next.resources.map((r) =>
    Object.freeze({
      ...r,
      uri: publicUrl + r.path,
      metadataUrl: publicUrl + r.metadataPath,
    }),
  )
  const defaultResource = next.defaultResource && resources[next.resources.indexOf(next.defaultResource)]
  const effective = { ...next, ...kept, resources: Object.freeze(resources), defaultResource }
  return Object.freeze({ ...effective, warnings: Object.freeze(developmentWarnings(effective)) })
}
