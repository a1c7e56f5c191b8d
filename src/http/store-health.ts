/**
 * Whether the store answers, as last seen: pinged every CHECK_EVERY_MS and, when a probe asks and
 * the last answer is older than FRESH_MS, once more in the background, so a probe never waits
 * and an operator polling /healthz sees a change within about a second. Each change is logged
 * once (an outage at warn, the recovery at info) and kept in the `gatehouse_store_up` gauge.
 */
import type { Store } from '../store/store.js'

const CHECK_EVERY_MS = 5_000
const FRESH_MS = 1_000

export type StoreState = 'up' | 'down' | 'unknown'

export interface StoreHealthLog {
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
}

export class StoreHealth {
  #state: StoreState = 'unknown'
  #checkedAt = 0
  #checking: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(
    private readonly store: Store,
    private readonly log: StoreHealthLog,
    private readonly gauge?: { set(value: number): void },
  ) {}

  start(): void {
    void this.check()
    this.#timer = setInterval(() => void this.check(), CHECK_EVERY_MS).unref()
  }

  /** The last known state; starts a check in the background when it is stale. */
  observe(): StoreState {
    if (Date.now() - this.#checkedAt > FRESH_MS) void this.check()
    return this.#state
  }

  /** One ping at a time; resolves when it is answered or has failed (the store bounds it). */
  check(): Promise<void> {
    this.#checking ??= this.#ping().finally(() => (this.#checking = undefined))
    return this.#checking
  }

  close(): void {
    clearInterval(this.#timer)
  }

  async #ping(): Promise<void> {
    let next: StoreState
    let error: string | undefined
    try {
      await this.store.ping()
      next = 'up'
    } catch (err) {
      next = 'down'
      error = (err as Error).message
    }
    this.#checkedAt = Date.now()
    if (next === this.#state) return
    if (next === 'down') this.log.warn({ error }, 'store unavailable: requests that need it answer 503 until it is back')
    else if (this.#state === 'down') this.log.info({}, 'store available again')
    this.#state = next
    this.gauge?.set(next === 'up' ? 1 : 0)
  }
}
