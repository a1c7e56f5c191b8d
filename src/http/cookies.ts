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

/** The value of one cookie of a Cookie header, undefined when absent. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim()
  }
  return undefined
}

/**
 * Gatehouse's cookies: HttpOnly, SameSite=Lax, and `__Host-` + Secure on https (MCPS-03).
 * On plain-http localhost development the browser would drop a Secure cookie, so there the
 * prefix and flag are left out.
 */
export class CookieJar {
  readonly #secure: boolean
  constructor(publicUrl: string) {
    this.#secure = new URL(publicUrl).protocol === 'https:'
  }

  name(base: string): string {
    return this.#secure ? `__Host-${COOKIE_PREFIX}-${base}` : `${COOKIE_PREFIX}-${base}`
  }

  serialize(base: string, value: string, maxAgeSeconds: number): string {
    const attrs = [`${this.name(base)}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${maxAgeSeconds}`]
    if (this.#secure) attrs.push('Secure')
    return attrs.join('; ')
  }

  clear(base: string): string {
    return this.serialize(base, '', 0)
  }
}
