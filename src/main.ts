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
  const { url } = await broker.listen();
  broker.logger.info({ url, credentials: loaded.config.credentials.map((c) => c.id), callers: loaded.config.callers.length, config: loaded.source }, 'token-broker listening');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    broker.logger.info({ signal }, 'shutting down');
    broker.close().then(
      () => {
        broker.logger.flush();
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await serve();
}
