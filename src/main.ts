// Entry point of the production server: load config from BROKER_CONFIG, build, listen, drain on SIGTERM.
import { buildBroker, prepareBroker } from './broker.ts';
import { loadConfigFromEnv } from './config/load.ts';
import { ConfigError } from './kernel/errors.ts';
import { ListenError } from './http/http-errors.ts';

/**
 * The signals that start the graceful drain (docs/operations.md, "Signals and shutdown"). SIGHUP
 * (the terminal or session went away) and SIGUSR2 (nodemon's restart) would otherwise end the
 * process at once, with requests in flight; the broker has no reload to map them to: certificates
 * reload on their own, and a config change is a restart.
 */
export const DRAIN_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR2'] as const;

export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let loaded;
  try {
    loaded = await prepareBroker(loadConfigFromEnv(env));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`token-broker: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const broker = buildBroker(loaded);
  // A library promise nobody awaits (say, a client's internal command lost with its connection) must
  // not take the broker down: log it and keep serving. Our own code awaits or catches everything.
  process.on('unhandledRejection', (reason) => {
    broker.logger.error({ error: reason instanceof Error ? reason.message : String(reason) }, 'unhandled promise rejection (ignored)');
  });
  let url: string;
  try {
    ({ url } = await broker.listen());
  } catch (err) {
    // A busy port or an address this host does not have: one line, no stack trace.
    if (err instanceof ListenError) {
      process.stderr.write(`token-broker: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  broker.logger.info({ url, credentials: loaded.config.credentials.map((c) => c.id), callers: loaded.config.callers.length, config: loaded.source }, 'token-broker listening');

  // Graceful shutdown: readiness fails at once so the load balancer stops sending; requests keep being
  // served for shutdownDelaySeconds, each answered with Connection: close so keep-alive callers
  // reconnect (elsewhere) instead of being reset; then the listener closes, in-flight requests and
  // refreshes finish, Redis is closed, exit 0. A second signal exits at once.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      broker.logger.warn({ signal }, 'second signal while draining: exiting now');
      broker.logger.flush();
      process.exit(1);
    }
    stopping = true;
    const delayMs = loaded.config.server.shutdownDelaySeconds * 1000;
    broker.beginShutdown();
    broker.logger.info({ signal, delaySeconds: loaded.config.server.shutdownDelaySeconds }, 'shutting down: not ready any more, draining');
    setTimeout(() => {
      broker.close().then(
        () => {
          broker.logger.info('stopped');
          broker.logger.flush();
          process.exit(0);
        },
        (err: unknown) => {
          broker.logger.error({ error: (err as Error).message }, 'shutdown failed');
          process.exit(1);
        },
      );
    }, delayMs);
  };
  for (const signal of DRAIN_SIGNALS) process.on(signal, () => stop(signal));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await serve();
}
