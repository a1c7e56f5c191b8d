/**
 * Child processes a test starts (redis-server, a gateway replica) are killed at teardown; but a
 * test file that tap times out, or that dies on an uncaught error, never reaches its teardown,
 * and its children would live on, holding ports and CPU for the runs after it. Every child
 * registered here is killed (SIGKILL, by PID, synchronously) when this process exits or is
 * ended by SIGTERM, SIGINT or SIGHUP.
 */
import type { ChildProcess } from 'node:child_process'

const living = new Set<ChildProcess>()
let installed = false

export function guardChild(child: ChildProcess): ChildProcess {
  living.add(child)
  child.once('exit', () => living.delete(child))
  if (!installed) install()
  return child
}

function killAll(): void {
  for (const child of living) {
    try {
      child.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
  living.clear()
}

function install(): void {
  installed = true
  process.once('exit', killAll)
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAll()
      process.off(signal, onSignal)
      // The signal's usual end, unless another handler (tap's) took it over and ends the process itself.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
  }
}
