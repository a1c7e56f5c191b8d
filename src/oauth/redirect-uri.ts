/**
 * Redirect URI matching (MCPA-69, BCP-01, SEC-28): exact string comparison, except for
 * http loopback URIs, where only the port is ignored (RFC 8252 §7.3, OAuth 2.1 §8.4.2; OQ-04
 * extends it to `localhost` because clients such as Claude Code register it without a port).
 */
import { isLoopbackHost } from '../config/loopback.js'

export function matchRedirectUri(registered: readonly string[], requested: string): boolean {
  if (registered.includes(requested)) return true
  const req = parse(requested)
  if (!req || req.protocol !== 'http:' || !isLoopbackHost(req.hostname)) return false
  return registered.some((candidate) => {
    const reg = parse(candidate)
    return (
      reg !== undefined &&
      reg.protocol === 'http:' &&
      // Hosts compare exactly: localhost never matches 127.0.0.1 (SEC-28).
      reg.hostname === req.hostname &&
      isLoopbackHost(reg.hostname) &&
      reg.pathname === req.pathname &&
      reg.search === req.search &&
      reg.username === '' &&
      req.username === '' &&
      req.password === '' &&
      req.hash === ''
    )
  })
}

function parse(uri: string): URL | undefined {
  try {
    return new URL(uri)
  } catch {
    return undefined
  }
}
