// pino JSON logs with redaction. Tokens, assertions, keys and caller secrets are never logged on
// purpose; the redaction list is the safety net for anything that slips into a log object.
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

export type Logger = PinoLogger;

// Exact paths only: wildcard paths make pino check every key of every log line, and the broker
// logs flat objects it builds itself (tests assert no secret reaches any line).
export const REDACTED_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'access_token',
  'accessToken',
  'token',
  'client_assertion',
  'assertion',
  'privateKey',
  'apiKey',
  'refresh_token',
  'passphrase',
  'secret',
  'err.config.headers.authorization',
];

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'token-broker' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A child logger for one module; the component name is the only field it adds. */
export function componentLogger(logger: Logger, component: string): Logger {
  return logger.child({ component });
}
