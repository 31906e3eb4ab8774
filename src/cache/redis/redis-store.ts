// The shared level on Redis, whatever the topology: the clients from the one factory, then the
// health tracker, the notifications and the token cache and counters on top of them.
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../observability/logger.ts';
import type { CacheCipher } from '../cache-cipher.ts';
import type { SharedStore } from '../token-cache.ts';
import { createRedisClients, type RedisSettings } from './redis-clients.ts';
import { DEFAULT_REDIS_COMMAND_TIMEOUT_MS, RedisHealth } from './redis-health.ts';
import { RedisKeyLayout } from './redis-key-layout.ts';
import { RedisNotifications } from './redis-notifications.ts';
import { RedisSharedCounter } from './redis-shared-counter.ts';
import { RedisTokenCache } from './redis-token-cache.ts';

export interface RedisStoreOptions {
  settings: RedisSettings;
  keyPrefix: string;
  clock: Clock;
  logger: Logger;
  cipher?: CacheCipher;
  commandTimeoutMs?: number;
}

export function createRedisStore(options: RedisStoreOptions): SharedStore {
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
  const clients = createRedisClients(options.settings, { commandTimeoutMs });
  const layout = new RedisKeyLayout(options.keyPrefix);
  const health = new RedisHealth(clients, layout, options.clock, options.logger, commandTimeoutMs);
  const notifications = new RedisNotifications(clients, layout);
  const parts = { client: clients.commands, layout, health, notifications, clock: options.clock, cipher: options.cipher, commandTimeoutMs };
  return {
    tokens: new RedisTokenCache(parts),
    counter: new RedisSharedCounter(parts),
    health,
    async ready(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      await health.usable(timeoutMs);
      await notifications.ready(Math.max(1, deadline - Date.now()));
    },
    async close() {
      health.close();
      await notifications.close();
      // QUIT on a connected client lets replies in flight arrive; one never connected (or a cluster
      // still looking for its nodes) would queue it for ever, so it is only disconnected.
      const quit = (client: typeof clients.commands) => (client.status === 'ready' ? client.quit().then(() => undefined, () => undefined) : undefined);
      await Promise.race([Promise.all([quit(clients.commands), quit(clients.subscriber)]), new Promise((r) => setTimeout(r, 2000).unref())]);
      clients.commands.disconnect();
      clients.subscriber.disconnect();
    },
  };
}
