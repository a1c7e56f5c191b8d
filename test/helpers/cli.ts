/** Runs the `gatehouse` command as a user would: a real child process, compiled on the fly by tsx. */
import { spawn } from 'node:child_process'

export const CLI = new URL('../../src/cli.ts', import.meta.url).pathname

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs the CLI with standard input closed (a command that reads it, like hash-password, must
 * not wait forever); `umask`, when given, is set for the child (file-mode tests).
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, umask?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const node = [process.execPath, '--import=tsx', CLI, ...args]
    const child =
      umask === undefined
        ? spawn(node[0]!, node.slice(1), { env: { ...process.env, ...env } })
        : spawn('sh', ['-c', `umask ${umask} && exec "$0" "$@"`, ...node], { env: { ...process.env, ...env } })
    child.stdin.end()
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c))
    child.stderr.on('data', (c: Buffer) => (stderr += c))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}
