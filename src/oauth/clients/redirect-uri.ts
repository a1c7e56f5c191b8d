/**
 * Redirect URI matching (MCPA-69, BCP-01, SEC-28): exact string comparison, except for
 * http loopback URIs, where only the port is ignored (RFC 8252 §7.3, OAuth 2.1 §8.4.2; OQ-04
 * extends it to `localhost` because clients such as Claude Code register it without a port).
 *
 * The loopback exception works on the raw strings, not on parsed URLs: WHATWG URL parsing
 * rewrites `127.1`, `LOCALHOST`, `[0:0::1]`, `/a/../callback` and `\` into the registered form,
 * and O21-03 asks for simple string comparison of everything but the port.
 */

/** An http loopback URI as written: host exactly as one of the three loopback spellings. */
const LOOPBACK = /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?([/?][^#\\]*)?$/

export function matchRedirectUri(registered: readonly string[], requested: string): boolean {
  if (registered.includes(requested)) return true
  const req = withoutPort(requested)
  return req !== undefined && registered.some((candidate) => withoutPort(candidate) === req)
}

/** The URI with its port removed, or undefined when it is not an http loopback URI. */
function withoutPort(uri: string): string | undefined {
  const m = LOOPBACK.exec(uri)
  if (!m) return undefined
  // Hosts compare exactly: localhost never matches 127.0.0.1 (SEC-28). An empty rest is `/`.
  return `http://${m[1]}${m[3] === undefined || m[3].startsWith('?') ? `/${m[3] ?? ''}` : m[3]}`
}
