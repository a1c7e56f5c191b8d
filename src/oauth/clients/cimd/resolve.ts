/**
 * Client ID Metadata Document clients (CIMD draft -02): a client id that is a URL resolves to
 * the document served there, under the gateway's rules, in this order:
 *
 *   URL rules (raw string, no I/O) → trust policy → cache → one fetch per URL at a time →
 *   document validation → metadata policy → effective client
 *
 * Every refusal is a `CimdRefusal` (`invalid_client`, 400) whose description names the rule
 * that refused; the authorization endpoint shows it on the gateway's own page, never at the
 * unverified redirect URI (SEC-26). Nothing the remote side sent is echoed (SEC-36).
 *
 * Cache (SEC-19..21, cache.ts): only documents whose effective client was valid, for the
 * lifetime their Cache-Control or Expires headers give, clamped to the configured bounds. The
 * policy is applied again on every read, so a changed policy takes effect at once.
 *
 * Fetches are counted per client-id host (SEC-14) before they happen; cache hits and callers
 * joining a fetch in flight are not. After every fetch the document's security and display
 * fingerprints are compared with the last ones seen (SEC-23); a changed security member is
 * logged as `cimd document changed`, naming the members, never their values.
 */
import type { AuditTrail } from '../../../audit/events.js'
import type { CimdAllowEntryConfig, CimdConfig } from '../../../config/cimd-schema.js'
import { decideTrust, type TrustEntry } from '../../../policy/cimd-trust.js'
import type { MetadataPolicy } from '../../../policy/metadata-policy.js'
import type { Store } from '../../../store/store.js'
import type { ClientRegistry, OAuthClient } from '../registry.js'
import { CimdDocumentCache } from './cache.js'
import { cacheLifetimeSeconds } from './cache-lifetime.js'
import type { CimdFetcher, CimdLog } from './collaborators.js'
import { DocumentError, grantTypesOf, parseDocument, validateDocument, validateEffective, type EffectiveRules, type Metadata } from './document.js'
import { toClient } from './effective-client.js'
import { applyPolicyWithMachineGrant } from './machine-grant.js'
import { FetchError, type FetchedJson } from './fetch.js'
import { compareFingerprints } from './fingerprint-watch.js'
import { FetchRateLimiter } from './rate-limit.js'
import { CimdRefusal, refusalReason, type CimdStep } from './refusal.js'
import { checkClientIdUrl, looksLikeUrlClientId } from '../../../policy/cimd-url-rules.js'

export interface CimdClientsOptions {
  config: CimdConfig
  store: Store
  fetcher: CimdFetcher
  /** The gateway's own origin: a client id there is refused (SEC-05). */
  selfOrigin: string
  log?: CimdLog
  /** Records resolutions, refusals and document changes (absent for `gatehouse cimd inspect`). */
  audit?: AuditTrail
  now?: () => number
  /** The per-host fetch limit, shared with the key sets; built from config.fetchRateLimit when absent. */
  limiter?: FetchRateLimiter
}

/** One step of a resolution, for `gatehouse cimd inspect` and tests. */
export interface TraceStep {
  step: CimdStep | 'client'
  outcome: string
}

export class CimdClients implements ClientRegistry {
  readonly #inflight = new Map<string, Promise<Metadata>>()
  readonly #now: () => number
  readonly #limiter: FetchRateLimiter
  readonly #rules: EffectiveRules
  readonly #cache: CimdDocumentCache

