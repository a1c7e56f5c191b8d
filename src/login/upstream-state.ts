/**
 * One upstream OIDC login a person started, between the redirect to the IdP and its callback
 * (MCPS-05): random state, stored only once the person chose to go (after consent, MCPS-01,
 * MCPS-06), bound to the browser by a fresh value in a cookie, single use, ten minutes.
 */
import { randomBytes } from 'node:crypto'
import { storeKeys } from '../store/keys.js'
import type { Store } from '../store/store.js'
import type { UpstreamChecks } from './oidc.js'
import { hash } from './sessions.js'

export interface UpstreamState extends UpstreamChecks {
  providerId: string
  /** The pending authorization request it continues; absent for a sign-in to the account page. */
  requestId?: string
  /** A sign-in to the account page: the console path it returns to instead (checked again on return). */
  returnTo?: string
  /** Hash of the state cookie's value: the browser that started it (MCPS-05). */
  binding: string
}

export const STATE_COOKIE = 'oidc-state'
/** MCPS-05: upstream state is short-lived. Also how long a pending request waits for the IdP. */
export const UPSTREAM_STATE_TTL_SECONDS = 600

/** Stores the state; returns the value for the state cookie, which the callback must bring back. */
export async function saveUpstreamState(
  store: Store,
  providerId: string,
  checks: UpstreamChecks,
  continues: { requestId?: string; returnTo?: string } = {},
): Promise<string> {
  const browserValue = randomBytes(32).toString('base64url')
  const record: UpstreamState = { ...checks, providerId, ...continues, binding: hash(browserValue) }
  await store.set(storeKeys.upstreamLoginState(hash(checks.state)), JSON.stringify(record), UPSTREAM_STATE_TTL_SECONDS * 1000)
  return browserValue
}
