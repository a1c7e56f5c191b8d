/**
 * Runs the `gatehouse` command two ways: in-process through the same dispatcher the binary uses
 * (fast; the default for command tests), and as a user would, a real child process (src/cli.ts
 * through tsx, or its compiled .build/src/cli.js when the tests run compiled, ./repo.ts), for
 * what only a process shows (exit status, signals, standard input, umask).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import type { Test } from 'tap'
import { runCommand } from '../../src/commands/dispatch.js'
import type { CommandIo } from '../../src/commands/command.js'
import { reservePort } from './ports.js'
import { CLI_ARGV } from './repo.js'

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

export interface InProcessOptions {
  /** Standard input (default: empty, like the closed stdin of runCli). */
  stdin?: string
  /** PEM trust anchors for the command's outbound TLS (what NODE_EXTRA_CA_CERTS does for a child). */
  extraCaCertificates?: string
}

/**
 * Runs the command in this process with its output captured. The environment is a fresh copy
 * of this process's plus `env` (as a child would inherit it), so nothing a case sets reaches
 * another; a command that touched process.env, the exit code or process.exit fails the run.
 */
export async function runInProcess(args: string[], env: NodeJS.ProcessEnv = {}, options: InProcessOptions = {}): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const io: CommandIo = {
    stdout: { write: (text) => void (stdout += text) },
    stderr: { write: (text) => void (stderr += text) },
    readStdin: async () => Buffer.from(options.stdin ?? '', 'utf8'),
    env: { ...process.env, ...env },
    ...(options.extraCaCertificates !== undefined && { extraCaCertificates: options.extraCaCertificates }),
  }
  const envBefore = JSON.stringify(process.env)
  const exitCodeBefore = process.exitCode
  // Recorded, not just thrown: the dispatcher would turn the throw into an ordinary exit 1.
  let exitCalled: string | undefined
  const exit = process.exit
  process.exit = ((code?: number) => {
    exitCalled = `process.exit(${code})`
    throw new Error(`a command called ${exitCalled} in-process`)
  }) as typeof process.exit
  let code: number
  try {
    const [word, ...rest] = args
    code = await runCommand(word, rest, io)
  } finally {
    process.exit = exit
  }
  if (exitCalled !== undefined) throw new Error(`${args.join(' ')}: the command called ${exitCalled}`)
  if (JSON.stringify(process.env) !== envBefore) throw new Error(`${args.join(' ')}: the command changed process.env`)
  if (process.exitCode !== exitCodeBefore) throw new Error(`${args.join(' ')}: the command set process.exitCode`)
  return { code, stdout, stderr }
}

/**
 * Runs the CLI with standard input closed (a command that reads it, like hash-password, must
 * not wait forever) or given `stdin`; `umask`, when given, is set for the child (file-mode tests).
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, umask?: string, stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const node = [process.execPath, ...CLI_ARGV, ...args]
    const child =
      umask === undefined
        ? spawn(node[0]!, node.slice(1), { env: { ...process.env, ...env } })
        : spawn('sh', ['-c', `umask ${umask} && exec "$0" "$@"`, ...node], { env: { ...process.env, ...env } })
    child.stdin.end(stdin)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c))
    child.stderr.on('data', (c: Buffer) => (stderr += c))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/**
 * The demo as a child process. Its port comes from PORT and is part of its URLs, so it is
 * reserved before the child binds (ports.ts: no other socket can take it meanwhile); should the
 * child still report EADDRINUSE (a platform where reservations are best effort), the demo starts
 * again on another one.
 */
export async function startDemo(t: Test): Promise<{ child: ChildProcessWithoutNullStreams; port: number; stdout: () => string }> {
  for (let attempt = 1; ; attempt++) {
    const port = await reservePort(t)
    const child = spawn(process.execPath, [...CLI_ARGV, 'serve'], { env: { ...process.env, PORT: String(port) } })
    t.teardown(() => child.kill('SIGKILL'))
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c))
    child.stderr.on('data', (c: Buffer) => (stderr += c))
    const deadline = Date.now() + 20_000
    while (!/export TOKEN=(\S+)/.test(stdout) && !/EADDRINUSE/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    if (!/EADDRINUSE/.test(stderr) || attempt === 3) return { child, port, stdout: () => stdout }
    child.kill('SIGKILL')
  }
}
