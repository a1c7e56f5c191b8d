/**
 * Real Redis topologies for tests, built from private `redis-server` children on loopback ports
 * reserved for the test (./ports.ts), each with its own data directory:
 *  - sentinelForTests: one master, one replica, three sentinels (`redis-server <conf> --sentinel`);
 *  - clusterForTests: three masters with one replica each (`--cluster-enabled yes`, then
 *    `redis-cli --cluster create ... --cluster-replicas 1`).
 * Every process is killed by PID (SIGKILL) at teardown, and the directories removed, whether the
 * test passed or not. Like redisServerForTests, undefined when redis-server is not installed: the
 * test is skipped with the reason, or fails under GATEHOUSE_REQUIRE_REDIS=1.
 *
 * Timings are test-sized: a sentinel marks a silent master down after 1 s and a cluster node
 * after 1 s (cluster-node-timeout), so a failover takes a few seconds, not the production default
 * of 30 s (Sentinel) or 15 s (Cluster).
 */
import { execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import type { RedisStoreConfig } from '../../src/config/schema.js'
import { reservePort } from './ports.js'
import { launch, redisUnavailable } from './redis.js'

const run = promisify(execFile)
export const MASTER_NAME = 'gatehouse'
/** Sentinel and cluster timings (ms): how long a silent node has before it is declared down. */
export const DOWN_AFTER_MS = 1000

export interface TopologyNode {
  port: number
  /** Kills the process (SIGKILL: a crash, not a shutdown) and waits until it is gone. */
  kill(): Promise<void>
  readonly alive: boolean
}

/** Every process of one topology: killed together at teardown, by PID. */
class Processes {
  readonly #children = new Set<ChildProcess>()
  readonly #dirs: string[] = []
  readonly #clients: Redis[] = []

  constructor(t: Test) {
    t.teardown(() => this.stop())
  }

  async dir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-topology-'))
    this.#dirs.push(dir)
    return dir
  }

  async start(args: string[], port: number, cwd: string): Promise<TopologyNode> {
    const child = await launch(args, port, cwd)
    this.#children.add(child)
    const gone = (): boolean => child.exitCode !== null || child.signalCode !== null
    return {
      port,
      get alive() {
        return !gone()
      },
      kill: async () => {
        if (gone()) return
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGKILL')
        await exited
      },
    }
  }

  client(port: number, password?: string): Redis {
    const c = new Redis({ host: '127.0.0.1', port, password, maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: false })
    c.on('error', () => {})
    this.#clients.push(c)
    return c
  }

  async stop(): Promise<void> {
    for (const c of this.#clients) c.disconnect()
    const exits: Promise<unknown>[] = []
    for (const child of this.#children) {
      if (child.exitCode !== null || child.signalCode !== null) continue
      exits.push(new Promise((resolve) => child.once('exit', resolve)))
      child.kill('SIGKILL')
    }
    await Promise.all(exits)
    await Promise.all(this.#dirs.map((d) => rm(d, { recursive: true, force: true })))
  }
}

/** Whether redis-server can be started at all; skips or fails the test otherwise. */
async function redisServerInstalled(t: Test): Promise<boolean> {
  try {
    await run('redis-server', ['--version'])
    await run('redis-cli', ['--version'])
    return true
  } catch {
    redisUnavailable(t, 'redis-server or redis-cli not found on PATH')
    return false
  }
}

function dataNodeArgs(port: number, dir: string, password?: string): string[] {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']
  // Redis 7 waits 5 s before a diskless full sync (to batch replicas); a test replica syncs at once.
  args.push('--enable-debug-command', 'local', '--repl-diskless-sync-delay', '0')
  if (password) args.push('--requirepass', password, '--masterauth', password)
  return args
}

async function until(check: () => Promise<boolean>, withinMs: number, what: string): Promise<void> {
  const deadline = Date.now() + withinMs
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms`)
    await sleep(100)
  }
}

// ---------------------------------------------------------------------------------------------
// Sentinel

export interface TestSentinel {
  master: TopologyNode
  replica: TopologyNode
  sentinels: TopologyNode[]
  password?: string
  /** A store configuration that finds the master through the sentinels. */
  storeConfig(overrides?: Partial<RedisStoreConfig>): RedisStoreConfig
  /** The port of the master as the sentinels currently see it. */
  masterPort(): Promise<number>
  /** Waits until the sentinels name a master other than `oldPort` and it accepts writes; the ms it took. */
  promoted(oldPort: number, withinMs?: number): Promise<number>
  /** A client of one data node (no key prefix), closed at teardown. */
  admin(port: number): Redis
}

/** `password`: the data nodes' requirepass; `sentinelPassword`: the sentinels' own requirepass. */
export async function sentinelForTests(t: Test, { password, sentinelPassword }: { password?: string; sentinelPassword?: string } = {}): Promise<TestSentinel | undefined> {
  if (!(await redisServerInstalled(t))) return undefined
  const procs = new Processes(t)
  const [masterPort, replicaPort] = [await reservePort(t), await reservePort(t)]
  const master = await procs.start(dataNodeArgs(masterPort, await procs.dir(), password), masterPort, await procs.dir())
  const replica = await procs.start(
    [...dataNodeArgs(replicaPort, await procs.dir(), password), '--replicaof', '127.0.0.1', String(masterPort), '--replica-announce-ip', '127.0.0.1'],
    replicaPort,
    await procs.dir(),
  )
  const admin = (port: number) => procs.client(port, password)
  const m = admin(masterPort)
  await until(async () => /connected_slaves:1/.test(await m.info('replication')), 10_000, 'replica attached')
  await until(async () => /master_link_status:up/.test(await admin(replicaPort).info('replication')), 10_000, 'replica in sync')

  const sentinels: TopologyNode[] = []
  for (let i = 0; i < 3; i++) {
    const port = await reservePort(t)
    const dir = await procs.dir()
    // Sentinel rewrites its configuration file (it records what it learns), so it lives in its own directory.
    const conf = join(dir, 'sentinel.conf')
    const lines = [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      'sentinel announce-ip 127.0.0.1',
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${MASTER_NAME} ${DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${MASTER_NAME} 5000`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
      ...(password ? [`sentinel auth-pass ${MASTER_NAME} ${password}`] : []),
      // A sentinel that requires a password needs it from the other sentinels too.
      ...(sentinelPassword ? [`requirepass ${sentinelPassword}`, `sentinel sentinel-pass ${sentinelPassword}`] : []),
    ]
    await writeFile(conf, lines.join('\n') + '\n')
    sentinels.push(await procs.start([conf, '--sentinel'], port, dir))
  }
  const sentinelClient = procs.client(sentinels[0]!.port, sentinelPassword)
  const masterPortNow = async (): Promise<number> => {
    const [, port] = (await sentinelClient.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as [string, string]
    return Number(port)
  }
  // Every sentinel knows the others and the replica before the test starts, so a failover can be voted.
  await until(
    async () => {
      const info = (await sentinelClient.call('SENTINEL', 'master', MASTER_NAME)) as string[]
      const field = (name: string) => Number(info[info.indexOf(name) + 1])
      return field('num-other-sentinels') === 2 && field('num-slaves') === 1
    },
    15_000,
    'sentinels discovered each other',
  )

  return {
    master,
    replica,
    sentinels,
    password,
    storeConfig: (overrides = {}) => ({
      url: password ? `redis://:${encodeURIComponent(password)}@${MASTER_NAME}/0` : `redis://${MASTER_NAME}/0`,
      keyPrefix: 'sentinel:',
      sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
      sentinelMasterName: MASTER_NAME,
      ...(sentinelPassword && { sentinelPassword }),
      connectTimeoutMs: 2000,
      commandTimeoutMs: 500,
      ...overrides,
    }),
    masterPort: masterPortNow,
    promoted: async (oldPort, withinMs = 20_000) => {
      const started = Date.now()
      await until(
        async () => {
          const port = await masterPortNow()
          return port !== oldPort && /role:master/.test(await admin(port).info('replication'))
        },
        withinMs,
        'sentinels promoted the replica',
      )
      return Date.now() - started
    },
    admin,
  }
}

// ---------------------------------------------------------------------------------------------
// Cluster

export interface TestCluster {
  nodes: TopologyNode[]
  password?: string
  /** A store configuration with every node as a seed. */
  storeConfig(overrides?: Partial<RedisStoreConfig>): RedisStoreConfig
  /** The ports of the nodes that are masters now (asked of a live node). */
  masterPorts(): Promise<number[]>
  /** The node that serves `key`'s slot as master now. */
  masterOf(key: string): Promise<TopologyNode>
  /** Waits until every slot is served again (cluster_state:ok on every live node); the ms it took. */
  healthy(withinMs?: number): Promise<number>
  admin(port: number): Redis
}

export async function clusterForTests(t: Test, { password }: { password?: string } = {}): Promise<TestCluster | undefined> {
  if (!(await redisServerInstalled(t))) return undefined
  const procs = new Processes(t)
  const nodes: TopologyNode[] = []
  for (let i = 0; i < 6; i++) {
    const port = await reservePort(t)
    // The cluster bus listens on its own port; reserved too, rather than left to port + 10000.
    const busPort = await reservePort(t)
    const dir = await procs.dir()
    const args = [
      ...dataNodeArgs(port, dir, password),
      '--cluster-enabled', 'yes',
      '--cluster-port', String(busPort),
      '--cluster-config-file', join(dir, 'nodes.conf'),
      '--cluster-node-timeout', String(DOWN_AFTER_MS),
      '--cluster-announce-ip', '127.0.0.1',
    ]
    nodes.push(await procs.start(args, port, dir))
  }
  const auth = password ? ['-a', password, '--no-auth-warning'] : []
  await run('redis-cli', [...auth, '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'])
  const admin = (port: number) => procs.client(port, password)
  const healthy = async (withinMs = 20_000): Promise<number> => {
    const started = Date.now()
    await until(
      async () => {
        for (const n of nodes.filter((x) => x.alive)) {
          if (!/cluster_state:ok/.test((await admin(n.port).call('CLUSTER', 'INFO')) as string)) return false
        }
        return true
      },
      withinMs,
      'cluster state ok',
    )
    return Date.now() - started
  }
  await healthy()
  // A replica that never synced would not be elected (its data is too old): wait for every link.
  for (const n of nodes) {
    await until(async () => !/role:slave/.test(await admin(n.port).info('replication')) || /master_link_status:up/.test(await admin(n.port).info('replication')), 10_000, 'replicas in sync')
  }
  const live = () => admin(nodes.find((n) => n.alive)!.port)
  const slotsTable = async () => (await live().call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string], ...unknown[]][]
  return {
    nodes,
    password,
    storeConfig: (overrides = {}) => ({
      url: password ? `redis://:${encodeURIComponent(password)}@cluster` : 'redis://cluster',
      keyPrefix: 'cluster:',
      clusterNodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
      connectTimeoutMs: 2000,
      commandTimeoutMs: 500,
      ...overrides,
    }),
    masterPorts: async () => [...new Set((await slotsTable()).map((range) => range[2][1]))],
    masterOf: async (key) => {
      const slot = (await live().call('CLUSTER', 'KEYSLOT', key)) as number
      const range = (await slotsTable()).find(([from, to]) => slot >= from && slot <= to)!
      return nodes.find((n) => n.port === range[2][1])!
    },
    healthy,
    admin,
  }
}
