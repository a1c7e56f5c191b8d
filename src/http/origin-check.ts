/**
 * The second layer of the gateway's forms against cross-site requests, beside their CSRF token:
 * a browser names the page a POST comes from in `Origin`, and only the gateway's own pages may
 * post to its forms. A foreign origin, or `null` (a sandboxed or privacy-stripped cross-site
 * page), is refused before the form is read. A request without `Origin` is no browser's form
 * post; the CSRF token and the SameSite cookies decide for it.
 */
import type { FastifyRequest } from 'fastify'
import { PublicError } from '../errors.js'

export function refuseForeignOrigin(request: FastifyRequest, ownOrigin: string): void {
  const origin = request.headers.origin
  if (origin !== undefined && origin !== ownOrigin) {
    throw new PublicError('invalid_request', 403, 'this form can only be sent from the gateway\'s own page', { detail: `origin ${origin}` })
  }
}
