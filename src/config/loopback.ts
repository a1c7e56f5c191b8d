/**
 * Loopback hosts as URL.hostname spells them. OAuth 2.1 §8.4.2 and RFC 8252 §7.3 name the IP
 * literals; `localhost` is added for interoperability (OQ-04, IOP-01).
 */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase())
}

/** The characters RFC 3986 §2 allows in a URI: no space, control, backslash, quote or non-ASCII. */
const URI_CHARACTERS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/
/** An http(s) URI's authority as written (RFC 3986 §3.2), before any parser repairs it. */
const WRITTEN_AUTHORITY = /^https?:\/\/([^/?#]*)/i

/**
 * A redirect URI a client may register: https, http on a loopback host (MCPA-66, BCP-04), or
 * a native app's private-use scheme (RFC 8252 §7.1: a reverse domain name such as
 * com.example.app:/cb). Never a fragment or credentials.
 *
 * The URI must also be one every parser reads alike (DCR-05, SEC-17: an absolute URI): RFC 3986
 * characters only, an http(s) URI with its `//` authority written out and no `@` in it, and a
 * loopback host spelled as the literal itself. The WHATWG parser repairs `https:host/cb`,
 * `http://127.0.0.1\@evil.example/`, tabs and newlines, and reads `http://0x7f000001/` or
 * `http://127.1/` as 127.0.0.1; the registered string is what the client's own parser follows.
 */
export function isAcceptableRedirectUri(uri: string): boolean {
  let u: URL
  try {
    u = new URL(uri)
  } catch {
    return false
  }
  if (!URI_CHARACTERS.test(uri)) return false
  if (u.hash || uri.includes('#') || u.username || u.password) return false
  if (u.protocol === 'https:' || u.protocol === 'http:') {
    const authority = WRITTEN_AUTHORITY.exec(uri)?.[1]
    if (authority === undefined || authority === '' || authority.includes('@')) return false
    if (u.protocol === 'https:') return true
    return isLoopbackHost(u.hostname) && isLoopbackHost(authority.replace(/:[0-9]*$/, ''))
  }
  return /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/.test(u.protocol)
}
