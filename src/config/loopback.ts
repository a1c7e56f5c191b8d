/**
 * Loopback hosts as URL.hostname spells them. OAuth 2.1 §8.4.2 and RFC 8252 §7.3 name the IP
 * literals; `localhost` is added for interoperability (OQ-04, IOP-01).
 */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase())
}
