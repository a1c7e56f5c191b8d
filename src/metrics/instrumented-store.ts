/**
 * A Store that times and counts every operation of the Store it wraps (memory or Redis), for
 * the store metric families. It changes nothing else: values, errors and TTLs pass through.
 * Used only when metrics are on.
 */
import type { GatewayMetrics, StoreOperation } from './gateway-metrics.js'
import type { LogEntry, Store } from '../store/store.js'

export class InstrumentedStore implements Store {
  constructor(
    private readonly inner: Store,
    private readonly metrics: GatewayMetrics,
  ) {}

  get(key: string): Promise<string | undefined> {
    return this.#timed('get', () => this.inner.get(key))
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    return this.#timed('set', () => this.inner.set(key, value, ttlMs))
  }

  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.#timed('set_if_absent', () => this.inner.setIfAbsent(key, value, ttlMs))
  }

  take(key: string): Promise<string | undefined> {
    return this.#timed('take', () => this.inner.take(key))
  }

  compareAndSet(key: string, expected: string, value: string, ttlMs: number): Promise<boolean> {
    return this.#timed('compare_and_set', () => this.inner.compareAndSet(key, expected, value, ttlMs))
  }

  increment(key: string, ttlMs: number): Promise<{ count: number; ttlMs: number }> {
    return this.#timed('increment', () => this.inner.increment(key, ttlMs))
  }

  delete(key: string): Promise<void> {
    return this.#timed('delete', () => this.inner.delete(key))
  }

  /** Timed from the first call to the end of the walk; operator tools only. */
  async *keys(prefix: string): AsyncIterable<string> {
    const started = performance.now()
    let outcome = 'ok' // also when the caller stops early
    try {
      yield* this.inner.keys(prefix)
    } catch (err) {
      outcome = 'error'
      throw err
    } finally {
      this.#record('keys', started, outcome)
    }
  }

  append(key: string, value: string, keepMs: number): Promise<string> {
    return this.#timed('append', () => this.inner.append(key, value, keepMs))
  }

  readLog(key: string, afterId: string, limit: number): Promise<LogEntry[]> {
    return this.#timed('read_log', () => this.inner.readLog(key, afterId, limit))
  }

  addMember(key: string, member: string, ttlMs: number): Promise<void> {
    return this.#timed('add_member', () => this.inner.addMember(key, member, ttlMs))
  }

  members(key: string): Promise<string[]> {
    return this.#timed('members', () => this.inner.members(key))
  }

  removeMember(key: string, member: string): Promise<void> {
    return this.#timed('remove_member', () => this.inner.removeMember(key, member))
  }

  ping(): Promise<void> {
    return this.#timed('ping', () => this.inner.ping())
  }

  close(): Promise<void> {
    return this.inner.close()
  }

  async #timed<T>(operation: StoreOperation, run: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      const value = await run()
      this.#record(operation, started, 'ok')
      return value
    } catch (err) {
      this.#record(operation, started, 'error')
      throw err
    }
  }

  #record(operation: StoreOperation, started: number, outcome: string): void {
    this.metrics.storeOperations.inc({ operation, outcome })
    this.metrics.storeDuration.observe({ operation }, (performance.now() - started) / 1000)
  }
}
