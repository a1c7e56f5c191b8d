/**
 * Failed password sign-ins, counted across replicas, so that guessing is slow and a stranger
 * who knows a username cannot keep that person out.
 *
 * - Per username and source address: the first `perUsernameAndAddress.requests` failures are
 *   free; after each further one that pair waits 2, 4, 8 … seconds (at most the window) before
 *   its next attempt. A guesser slows down exponentially; the person, from their own address,
 *   is not slowed by anyone else's failures.
 * - Per username across addresses (`perUsername`): a backstop against guessing spread over many
 *   addresses, high enough that one address (held back by its growing delays) cannot reach it
 *   within its window.
 * Only failures count; a blocked attempt is refused before the password hash is computed. Like
 * every limit here it fails open when the store fails.
 */
import type { FastifyRequest } from 'fastify'
import { contextOf, type AuditTrail } from '../audit/events.js'
import type { RateLimitConfig } from '../config/operations-schema.js'
import { storeKeys } from '../store/keys.js'
import type { Store } from '../store/store.js'
import { addressKey, sha256Hex, warn } from './rate-limit.js'

export interface PasswordFailureRules {
  perUsernameAndAddress: RateLimitConfig
  perUsername: RateLimitConfig
}

export class PasswordFailureLimit {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditTrail,
    private readonly rules: PasswordFailureRules,
  ) {}

  /** Seconds to wait before this name may be tried again from here; undefined when it may be tried now. */
  async blocked(request: FastifyRequest, username: string): Promise<number | undefined> {
    try {
      const { perUsername, perUsernameAndAddress } = this.rules
      if (perUsername.requests > 0) {
        const failures = Number((await this.store.get(this.#nameKey(username))) ?? 0)
        if (failures >= perUsername.requests) return this.#refused(request, 'subject', perUsername.windowSeconds)
      }
      if (perUsernameAndAddress.requests > 0) {
        const until = Number((await this.store.get(this.#waitKey(request, username))) ?? 0)
        const wait = Math.ceil((until - Date.now()) / 1000)
        if (wait > 0) return this.#refused(request, 'address', wait)
      }
    } catch (err) {
      warn(request.log, err)
    }
    return undefined
  }

  async failed(request: FastifyRequest, username: string): Promise<void> {
    const { perUsername, perUsernameAndAddress } = this.rules
    try {
      if (perUsername.requests > 0) await this.store.increment(this.#nameKey(username), perUsername.windowSeconds * 1000)
      if (perUsernameAndAddress.requests === 0) return
      const { count } = await this.store.increment(this.#pairKey(request, username), perUsernameAndAddress.windowSeconds * 1000)
      const over = count - perUsernameAndAddress.requests
      if (over <= 0) return
      const waitSeconds = Math.min(2 ** over, perUsernameAndAddress.windowSeconds)
      await this.store.set(this.#waitKey(request, username), String(Date.now() + waitSeconds * 1000), waitSeconds * 1000)
    } catch (err) {
      warn(request.log, err)
    }
  }

  #refused(request: FastifyRequest, scope: 'subject' | 'address', seconds: number): number {
    this.audit.record({ type: 'rate_limited', limit: 'password', scope }, contextOf(request))
    return seconds
  }

  #nameKey(username: string): string {
    return storeKeys.rateLimit('password', 'subject', sha256Hex(username))
  }

  #pairKey(request: FastifyRequest, username: string): string {
    return storeKeys.rateLimit('password', 'subject-address', sha256Hex(`${username}\n${addressKey(request.ip)}`))
  }

  #waitKey(request: FastifyRequest, username: string): string {
    return storeKeys.rateLimit('password-wait', 'subject-address', sha256Hex(`${username}\n${addressKey(request.ip)}`))
  }
}
