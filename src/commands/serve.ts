/**
 * `gatehouse serve`: runs the gateway of a configuration file, or with none the embedded demo
 * (the bundled demo MCP server behind a gateway on loopback, with a ready-made token).
 */
import { parseArgs } from 'node:util'
import { loadConfigFile, loadConfigObject } from '../config/load.js'
import { DEMO_CLIENT_ID, DEMO_USER, demoConfig } from '../demo/config.js'
import { startDemoMcpServer } from '../demo/mcp-server.js'
import { mintAccessToken } from '../keys/tokens.js'
import { createLogger } from '../log.js'
import { hashPassword } from '../login/passwords.js'
import { closeOnSignals, startGateway } from '../main.js'
import { KEEPS_RUNNING, type CommandIo } from './command.js'

export const usage = `  gatehouse serve [--config FILE]          (or GATEHOUSE_CONFIG=FILE; no file runs the embedded demo)`

/**
 * Returns KEEPS_RUNNING once the gateway listens: from then on closeOnSignals (main.ts) owns the
 * process and ends it on SIGTERM/SIGINT; SIGHUP reloads the configuration file. The gateway logs to the process's standard output
 * (pino's own fast destination), not through io: it is the process's log, not the command's answer.
 */
export async function run(args: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } })
  const file = values.config ?? io.env.GATEHOUSE_CONFIG
  if (file) {
    const config = await loadConfigFile(file, io.env, { checkFiles: true })
    const logger = createLogger(config.log.level)
    // SIGHUP or a change of the file reloads it live (README: live configuration reload).
    const gateway = await startGateway(config, { logger, env: io.env, configFile: file })
    closeOnSignals(gateway, logger)
    return KEEPS_RUNNING
  }

  const port = Number(io.env.PORT ?? 8080)
  const demo = await startDemoMcpServer()
  const config = loadConfigObject(
    demoConfig(port, demo.url, await hashPassword(DEMO_USER.password)),
    'embedded demo configuration',
    io.env,
  )
  const logger = createLogger(config.log.level)
  const gateway = await startGateway(config, { logger, env: io.env })
  const originalClose = gateway.close
  closeOnSignals({ ...gateway, close: async () => (await originalClose(), await demo.close()) }, logger)
  const resource = config.resources[0]!
  const devToken = await mintAccessToken(
    gateway.keystore!,
    config.issuer,
    { sub: 'developer', clientId: 'gatehouse-demo', audience: resource.uri, scopes: resource.requiredScopes },
    3600,
  )
  io.stdout.write(`
Gatehouse is running the embedded demo (development settings; see the warnings above).

  MCP endpoint      ${resource.uri}   (protected; upstream: the bundled demo MCP server)
  Resource metadata ${resource.metadataUrl}

Try it:
  curl -i ${resource.uri} -X POST -H 'content-type: application/json' -d '{}'      # 401 + challenge
  export TOKEN=${devToken}
  curl -s ${resource.uri} -X POST -H "authorization: Bearer $TOKEN" \\
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \\
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'

The token above is valid for one hour. MCP clients can also get their own through the
built-in authorization server (${config.issuer}): they may register themselves, or use the
pre-registered client id ${DEMO_CLIENT_ID} (redirect http://localhost:<any port>/callback).
Sign in as ${DEMO_USER.username} / ${DEMO_USER.password}.

Next: write your own configuration (config/gatehouse.example.yaml) and run:
  gatehouse serve --config FILE
`)
  return KEEPS_RUNNING
}
