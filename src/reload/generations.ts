/**
 * The live configuration of a listening gateway (issue 17): one Fastify app per configuration
 * ("generation"), one listening socket. Every request is handed to the generation current when
 * it arrives and stays there to its end, so a call or an event stream opened before a reload
 * finishes under the configuration it started with, while the next request sees the new one.
 * Building a whole app per configuration, instead of making each module re-read its settings,
 * swaps everything a configuration decides at once (routes of added or removed resources
 * included) and costs the hot path one reference read.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { answerClientError } from '../http/error-handler.js'

interface Generation {
  readonly app: FastifyInstance
  /** Requests handed to this generation and not yet ended (responses not closed). */
  open: number
  retired: boolean
  readonly release: () => void
}

export class AppGenerations {
  /**
   * Owns the socket and nothing else: its routes never see a request. Its server has Fastify's
   * defaults (keep-alive and request timeouts), as the gateway's apps would have had listening.
   */
  readonly #listener: FastifyInstance
  #current: Generation
  readonly #retired = new Set<Generation>()
  readonly #closing = new Set<Promise<void>>()

  constructor(
    first: FastifyInstance,
    private readonly logger: Logger,
  ) {
    // The socket's own errors (headers too large, a malformed request line) come before any app:
    // answered here, in the apps' error form.
    this.#listener = Fastify({ loggerInstance: logger as FastifyBaseLogger, forceCloseConnections: 'idle', clientErrorHandler: answerClientError })
    this.#current = this.#generation(first)
  }

  /** The app new requests go to. */
  get current(): FastifyInstance {
    return this.#current.app
  }

  get server(): Server {
    return this.#listener.server
  }

  /** Listens, then hands each request to the generation current at its arrival. */
  async listen(address: { host: string; port: number }): Promise<void> {
    await this.#listener.listen(address)
    const server = this.#listener.server
    for (const listener of server.listeners('request')) server.off('request', listener as () => void)
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const generation = this.#current
      generation.open++
      res.once('close', generation.release)
      generation.app.routing(req, res)
    })
  }

  /** Makes `next` (ready, not listening) current; the previous generation closes once its requests end. */
  swap(next: FastifyInstance): void {
    const previous = this.#current
    this.#current = this.#generation(next)
    previous.retired = true
    this.#retired.add(previous)
    this.#closeIfDrained(previous)
  }

  /**
   * Shutdown: every generation and the listener close together. Each generation ends its own
   * notification streams (and answers 503 to a request arriving meanwhile); the listener's close
   * waits for the sockets, which those streams hold.
   */
  async close(): Promise<void> {
    const generations = [this.#current, ...this.#retired]
    this.#retired.clear()
    await Promise.all([this.#listener.close(), ...generations.map((g) => this.#close(g)), ...this.#closing])
  }

  #generation(app: FastifyInstance): Generation {
    const generation: Generation = {
      app,
      open: 0,
      retired: false,
      release: () => {
        generation.open--
        this.#closeIfDrained(generation)
      },
    }
    return generation
  }

  #closeIfDrained(generation: Generation): void {
    if (!generation.retired || generation.open > 0 || !this.#retired.delete(generation)) return
    const closing = this.#close(generation)
    this.#closing.add(closing)
    void closing.finally(() => this.#closing.delete(closing))
  }

  async #close(generation: Generation): Promise<void> {
    try {
      await generation.app.close()
    } catch (err) {
      this.logger.error({ err }, 'closing a configuration generation failed')
    }
  }
}
