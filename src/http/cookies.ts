/** Names of the cookies Gatehouse sets; they never travel to an upstream (MCPA-60). */
export const COOKIE_PREFIX = 'gatehouse'

export function isGatehouseCookie(name: string): boolean {
  const n = name.trim()
  return n.startsWith(COOKIE_PREFIX) || n.startsWith(`__Host-${COOKIE_PREFIX}`) || n.startsWith(`__Secure-${COOKIE_PREFIX}`)
}

/** The Cookie header without Gatehouse's own cookies; undefined when nothing is left. */
export function withoutGatehouseCookies(header: string): string | undefined {
  const kept = header.split(';').filter((pair) => !isGatehouseCookie(pair.split('=', 1)[0]!))
  return kept.length > 0 ? kept.map((p) => p.trim()).join('; ') : undefined
}
