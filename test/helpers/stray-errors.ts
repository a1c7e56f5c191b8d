/**
 * Stray errors: a fault (a dead Redis, a crashed upstream) must not leave an unhandled rejection
 * or an uncaught exception behind, which tap would otherwise report against no test in particular.
 */
import type { Test } from 'tap'

/** Collects unhandled rejections and uncaught exceptions; the returned check asserts there were none. */
export function watchStrayErrors(t: Test): () => void {
  const stray: unknown[] = []
  const record = (err: unknown): void => void stray.push(err)
  process.on('unhandledRejection', record)
  process.on('uncaughtException', record)
  t.teardown(() => {
    process.off('unhandledRejection', record)
    process.off('uncaughtException', record)
  })
  return () => t.same(stray.map(String), [], 'no unhandled rejection or uncaught exception')
}