  constructor(private readonly options: CimdClientsOptions) {
    this.#now = options.now ?? Date.now
    this.#limiter = options.limiter ?? new FetchRateLimiter(options.store, options.config.fetchRateLimit)
    this.#cache = new CimdDocumentCache(options.store, this.#now)
    const { config } = options
    this.#rules = {
      assertionAlgorithms: config.privateKeyJwt.algorithms,
      urlRules: config,
      selfOrigin: options.selfOrigin,
    }
  }

  /** Undefined for ids that are not URL-shaped (other sources own them) or when CIMD is off. */
  async find(clientId: string): Promise<OAuthClient | undefined> {
    if (!this.options.config.enabled || !looksLikeUrlClientId(clientId)) return undefined
    return this.resolve(clientId)
  }

  /** The effective client for a URL client id, or a CimdRefusal. `trace` collects the steps. */
  /** See CimdDocumentCache.purge. */
  purge(clientId?: string): Promise<number> {
    return this.#cache.purge(clientId)
  }

  async resolve(clientId: string, trace: TraceStep[] = []): Promise<OAuthClient> {
    const { config } = this.options
    const checked = checkClientIdUrl(clientId, config)
    if (!checked.ok) {
      throw this.#refuse(clientId, trace, 'url', checked.rule, `this application's client id is not an acceptable metadata document URL: ${checked.reason}`)
    }
    trace.push({ step: 'url', outcome: 'passes the URL rules' })
    const host = checked.url.host
    if (checked.url.origin === this.options.selfOrigin) {
      throw this.#refuse(clientId, trace, 'url', 'url.self', 'this application\'s client id points at the gateway itself')
    }
    const trust = decideTrust(
      { allow: config.trust.allow as TrustEntry[], deny: config.trust.deny as TrustEntry[], any: config.trust.any },
      clientId,
    )
    if (!trust.allowed) {
      throw this.#refuse(clientId, trace, 'trust', trust.rule, `this application (client id hosted at ${host}) is not allowed by the gateway's policy: ${trust.rule}`)
    }
    trace.push({ step: 'trust', outcome: `allowed by ${trust.rule}` })
    // CC-01: only the entry that admitted this client id can let its document ask for client_credentials.
    const machine = (trust.entry as CimdAllowEntryConfig | undefined)?.clientCredentials

    let document: Metadata | undefined
    if (config.cache.enabled) {
      const cached = await this.#cache.read(clientId)
      if (cached && 'document' in cached) {
        const record = cached.document
        document = parseDocument(JSON.stringify(record.document))
        trace.push({ step: 'cache', outcome: `cached document, fetched ${new Date(record.fetchedAt).toISOString()}, expires ${new Date(record.expiresAt).toISOString()}` })
      } else if (cached) {
        const { failure } = cached
        trace.push({ step: 'cache', outcome: `recent failure remembered (${failure.step}: ${failure.rule})` })
        this.options.audit?.record({ type: 'client.refused', clientId, reason: 'negative_cache', rule: failure.rule })
        throw new CimdRefusal(failure.step, failure.rule, failure.description, 'negative cache')
      } else {
        trace.push({ step: 'cache', outcome: 'not cached' })
      }
    } else {
      trace.push({ step: 'cache', outcome: 'cache disabled: fetching' })
    }
    const cache = document === undefined ? 'fetched' : 'hit'
    document ??= await this.#fetchOnce(clientId, host, trace, machine !== undefined)
    const effective = this.#effective(clientId, document, trace, machine !== undefined)
    this.options.audit?.record({ type: 'client.resolved', clientId, source: 'cimd', cache })
    return toClient(clientId, host, document, effective, machine)
  }

  /** Concurrent first uses of one URL share one fetch (SEC-14). */
  #fetchOnce(clientId: string, host: string, trace: TraceStep[], machine: boolean): Promise<Metadata> {
    let pending = this.#inflight.get(clientId)
    if (!pending) {
      pending = this.#fetchAndValidate(clientId, host, trace, machine).finally(() => this.#inflight.delete(clientId))
      this.#inflight.set(clientId, pending)
    } else {
      trace.push({ step: 'fetch', outcome: 'joined a fetch already in flight' })
    }
    return pending
  }

  async #fetchAndValidate(clientId: string, host: string, trace: TraceStep[], machine: boolean): Promise<Metadata> {
    const { config } = this.options
    const admission = await this.#limiter.admit(host)
    if (!admission.admitted) {
      // SEC-14: refused without a fetch; not negative-cached, the window itself says when to retry.
      throw this.#refuse(
        clientId,
        trace,
        'fetch',
        'cimd.fetchRateLimit',
        `the gateway fetched metadata for applications hosted at ${host} too often; try again in ${admission.retryAfterSeconds} s`,
        `${admission.count} fetches in the window`,
      )
    }
    let fetched: FetchedJson
    try {
      fetched = await this.options.fetcher.fetchJson(clientId)
    } catch (err) {
      const kind = err instanceof FetchError ? err.kind : 'network'
      const detail = err instanceof FetchError ? err.detail : (err as Error)?.name
      const message = err instanceof FetchError ? err.message : 'the server could not be reached'
      throw await this.#fail(clientId, trace, 'fetch', `fetch.${kind}`, `the metadata document of this application (at ${host}) could not be used: ${message}`, detail)
    }
    trace.push({ step: 'fetch', outcome: `fetched ${Buffer.byteLength(fetched.text)} bytes` })
    let document: Metadata
    try {
      document = parseDocument(fetched.text)
      validateDocument(document, clientId)
      this.#validateEffective(document, this.#applyPolicy(document, machine), clientId, machine)
    } catch (err) {
      if (err instanceof DocumentError) {
        throw await this.#fail(clientId, trace, 'document', err.field, `the metadata document of this application (at ${host}) is not acceptable: ${err.field} ${err.reason}`)
      }
      if (err instanceof PolicyViolation) {
        throw await this.#fail(clientId, trace, 'policy', `cimd.metadataPolicy.${err.field}`, `the gateway's metadata policy refuses this application (at ${host}): ${err.field} ${err.reason}`)
      }
      throw err
    }
    trace.push({ step: 'document', outcome: 'valid' })
    await compareFingerprints(this.options, clientId, host, document)
    if (config.cache.enabled) {
      const lifetime = cacheLifetimeSeconds(fetched, config.cache, this.#now())
      if (lifetime > 0) await this.#cache.saveDocument(clientId, document, lifetime)
      trace.push({ step: 'cache', outcome: lifetime > 0 ? `cached for ${lifetime} s` : 'not cached (lifetime 0)' })
    }
    this.options.log?.info({ clientId, host }, 'cimd document fetched')
    return document
  }

  #applyPolicy(document: Metadata, machine: boolean): Metadata {
    const outcome = applyPolicyWithMachineGrant(this.options.config.metadataPolicy as MetadataPolicy, document, machine)
    if (!outcome.ok) throw new PolicyViolation(outcome.field, outcome.reason)
    return outcome.metadata
  }

  /** The policy's result, checked again: what the gateway enforces. */
  #effective(clientId: string, document: Metadata, trace: TraceStep[], machine: boolean): Metadata {
    const host = new URL(clientId).host
    try {
      const effective = this.#applyPolicy(document, machine)
      this.#validateEffective(document, effective, clientId, machine)
      trace.push({ step: 'policy', outcome: `effective grant_types ${grantTypesOf(effective).join(' ')}` })
      return effective
    } catch (err) {
      // A cached document that the current policy refuses (the policy changed since).
      if (err instanceof PolicyViolation) {
        throw this.#refuse(clientId, trace, 'policy', `cimd.metadataPolicy.${err.field}`, `the gateway's metadata policy refuses this application (at ${host}): ${err.field} ${err.reason}`)
      }
      if (err instanceof DocumentError) {
        throw this.#refuse(clientId, trace, 'document', err.field, `the metadata document of this application (at ${host}) is not acceptable: ${err.field} ${err.reason}`)
      }
      throw err
    }
  }

  /**
   * Stage 2 of the validation, plus the one rule that needs both stages: a document that declares
   * private_key_jwt stays private_key_jwt, whatever the metadata policy says (SEC-30, CIMD-38).
   */
  #validateEffective(document: Metadata, effective: Metadata, clientId: string, machine: boolean): void {
    validateEffective(effective, clientId, this.#rules, machine)
    if (document.token_endpoint_auth_method === 'private_key_jwt' && effective.token_endpoint_auth_method !== 'private_key_jwt') {
      throw new DocumentError('token_endpoint_auth_method', 'private_key_jwt must not be downgraded by the metadata policy (SEC-30)')
    }
  }

  #refuse(clientId: string, trace: TraceStep[], step: CimdStep, rule: string, description: string, detail?: string): CimdRefusal {
    trace.push({ step, outcome: `refused: ${rule}` })
    this.options.log?.warn({ clientId: clientId.slice(0, 256), step, rule, ...(detail !== undefined && { detail }) }, 'cimd client refused')
    this.options.audit?.record({
      type: 'client.refused',
      // Attacker-supplied when the URL rules refuse it: bounded like the log line.
      clientId: clientId.slice(0, 256),
      reason: refusalReason(step, rule),
      rule,
      ...((step === 'document' || step === 'policy') && { field: rule.replace(/^cimd\.metadataPolicy\./, '') }),
    })
    return new CimdRefusal(step, rule, description, detail)
  }

  /** A refusal after network I/O: also remembered briefly in the negative cache. */
  async #fail(clientId: string, trace: TraceStep[], step: CimdStep, rule: string, description: string, detail?: string): Promise<CimdRefusal> {
    const refusal = this.#refuse(clientId, trace, step, rule, description, detail)
    const { config } = this.options
    if (config.cache.enabled) await this.#cache.saveFailure({ clientId, step, rule, description }, config.cache.negativeSeconds)
    return refusal
  }
}

class PolicyViolation extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field} ${reason}`)
  }
}

