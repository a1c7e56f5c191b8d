/**
 * The processes of the proxy benchmark besides the load generator: Node servers forked from
 * servers.ts (one process each, talked to over IPC) and nginx; each reports the CPU time it
 * has used. With BENCH_PIN=<loadgen cpu>:<server cpu> (e.g. 0:1) the load generator runs on
 * one core and every server on the other (taskset), so a proxy's CPU per request is its own
 * and not shared with autocannon's.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { readdirSync, renameSync } from 'node:fs'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { processCpuMicros, startNginx, type NginxHandle } from './nginx.js'
import type { ChildMessage, ChildRequest, ServerSpec } from './servers.js'

/** A process whose CPU time the benchmark attributes to requests. */
export interface Measured {
  readonly name: string
  url: string
  token: string | undefined
  /** CPU time (user + system) the process has used so far, in microseconds. */
  cpuMicros(): Promise<number>
  /** Drops the upstream fixture's request records (servers only). */
  clear(): Promise<void>
  close(): Promise<void>
}

const PROFILE_DIR = process.env.BENCH_PROFILE || undefined
/** BENCH_NODE=<node binary>: the servers run on it (e.g. the Node of the container image), the load generator on this one. */
const SERVER_NODE = process.env.BENCH_NODE || undefined

/**
 * `.js` when the bench runs compiled (`npm run bench`: tsc's output in .build, as production
 * runs tsc's output), `.ts` when it runs through tsx. The servers run the same way: tsx's
 * transform adds work of its own to the code it loads (esbuild's keepNames wraps every closure
 * the gateway makes per call in a `__name` call), which a profile would count as the gateway's.
 */
const OWN_EXTENSION = extname(fileURLToPath(import.meta.url))

/** Another checkout's servers, run the way this bench runs; compiled ones are built first. */
function checkoutServers(checkout: string): string {
  if (OWN_EXTENSION === '.ts') return join(checkout, 'test/bench/servers.ts')
  execFileSync('npm', ['run', '--silent', 'typecheck'], { cwd: checkout, stdio: ['ignore', 'ignore', 'inherit'] })
  return join(checkout, '.build/test/bench/servers.js')
}

function pinning(): { loadgen: string; servers: string } | undefined {
  const raw = process.env.BENCH_PIN
  if (raw === undefined || raw === '' || raw === '0') return undefined
  const m = /^(\d+(?:[-,]\d+)*):(\d+(?:[-,]\d+)*)$/.exec(raw)
  if (!m) throw new Error(`BENCH_PIN must be <loadgen cpus>:<server cpus>, e.g. 0:1 (got ${raw})`)
  return { loadgen: m[1]!, servers: m[2]! }
}

export const PIN = pinning()

function taskset(cpus: string, pid: number): void {
  // -a: every thread of the process (Node's worker threads, libuv's pool).
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' })
}

/** The load generator (this process) on its own core(s), when pinning. */
export function pinLoadGenerator(): void {
  if (PIN) taskset(PIN.loadgen, process.pid)
}

function pinToServerCpu(pid: number): void {
  if (PIN) taskset(PIN.servers, pid)
}

/** Every measured process, for closing and for telling the benchmark's CPU from other load. */
export const processes = new Set<Measured>()
const serverChildren = new Set<ChildProcess>()
let shuttingDown = false

type Reply = Extract<ChildMessage, { type: 'reply' }>

export class ServerProcess implements Measured {
  #nextId = 1
  readonly #pending = new Map<number, { resolve: (m: Reply) => void; reject: (e: Error) => void }>()
  #exited: string | undefined
  url = ''
  token: string | undefined

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {}

