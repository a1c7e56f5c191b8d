/**
 * What the schema cannot say about one pre-registered client: how it authenticates (a secret, or
 * keys for private_key_jwt, never both), which grants fit together, and the machine limits of a
 * client_credentials client. Public clients never get client_credentials (CC-01, OAuth 2.1 §4.2).
 */
import { keySetProblem } from '../policy/client-public-keys.js'
import type { StaticClientConfig } from './authorization-server-schema.js'
import type { ResourceConfig } from './resource-schema.js'

export function staticClientProblems(client: StaticClientConfig, at: string, resources: readonly ResourceConfig[]): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = []
  const add = (path: string, message: string) => problems.push({ path: `${at}.${path}`, message })
  const method = client.tokenEndpointAuthMethod
  const usesSecret = method === 'client_secret_basic' || method === 'client_secret_post'
  if (usesSecret && client.secret === undefined) add('secret', `is required with ${method}`)
  if (method === 'none' && client.secret !== undefined) add('secret', 'a public client (none) has no secret')
  if (method === 'private_key_jwt') {
    if (client.secret !== undefined) add('secret', 'a private_key_jwt client authenticates with its key, not a secret')
    if ((client.jwks === undefined) === (client.jwksUri === undefined)) add('jwks', 'private_key_jwt needs exactly one of jwks or jwksUri')
    const problem = client.jwks === undefined ? undefined : keySetProblem(client.jwks)
    if (problem !== undefined) add('jwks', problem)
  } else if (client.jwks !== undefined || client.jwksUri !== undefined) {
    add(client.jwks !== undefined ? 'jwks' : 'jwksUri', 'keys are for tokenEndpointAuthMethod private_key_jwt only')
  }

  const grants = client.grantTypes
  if (grants.includes('authorization_code') && client.redirectUris === undefined) add('redirectUris', 'is required with authorization_code')
  if (grants.includes('refresh_token') && !grants.includes('authorization_code')) {
    add('grantTypes', 'refresh_token comes with authorization_code (client_credentials never gets refresh tokens, RFC 6749 §4.4.3)')
  }
  const machine = grants.includes('client_credentials')
  if (machine && method === 'none') {
    add('grantTypes', 'client_credentials is for confidential clients: a public client (none) never gets it (OAuth 2.1 §4.2)')
  }
  if (grants.includes('urn:ietf:params:oauth:grant-type:jwt-bearer') && method === 'none') {
    add('grantTypes', 'the ID-JAG grant is for confidential clients: a public client (none) never gets it (ID-JAG §9.1)')
  }
  if (!machine && (client.resources !== undefined || client.scopes !== undefined)) {
    add(client.resources !== undefined ? 'resources' : 'scopes', 'limits what a client_credentials client may get; this client does not have that grant')
  }
  client.resources?.forEach((id, j) => {
    if (!resources.some((r) => r.id === id)) add(`resources[${j}]`, `no resource has the id "${id}"`)
  })
  return problems
}

/** The limits of registration.clientCredentials and of a CIMD trust entry's clientCredentials. */
export function machineLimitProblems(
  limits: { resources?: readonly string[]; scopes?: readonly string[] } | undefined,
  at: string,
  resources: readonly ResourceConfig[],
): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = []
  limits?.resources?.forEach((id, j) => {
    if (!resources.some((r) => r.id === id)) problems.push({ path: `${at}.resources[${j}]`, message: `no resource has the id "${id}"` })
  })
  const reachable = resources.filter((r) => limits?.resources === undefined || limits.resources.includes(r.id))
  limits?.scopes?.forEach((scope, j) => {
    if (!reachable.some((r) => r.scopes.some((s) => s.name === scope))) {
      problems.push({ path: `${at}.scopes[${j}]`, message: `no resource these clients may reach knows the scope "${scope}"` })
    }
  })
  return problems
}
