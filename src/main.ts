// Entry point of the production server: load config from BROKER_CONFIG, build, listen, drain on SIGTERM.
import { buildBroker } from './broker.ts';
import { loadConfigFromEnv } from './config/load.ts';
import { ConfigError } from './core/errors.ts';

export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let loaded;
  try {
    loaded = loadConfigFromEnv(env);
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
  const { url } = await broker.listen();
  broker.logger.info({ url, credentials: loaded.config.credentials.map((c) => c.id), callers: loaded.config.callers.length, config: loaded.source }, 'token-broker listening');

  // Graceful shutdown: readiness fails at once so the load balancer stops sending; requests keep being
  // served for shutdownDelaySeconds; then the listener closes, in-flight requests and refreshes finish,
  // Redis is closed, exit 0. A second signal exits at once.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
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
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await serve();
}
