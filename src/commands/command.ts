/**
 * What a `gatehouse` command is and what it sees of its process. A command takes its arguments
 * (after the command word) and an io, writes its answer to io.stdout and its messages to
 * io.stderr, and returns its exit code; it never touches process.stdout, process.env or
 * process.exit itself, so tests run it in-process with io of their own (src/cli.ts passes the
 * real process's). Invocation mistakes are thrown as UsageError and reported by the dispatcher
 * (exit 2), like configuration and key errors.
 */

/** Where text goes. process.stdout and process.stderr are Outputs; an Output is also a pino destination. */
export interface Output {
  write(text: string): void
}

export interface CommandIo {
  /** The command's answer, the only thing a script reads. */
  stdout: Output
  /** Messages, warnings and the audit events of operator commands. */
  stderr: Output
  /** Standard input to its end; opened only by the commands that take their input there. */
  readStdin(): Promise<Buffer>
  /** GATEHOUSE_CONFIG, PORT, ${VAR} references in configuration, signing keys given as env. */
  env: NodeJS.ProcessEnv
  /**
   * Test hook: PEM trust anchors for the outbound TLS of `cimd inspect` (SafeFetcher's `ca`),
   * for an in-process test's document server. The binary leaves it unset: it trusts the system
   * store and NODE_EXTRA_CA_CERTS, which Node reads at process start only.
   */
  extraCaCertificates?: string
}

export interface Command {
  /** Its lines of the top-level usage text, without the trailing newline. */
  readonly usage: string
  readonly run: (args: string[], io: CommandIo) => Promise<number>
}

/** What `serve` returns once its gateway runs: the process lives on until a signal ends it. */
export const KEEPS_RUNNING = -1

/** A wrong invocation: the dispatcher prints `gatehouse: <message>` and exits 2. */
export class UsageError extends Error {}
