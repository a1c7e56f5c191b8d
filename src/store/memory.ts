/**
 * The in-process store: one process only, lost on restart (development and tests).
 * Expiry is lazy on every read, plus a periodic sweep so keys that are never read again
 * do not accumulate.
 */
import { performance } from 'node:perf_hooks'
import { checkTtl, type LogEntry, type Store } from './store.js'

interface Entry {
  value: string
  /** On the monotonic clock, so wall-clock steps neither extend nor cut a TTL. */
  expiresAt: number
}

export interface MemoryStoreOptions {
  /** How often expired entries are removed (default 60 s). */
  sweepIntervalMs?: number
}

interface MemberSet {
  members: Set<string>
  expiresAt: number
}

interface Log {
  entries: (LogEntry & { at: number })[]
  expiresAt: number
}

export class MemoryStore implements Store {
  readonly #entries = new Map<string, Entry>()
  readonly #logs = new Map<string, Log>()
  readonly #sets = new Map<string, MemberSet>()
  #logSequence = 0
  readonly #sweeper: NodeJS.Timeout

  constructor({ sweepIntervalMs = 60_000 }: MemoryStoreOptions = {}) {
    // unref: the sweep alone must never keep the process alive.
    this.#sweeper = setInterval(() => this.#sweep(), sweepIntervalMs).unref()
  }

  /** Records held, including expired ones not yet swept. */
  get size(): number {
    return this.#entries.size
  }

  async get(key: string): Promise<string | undefined> {
    return this.#live(key)?.value
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    checkTtl(ttlMs)
    this.#entries.set(key, { value, expiresAt: performance.now() + ttlMs })
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs)
    if (this.#live(key)) return false
    this.#entries.set(key, { value, expiresAt: performance.now() + ttlMs })
    return true
  }

  /** Atomic for the same reason as take. */
  async increment(key: string, ttlMs: number): Promise<{ count: number; ttlMs: number }> {
    checkTtl(ttlMs)
    const now = performance.now()
    const entry = this.#live(key)
    if (!entry) {
      this.#entries.set(key, { value: '1', expiresAt: now + ttlMs })
      return { count: 1, ttlMs }
    }
    const count = Number(entry.value) + 1
    if (!Number.isSafeInteger(count)) throw new TypeError(`the value at ${key} is not a counter`)
    entry.value = String(count)
    return { count, ttlMs: Math.max(1, Math.ceil(entry.expiresAt - now)) }
  }

  /** Atomic for the same reason as take. */
  async compareAndSet(key: string, expected: string, value: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs)
    if (this.#live(key)?.value !== expected) return false
    this.#entries.set(key, { value, expiresAt: performance.now() + ttlMs })
    return true
  }

  /** Atomic because nothing can run between the read and the delete in one event loop. */
  async take(key: string): Promise<string | undefined> {
    const entry = this.#live(key)
    this.#entries.delete(key)
    return entry?.value
  }

  async delete(key: string): Promise<void> {
    this.#entries.delete(key)
  }

  async *keys(prefix: string): AsyncIterable<string> {
    for (const key of [...this.#entries.keys()]) if (key.startsWith(prefix) && this.#live(key)) yield key
  }

  async append(key: string, value: string, keepMs: number): Promise<string> {
    checkTtl(keepMs)
    const now = performance.now()
    const log = this.#liveLog(key) ?? { entries: [], expiresAt: 0 }
    const id = String(++this.#logSequence)
    log.entries = log.entries.filter((e) => e.at > now - keepMs)
    log.entries.push({ id, value, at: now })
    log.expiresAt = now + keepMs
    this.#logs.set(key, log)
    return id
  }

  async readLog(key: string, afterId: string, limit: number): Promise<LogEntry[]> {
    const after = afterId === '' ? 0 : Number(afterId)
    return (this.#liveLog(key)?.entries ?? [])
      .filter((e) => Number(e.id) > after)
      .slice(0, limit)
      .map(({ id, value }) => ({ id, value }))
  }

  async addMember(key: string, member: string, ttlMs: number): Promise<void> {
    checkTtl(ttlMs)
    const until = performance.now() + ttlMs
    const set = this.#liveSet(key) ?? { members: new Set<string>(), expiresAt: until }
    set.members.add(member)
    set.expiresAt = Math.max(set.expiresAt, until)
    this.#sets.set(key, set)
  }

  async members(key: string): Promise<string[]> {
    return [...(this.#liveSet(key)?.members ?? [])]
  }

  async removeMember(key: string, member: string): Promise<void> {
    const set = this.#liveSet(key)
    set?.members.delete(member)
    if (set?.members.size === 0) this.#sets.delete(key)
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.#sweeper)
    this.#entries.clear()
    this.#logs.clear()
    this.#sets.clear()
  }

  /** The entry when present and unexpired; an expired one is removed on the way. */
  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key)
    if (entry && entry.expiresAt <= performance.now()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry
  }

  #liveSet(key: string): MemberSet | undefined {
    const set = this.#sets.get(key)
    if (set && set.expiresAt <= performance.now()) {
      this.#sets.delete(key)
      return undefined
    }
    return set
  }

  #liveLog(key: string): Log | undefined {
    const log = this.#logs.get(key)
    if (log && log.expiresAt <= performance.now()) {
      this.#logs.delete(key)
      return undefined
    }
    return log
  }

  #sweep(): void {
    const now = performance.now()
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key)
    for (const [key, log] of this.#logs) if (log.expiresAt <= now) this.#logs.delete(key)
    for (const [key, set] of this.#sets) if (set.expiresAt <= now) this.#sets.delete(key)
  }
}

