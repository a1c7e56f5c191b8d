/**
 * Client authentication at the token, revocation and introspection endpoints (RFC 6749
 * §2.3, OAuth 2.1 §2.4). A client authenticates exactly the way it registered: a confidential
 * client cannot fall back to sending only its id, and one request may not use two methods.
 *
 * Methods: `none` (client_id only), `client_secret_basic`, `client_secret_post`, and
 * `private_key_jwt` (RFC 7523 §2.2, RFC 7521 §4.2: `client_assertion_type` =
 * urn:ietf:params:oauth:client-assertion-type:jwt-bearer plus `client_assertion`) for
 * metadata-document clients that declare it and pre-registered clients given keys. Such a client
 * must send an assertion on every call
 * (CIMD-38, SEC-30): a request with only its client_id is the `none` method and is refused.
 *
 * Failures are 401 invalid_client (RFC 6749 §5.2) with a log-only detail naming the check;
 * two methods in one request are invalid_request.
 */
import type { FastifyRequest } from 'fastify'
import { InvalidClientError, InvalidRequestError } from '../../errors.js'
import { CimdRefusal } from './cimd/refusal.js'
import { AssertionRejected, ClientAssertions, JWT_BEARER_ASSERTION_TYPE } from './assertion.js'
import type { ClientRegistry, OAuthClient } from './registry.js'
import type { Params } from '../params.js'

const BASIC_CHALLENGE = { 'www-authenticate': 'Basic realm="gatehouse", charset="UTF-8"' }

/**
 * `assertions` checks private_key_jwt; undefined when metadata documents are off (then no
 * client can use that method and an assertion is refused).
 */
export async function authenticateClient(
  request: FastifyRequest,
  form: Params,
  clients: ClientRegistry,
  assertions?: ClientAssertions,
): Promise<OAuthClient> {
  const basic = parseBasic(request.headers.authorization)
  if (form.client_assertion !== undefined || form.client_assertion_type !== undefined) {
    if (basic || form.client_secret !== undefined) throw new InvalidRequestError('use one client authentication method')
    return authenticateWithAssertion(request, form, clients, assertions)
  }
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
  const client = await findClient(clients, clientId, fail)
  // SEC-30: a private_key_jwt client sending only its client_id lands here as `none`.
  if (client.authMethod !== method) throw fail(`client registered for ${client.authMethod}, used ${method}`)
  const secret = basic?.secret ?? form.client_secret
  if (method !== 'none' && !client.verifySecret(secret ?? '')) throw fail('wrong secret')
  return client
}

/** RFC 7523 §2.2 / §3; the client is named by the assertion's sub (= iss = client_id). */
async function authenticateWithAssertion(
  request: FastifyRequest,
  form: Params,
  clients: ClientRegistry,
  assertions: ClientAssertions | undefined,
): Promise<OAuthClient> {
  const fail = (detail: string) => new InvalidClientError('client authentication failed', { detail })
  if (form.client_assertion === undefined || form.client_assertion_type === undefined) {
    throw new InvalidRequestError('client_assertion and client_assertion_type go together')
  }
  if (form.client_assertion_type !== JWT_BEARER_ASSERTION_TYPE) throw fail('unsupported client_assertion_type')
  const clientId = ClientAssertions.claimedClientId(form.client_assertion)
  if (clientId === undefined) throw fail('private_key_jwt check format failed: the assertion names no sub')
  // RFC 7521 §4.2: a client_id sent alongside must name the same client.
  if (form.client_id !== undefined && form.client_id !== clientId) throw fail('client_id differs from the assertion\'s sub')
  const client = await findClient(clients, clientId, fail)
  if (client.authMethod !== 'private_key_jwt') throw fail(`client registered for ${client.authMethod}, used private_key_jwt`)
  if (!assertions) throw fail('private_key_jwt is not available')
  try {
    const accepted = await assertions.verify(form.client_assertion, client)
    request.log.info({ clientId: client.clientId, alg: accepted.alg, kid: accepted.kid }, 'client assertion accepted')
  } catch (err) {
    if (err instanceof AssertionRejected) throw fail(`private_key_jwt check ${err.check} failed: ${err.detail}`)
    throw err
  }
  return client
}

/**
 * An unknown client, or a metadata-document client refused while resolving it (trust, fetch,
 * document, rate limit), is 401 invalid_client here: at these endpoints it is failed client
 * authentication (RFC 6749 §5.2), not the authorization endpoint's page.
 */
async function findClient(clients: ClientRegistry, clientId: string, fail: (detail: string) => InvalidClientError): Promise<OAuthClient> {
  let client: OAuthClient | undefined
  try {
    client = await clients.find(clientId)
  } catch (err) {
    // Its description is written for people and names the rule (a rate limit says when to retry).
    // RFC 6749 §5.2: error_description excludes " and \ (a document reason may quote JSON).
    if (err instanceof CimdRefusal) {
      throw new InvalidClientError(err.description.replace(/["\\]/g, "'"), { detail: `cimd ${err.step} ${err.rule}${err.detail ? `: ${err.detail}` : ''}` })
    }
    throw err
  }
  if (!client) throw fail('unknown client')
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
