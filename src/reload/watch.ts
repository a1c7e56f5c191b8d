/**
 * Notices that the configuration file may have changed (issue 17). Kubernetes replaces a
 * ConfigMap volume's files by swapping the `..data` symlink in the mounted directory: the path
 * keeps its name while the file behind it is another one, so the directory is watched, not the
 * file's inode, and a slow re-stat of the path (following symlinks) backs that up where change
 * events are not delivered (some network and overlay file systems). The caller decides whether
 * the content really changed; this only says "look again".
 */
import { watch, watchFile, unwatchFile, type FSWatcher, type Stats } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { Logger } from 'pino'

export interface ConfigWatchOptions {
  /** How often the path is stat'ed as a fallback. */
  pollMs?: number
  /** Events closer together than this are one change (a ConfigMap update is several renames). */
  settleMs?: number
}

export interface ConfigWatch {
  close(): void
}

export function watchConfigFile(file: string, onChange: () => void, logger: Logger, options: ConfigWatchOptions = {}): ConfigWatch {
  const { pollMs = 5000, settleMs = 200 } = options
  let timer: NodeJS.Timeout | undefined
  const changed = () => {
    clearTimeout(timer)
    timer = setTimeout(onChange, settleMs)
    timer.unref()
  }

  // The file itself, or the kubelet's `..data` swap; not the other files of the directory (an
  // audit file written beside the configuration would otherwise have it re-read per event).
  const name = basename(file)
  const relevant = (_event: string, changedName: string | null) => {
    if (changedName === null || changedName === name || changedName.startsWith('..')) changed()
  }
  let directory: FSWatcher | undefined
  try {
    directory = watch(dirname(file), { persistent: false }, relevant)
    directory.on('error', (err) => logger.warn({ err, file }, 'configuration directory watch failed; the file is still polled'))
  } catch (err) {
    logger.warn({ err, file }, 'cannot watch the configuration directory; the file is polled')
  }
  const polled = (now: Stats, before: Stats) => {
    if (now.ino !== before.ino || now.mtimeMs !== before.mtimeMs || now.size !== before.size) changed()
  }
  watchFile(file, { persistent: false, interval: pollMs }, polled)

  return {
    close() {
      clearTimeout(timer)
      directory?.close()
      unwatchFile(file, polled)
    },
  }
}
