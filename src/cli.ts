#!/usr/bin/env node
/**
 * The `gatehouse` command.
 *
 *   gatehouse serve [--config FILE]       run the gateway (no file: the embedded demo)
 *   gatehouse check-config FILE           validate a configuration, listing every problem
 *   gatehouse token --config FILE --sub S  mint a development access token (capped, audited, revocable)
 *   gatehouse keys generate [--alg ES256] print a new private signing key (PKCS#8 PEM)
 *   gatehouse keys list|rotate ...        the configured signing keys; a new key and the steps to roll it in
 *   gatehouse hash-password               hash a password read from stdin, for login.static.users
 *   gatehouse grants list|revoke ...      what people allowed which clients; revoking stops refreshes
 *   gatehouse clients list|delete ...     dynamically registered clients of a deployment
 *   gatehouse cimd inspect|purge ...      one metadata-document client id's decision, step by step; empty the cache
 *   gatehouse workload inspect ...       why a workload token is accepted or refused, step by step
 *   gatehouse [COMMAND] --help | -h       usage (of one command); gatehouse --version | -V
 *
 * Exit statuses: 0 done, 1 failed, 2 wrong invocation or configuration, 3 store unreachable.
 *
 * Each command lives in src/commands/ with its usage text; this file binds them to the process:
 * the command word, the real standard streams and environment, the exit code.
 */
import { runCommand } from './commands/dispatch.js'
import type { CommandIo } from './commands/command.js'

const io: CommandIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  // Opened only by a command that reads it (hash-password).
  readStdin: async () => {
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks)
  },
  env: process.env,
}

const [word, ...args] = process.argv.slice(2)
runCommand(word, args, io).then((code) => {
  // A running serve (KEEPS_RUNNING) leaves the exit to its signal handlers.
  if (code >= 0) process.exitCode = code
})
