/**
 * Who a rule admits, from what the login provider (or the token) says about a person: subject,
 * email, groups. Pure: no I/O, no Fastify. Used by a resource's `access` rules (at login and at
 * every refresh) and by the `users` condition of MCP policy rules, so both read people alike.
 * Machine clients (client_credentials) are never people: only rules that name them by client id
 * (`clients`) admit them (CC-05). Workloads (workload identity federation) are never people
 * either: only `workloads` conditions of MCP policy rules name them (WIF-05).
 */

/** What is known about a person. `email` is set only when verified (requireVerifiedEmail). */
export interface UserAttributes {
  sub: string
  email?: string | undefined
  groups?: readonly string[] | undefined
  /** A machine client's own token (client_credentials): no user condition ever matches it (CC-05). */
  machine?: boolean | undefined
  /** A workload's token (its workload name): no user condition ever matches it (WIF-05). */
  workload?: string | undefined
}

/** Conditions on a person; every given one must hold. */
export interface UserConditions {
  subjects?: readonly string[] | undefined
  emails?: readonly string[] | undefined
  emailDomains?: readonly string[] | undefined
  groupsAnyOf?: readonly string[] | undefined
  groupsAllOf?: readonly string[] | undefined
}

/** A resource's `access` rules. */
export interface AccessRules extends UserConditions {
  allowAnyUser?: boolean | undefined
  /** Machine clients (client_credentials) that may get tokens for the resource; absent: any machine client. */
  clients?: readonly string[] | undefined
}

/**
 * The subject of a machine client's token (RFC 9068 §2.2: it identifies the client). No person's
 * subject has this form: subjects are `<login provider id>:…` and no provider may be named `client`.
 */
export const machineSubject = (clientId: string) => `client:${clientId}`

export const isMachineSubject = (sub: string, clientId: string | undefined) => clientId !== undefined && sub === machineSubject(clientId)

/**
 * WIF-05: a workload's subject is namespaced by the issuer entry it came through, so two issuers'
 * equal `sub` never become one subject; its client id names the workload principal of the rule
 * that admitted it. No person's subject has this form: no login provider may be named `workload`.
 */
export const WORKLOAD_PREFIX = 'workload:'
export const workloadSubject = (issuerId: string, sub: string) => `${WORKLOAD_PREFIX}${issuerId}:${sub}`
export const workloadClientId = (name: string) => `${WORKLOAD_PREFIX}${name}`

/**
 * The workload name of a token whose subject is a workload's, or undefined for anyone else. A
 * `workload:` subject without a `workload:` client id is still no person: its name is '' (which
 * no policy list can name, since names are non-empty).
 */
export function workloadOf(sub: string, clientId: string | undefined): string | undefined {
  if (!sub.startsWith(WORKLOAD_PREFIX)) return undefined
  return clientId?.startsWith(WORKLOAD_PREFIX) ? clientId.slice(WORKLOAD_PREFIX.length) : ''
}

const USER_CONDITIONS = ['subjects', 'emails', 'emailDomains', 'groupsAnyOf', 'groupsAllOf'] as const

export function usersMatch(conditions: UserConditions, user: UserAttributes): boolean {
  if (user.machine || user.workload !== undefined) return false
  const email = user.email?.toLowerCase()
  const groups = new Set(user.groups ?? [])
  if (conditions.subjects && !conditions.subjects.includes(user.sub)) return false
  if (conditions.emails && (!email || !conditions.emails.some((e) => e.toLowerCase() === email))) return false
  // The domain is everything after the last @, compared exactly: sub.example.com is not example.com.
  if (conditions.emailDomains && (!email || !conditions.emailDomains.some((d) => domainOf(email) === d.toLowerCase()))) return false
  if (conditions.groupsAnyOf && !conditions.groupsAnyOf.some((g) => groups.has(g))) return false
  if (conditions.groupsAllOf && !conditions.groupsAllOf.every((g) => groups.has(g))) return false
  return true
}

/**
 * Whether a person may use a resource. No rules at all is only possible with static users
 * alone (load.ts refuses it with an oidc provider): then every configured user may.
 */
export function mayAccess(rules: AccessRules | undefined, user: UserAttributes): boolean {
  if (user.machine || user.workload !== undefined) return false
  if (rules === undefined || rules.allowAnyUser) return true
  // Rules that name only machine clients admit no person.
  if (!USER_CONDITIONS.some((k) => rules[k] !== undefined)) return false
  return usersMatch(rules, user)
}

/** Whether a machine client may get tokens for a resource: its `access.clients`, when given, names it. */
export function machineMayAccess(rules: AccessRules | undefined, clientId: string): boolean {
  return rules?.clients === undefined || rules.clients.includes(clientId)
}

function domainOf(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1)
}
