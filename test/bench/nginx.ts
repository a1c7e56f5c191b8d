/**
 * nginx as a reference reverse proxy for the proxy benchmark (not a test): Debian's package,
 * installed with apt-get when missing (the bench runs as root on its machine; elsewhere install
 * `nginx-light` or `nginx` first, or leave nginx out with BENCH_NGINX=0).
 *
 * Configuration: one worker, a plain reverse proxy as its documentation describes one for
 * streaming traffic: HTTP/1.1 with keep-alive toward the upstream, request and response
 * buffering off (SSE passes at once), one access line per request written to /dev/null (as
 * Gatehouse's access lines are in the benchmark).
 *
 * keepalive_requests, both ways, is raised from its default of 1000 to what the Node servers
 * have (no limit): otherwise nginx closes a client connection after its 1000th call, and the
 * load generator's new connection then ran at twice the latency (a one-connection round of two
 * seconds measured +500 µs for nginx instead of +60), and it reopens every upstream connection
 * after 1000 calls, which no other target does.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { reservePort } from '../helpers/ports.js'

const BINARY_CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx']

function findNginx(): string | undefined {
  return BINARY_CANDIDATES.find((p) => existsSync(p))
}

/** The nginx binary, installing Debian's package when there is none. */
export function ensureNginx(log: (s: string) => void): string {
  const found = findNginx()
  if (found) return found
  if (process.getuid?.() !== 0) throw new Error('nginx is not installed and the bench is not root: install nginx-light, or set BENCH_NGINX=0')
  log('nginx not found: apt-get install -y nginx-light …')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'nginx-light'], { stdio: 'ignore', env })
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'ignore', env })
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'nginx-light'], { stdio: 'ignore', env })
  }
  const installed = findNginx()
  if (!installed) throw new Error('apt-get installed nginx-light but no nginx binary was found')
  return installed
}

export function nginxVersion(binary: string): string {
  // nginx prints its version on stderr.
  const out = execFileSync(binary, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  return out.trim() || 'nginx'
}

export interface NginxHandle {
  url: string
  version: string
  /** The master's pid; its worker does the proxying. */
  pid: number
  /** Every nginx process (master and worker). */
  pids(): number[]
  close(): Promise<void>
}

export async function startNginx(upstream: string, log: (s: string) => void): Promise<NginxHandle> {
  const binary = ensureNginx(log)
  const target = new URL(upstream)
  const port = await reservePort()
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-nginx-'))
  const config = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 16384; }
worker_rlimit_nofile 40000;
http {
  access_log /dev/null;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  upstream mcp { server ${target.host}; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`
  writeFileSync(join(dir, 'nginx.conf'), config)
  const child: ChildProcess = spawn(binary, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const url = `http://127.0.0.1:${port}${target.pathname}`
  // reservePort held the port until now; nginx needs a moment to bind it.
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`)
    const up = await fetch(`http://127.0.0.1:${port}/`).then(
      () => true,
      () => false,
    )
    if (up) break
    if (i > 100) throw new Error(`nginx did not listen on ${port}: ${stderr}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const pid = child.pid!
  return {
    url,
    version: nginxVersion(binary),
    pid,
    pids: () => [pid, ...childPids(pid)],
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGQUIT')
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
        if (child.exitCode === null) child.kill('SIGKILL')
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * CPU time (user + system) a process has used, in microseconds: the scheduler's nanosecond
 * count when the kernel keeps it, else /proc/<pid>/stat in clock ticks (10 ms; a round of a few
 * hundred ms of CPU stays within a few per cent).
 */
export function processCpuMicros(pid: number): number {
  try {
    const ns = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0])
    if (ns > 0) return ns / 1000
    // The command name may hold spaces: fields are counted from its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1e4
  } catch {
    return 0
  }
}
