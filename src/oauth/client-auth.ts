/**
 * Client authentication at the token, revocation and introspection endpoints (RFC 6749
 * §2.3, OAuth 2.1 §2.4). A client authenticates exactly the way it registered: a confidential
 * client cannot fall back to sending only its id, and one request may not use two methods.
 */
import type { FastifyRequest } from 'fastify'
import { InvalidClientError, InvalidRequestError } from '../errors.js'
import type { ClientRegistry, OAuthClient } from './clients.js'
import type { Params } from './params.js'

const BASIC_CHALLENGE = { 'www-authenticate': 'Basic realm="gatehouse", charset="UTF-8"' }

export async function authenticateClient(
  request: FastifyRequest,
  form: Params,
  clients: ClientRegistry,
): Promise<OAuthClient> {
  const basic = parseBasic(request.headers.authorization)
  if (basic && (form.client_secret !== undefined || (form.client_id !== undefined && form.client_id !== basic.id))) {
    throw new InvalidRequestError('use one client authentication method')
  }
  const method = basic ? 'client_secret_basic' : form.client_secret !== undefined ? 'client_secret_post' : 'none'
  const clientId = basic?.id ?? form.client_id
  // RFC 6749 §5.2: a failed Basic attempt answers 401 with a Basic challenge.
  const fail = (detail: string) =>
    new InvalidClientError('client authentication failed', {
      detail,
      ...(basic && { headers: BASIC_CHALLENGE }),
    })
  if (!clientId) throw fail('no client_id')
  const client = await clients.find(clientId)
  if (!client) throw fail('unknown client')
  if (client.authMethod !== method) throw fail(`client registered for ${client.authMethod}, used ${method}`)
  const secret = basic?.secret ?? form.client_secret
  if (method !== 'none' && !client.verifySecret(secret ?? '')) throw fail('wrong secret')
  return client
}

/** RFC 6749 §2.3.1: id and secret are form-urlencoded before base64. */
function parseBasic(header: string | undefined): { id: string; secret: string } | undefined {
  if (!header || !/^basic /i.test(header)) return undefined
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) throw new InvalidClientError('malformed Basic credentials', { headers: BASIC_CHALLENGE })
  try {
    return {
      id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')),
      secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')),
    }
  } catch {
    throw new InvalidClientError('malformed Basic credentials', { headers: BASIC_CHALLENGE })
  }
}
