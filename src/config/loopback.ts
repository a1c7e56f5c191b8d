/**
 * Loopback hosts as URL.hostname spells them. OAuth 2.1 §8.4.2 and RFC 8252 §7.3 name the IP
 * literals; `localhost` is added for interoperability (OQ-04, IOP-01).
 */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase())
}

/**
 * A redirect URI a client may register: https, http on a loopback host (MCPA-66, BCP-04), or
 * a native app's private-use scheme (RFC 8252 §7.1: a reverse domain name such as
 * com.example.app:/cb). Never a fragment or credentials.
 */
export function isAcceptableRedirectUri(uri: string): boolean {
  let u: URL
  try {
    u = new URL(uri)
  } catch {
    return false
  }
  if (u.hash || uri.includes('#') || u.username || u.password) return false
  if (u.protocol === 'https:') return true
  if (u.protocol === 'http:') return isLoopbackHost(u.hostname)
  return /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/.test(u.protocol)
}
