/**
 * The one storage contract every part of Gatehouse writes through.
 *
 * Values are opaque strings (callers serialize); every record has a TTL so nothing stored
 * lives forever; `take` is the atomic read-and-delete that makes codes and state values
 * single use (O21 single-use codes, MCPS-05). Implementations: memory (one process) and
 * Redis (any number of replicas).
 */
export interface Store {
  /** The value, or undefined when absent or expired. */
  get(key: string): Promise<string | undefined>
  /** Writes the value, replacing any previous one, for ttlMs milliseconds (> 0). */
  set(key: string, value: string, ttlMs: number): Promise<void>
  /** Writes only when the key is absent; true when this call wrote it. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>
  /** Atomically returns and deletes the value: of concurrent callers, at most one gets it. */
  take(key: string): Promise<string | undefined>
  /**
   * Replaces the value with `value` (for ttlMs) only while it still equals `expected`; true when
   * this call replaced it. Atomic across callers and replicas: of concurrent callers that read
   * the same value, exactly one replaces it (a state change without a moment of absence, which
   * `take` + `set` would have: refresh rotation, REF-03). One key only, so any Cluster slot works.
   */
  compareAndSet(key: string, expected: string, value: string, ttlMs: number): Promise<boolean>
  /**
   * Adds one to the counter at `key` and returns the new count with the time it has left. An
   * absent counter starts at 1 and lives for ttlMs; an existing one keeps its TTL, so a window
   * opened by the first call closes on time however often it is counted (fixed-window limits).
   * Atomic across callers and replicas.
   */
  increment(key: string, ttlMs: number): Promise<{ count: number; ttlMs: number }>
  /** Removes the key; absent keys are not an error. */
  delete(key: string): Promise<void>
  /**
   * Every live key that starts with `prefix`, for operator tools (listing grants). Not for
   * request paths: it walks the whole key space.
   */
  keys(prefix: string): AsyncIterable<string>
  /**
   * Appends `value` to the append-only log at `key` and returns the new entry's id. Entries older
   * than keepMs may be dropped, and the whole log expires keepMs after its last append. Ids
   * increase; callers treat them as opaque. A change feed every replica reads (revocations, §11.4 REV-02).
   */
  append(key: string, value: string, keepMs: number): Promise<string>
  /** At most `limit` entries of the log at `key` that came after `afterId` (`''`: from the oldest kept), oldest first. */
  readLog(key: string, afterId: string, limit: number): Promise<LogEntry[]>
  /**
   * Adds `member` to the set at `key`, which then lives at least ttlMs longer (never shorter than
   * it already would). An index a request path reads by one key: a person's grants (the account
   * page), without walking the key space. Members may outlive what they name; readers check.
   */
  addMember(key: string, member: string, ttlMs: number): Promise<void>
  /** The members of the set at `key`; empty when absent or expired. */
  members(key: string): Promise<string[]>
  /** Removes `member` from the set at `key`; absent sets and members are not an error. */
  removeMember(key: string, member: string): Promise<void>
  /** Resolves when the backing service answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>
  /** Releases connections and timers. The store must not be used afterwards. */
  close(): Promise<void>
}

export interface LogEntry {
  readonly id: string
  readonly value: string
}

/** The backing service could not be reached or did not answer in time. Maps to HTTP 503. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError'
  constructor(message = 'the store is unavailable', options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** Store contract: every record has a TTL, so nothing lives forever. */
export function checkTtl(ttlMs: number): void {
  if (!(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new TypeError(`ttlMs must be a positive finite number, got ${ttlMs}`)
  }
}