  /** `checkout`: another checkout of Gatehouse whose test/bench/servers.ts (and so whose src/) runs this server. */
  static start(name: string, spec: ServerSpec, checkout?: string): Promise<ServerProcess> {
    // stdout goes to /dev/null: that is where the gateway's pino logs land (fd 1, as in production).
    // BENCH_PROFILE=dir: V8 CPU profile of every server process, written when it exits.
    // (tsx's loader thread writes a profile too; close() renames the main thread's after the server.)
    const profile = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []
    const script = checkout ? checkoutServers(checkout) : fileURLToPath(new URL(`./servers${OWN_EXTENSION}`, import.meta.url))
    const child = fork(script, [], {
      ...(SERVER_NODE && { execPath: SERVER_NODE }),
      execArgv: [...process.execArgv, ...profile],
      env: { ...process.env, BENCH_SERVER: JSON.stringify(spec) },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    })
    const proc = new ServerProcess(name, child)
    processes.add(proc)
    serverChildren.add(child)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: not ready after 30 s`)), 30_000)
      child.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') {
          clearTimeout(timer)
          proc.url = m.url
          proc.token = m.token
          pinToServerCpu(m.pid)
          resolve(proc)
        } else if (m.type === 'failed') {
          clearTimeout(timer)
          reject(new Error(`${name} failed to start:\n${m.error}`))
        } else if (m.type === 'reply') {
          proc.#pending.get(m.id)?.resolve(m)
          proc.#pending.delete(m.id)
        }
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        processes.delete(proc)
        serverChildren.delete(child)
        proc.#exited = `${name} exited (code ${code}, signal ${signal})`
        for (const { reject: fail } of proc.#pending.values()) fail(new Error(proc.#exited))
        proc.#pending.clear()
        if (!shuttingDown) reject(new Error(proc.#exited))
      })
    })
  }

  #ask(op: ChildRequest['op']): Promise<Reply> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      if (this.#exited || !this.child.connected) return reject(new Error(this.#exited ?? `${this.name} is gone`))
      this.#pending.set(id, { resolve, reject })
      this.child.send({ id, op } satisfies ChildRequest)
    })
  }

  get pid(): number {
    return this.child.pid!
  }

  /** CPU time (user + system) the process has used so far, in microseconds. */
  async cpuMicros(): Promise<number> {
    const { cpu } = await this.#ask('cpu')
    if (!cpu) throw new Error(`${this.name}: no CPU figure`)
    return cpu.user + cpu.system
  }

  async clear(): Promise<void> {
    await this.#ask('clear')
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    await this.#ask('close').catch(() => {})
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 5000).unref())
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      this.child.kill('SIGKILL')
      await exited
    }
    if (PROFILE_DIR) {
      // Node names profiles CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread 0 is the main thread.
      const main = readdirSync(PROFILE_DIR).find((f) => f.includes(`.${this.child.pid}.0.`) && f.endsWith('.cpuprofile'))
      if (main) renameSync(join(PROFILE_DIR, main), join(PROFILE_DIR, `${this.name.replace(/[^a-z0-9]+/gi, '-').replace(/-$/, '')}.cpuprofile`))
    }
  }
}

/** nginx in front of an upstream (nginx.ts), measured from /proc. */
export class NginxProcess implements Measured {
  token: string | undefined = undefined
  private constructor(
    readonly name: string,
    readonly handle: NginxHandle,
    public url: string,
  ) {}

  static async start(name: string, upstream: string, log: (s: string) => void): Promise<NginxProcess> {
    const handle = await startNginx(upstream, log)
    for (const pid of handle.pids()) pinToServerCpu(pid)
    const proc = new NginxProcess(name, handle, handle.url)
    processes.add(proc)
    return proc
  }

  async cpuMicros(): Promise<number> {
    return this.handle.pids().reduce((sum, pid) => sum + processCpuMicros(pid), 0)
  }

  async clear(): Promise<void> {}

  async close(): Promise<void> {
    processes.delete(this)
    await this.handle.close()
  }
}

export async function closeAll(): Promise<void> {
  shuttingDown = true
  await Promise.allSettled([...processes].map((c) => c.close()))
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    shuttingDown = true
    for (const c of serverChildren) c.kill('SIGKILL')
    for (const p of processes) if (p instanceof NginxProcess) void p.close()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  })
}
