/**
 * Who a rule admits, from what the login provider (or the token) says about a person: subject,
 * email, groups. Pure: no I/O, no Fastify. Used by a resource's `access` rules (at login and at
 * every refresh) and by the `users` condition of MCP policy rules, so both read people alike.
 */

/** What is known about a person. `email` is set only when verified (requireVerifiedEmail). */
export interface UserAttributes {
  sub: string
  email?: string | undefined
  groups?: readonly string[] | undefined
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
}

export function usersMatch(conditions: UserConditions, user: UserAttributes): boolean {
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
  if (rules === undefined || rules.allowAnyUser) return true
  return usersMatch(rules, user)
}

function domainOf(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1)
}
