import type { FetchedJson } from './fetch.js'

/**
 * RFC 9111 freshness from the response (s-maxage or max-age minus Age; else Expires minus
 * Date; no-store/no-cache → 0; nothing → the default), clamped to [min, max] (SEC-20).
 */
export function cacheLifetimeSeconds(
  headers: Pick<FetchedJson, 'cacheControl' | 'expires' | 'date' | 'age'>,
  bounds: { minSeconds: number; maxSeconds: number; defaultSeconds: number },
  now: number,
): number {
  let lifetime: number | undefined
  const directives = new Map(
    (headers.cacheControl ?? '')
      .split(',')
      .map((d) => d.trim().toLowerCase())
      .filter(Boolean)
      .map((d) => {
        const [k, v] = d.split('=', 2)
        return [k!.trim(), v?.trim().replace(/^"|"$/g, '')] as const
      }),
  )
  const age = Math.max(0, Number.parseInt(headers.age ?? '0', 10) || 0)
  if (directives.has('no-store') || directives.has('no-cache')) lifetime = 0
  else {
    const maxAge = directives.get('s-maxage') ?? directives.get('max-age')
    if (maxAge !== undefined && /^\d+$/.test(maxAge)) lifetime = Math.max(0, Number(maxAge) - age)
    else if (headers.expires !== undefined) {
      const expires = Date.parse(headers.expires)
      const date = headers.date !== undefined ? Date.parse(headers.date) : Number.NaN
      lifetime = Number.isNaN(expires) ? 0 : Math.max(0, Math.floor((expires - (Number.isNaN(date) ? now : date)) / 1000) - age)
    }
  }
  lifetime ??= bounds.defaultSeconds
  return Math.min(bounds.maxSeconds, Math.max(bounds.minSeconds, lifetime))
}
