/**
 * The process logger: pino JSON, one line per event. Secrets never reach it: credential
 * headers are censored wherever they appear, and credential-bearing query parameters are
 * masked in every logged URL (MCPA-62: never log token values).
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'

const CENSORED = '[redacted]'
const SECRET_QUERY_PARAMS = /([?&](?:access_token|refresh_token|id_token|token|code|code_verifier|client_secret|client_assertion|assertion|state|password)=)[^&#]*/gi

export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY_PARAMS, `$1${CENSORED}`)
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["proxy-authorization"]',
        'req.headers.cookie',
        'res.headers["set-cookie"]',
        'headers.authorization',
        'headers.cookie',
        '*.client_secret',
        // Token exchange toward the upstream (UPS-03): never logged today; censored should anyone try.
        '*.clientSecret',
        '*.subject_token',
        '*.refresh_token',
        '*.access_token',
        '*.password',
      ],
      censor: CENSORED,
    },
    serializers: {
      req: (req: { method: string; url: string; ip?: string; socket?: { remoteAddress?: string } }) => ({
        method: req.method,
        url: redactUrl(req.url),
        remoteAddress: req.ip ?? req.socket?.remoteAddress,
      }),
    },
  }
}

/** Default destination: standard output (fd 1). Commands pass their io's writers instead. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level))
}
