// The shared level on Redis, whatever the topology: the clients from the one factory, then the
// health tracker, the notifications and the token cache and counters on top of them.
import { Cluster, type Redis } from 'ioredis';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../observability/logger.ts';
import type { CacheCipher } from '../cache-cipher.ts';
import type { SharedStore } from '../token-cache.ts';
import { createRedisClients, type RedisSettings } from './redis-clients.ts';
import { DEFAULT_REDIS_COMMAND_TIMEOUT_MS, RedisHealth } from './redis-health.ts';
import { RedisKeyLayout } from './redis-key-layout.ts';
import { RedisNotifications } from './redis-notifications.ts';
import { RedisSharedCounter } from './redis-shared-counter.ts';
import { RedisGrantStore } from './redis-grant-store.ts';
import { RedisTokenCache } from './redis-token-cache.ts';

export interface RedisStoreOptions {
  settings: RedisSettings;
  keyPrefix: string;
  clock: Clock;
  logger: Logger;
  cipher?: CacheCipher;
  commandTimeoutMs?: number;
  /** Delegated credentials are configured: the grant store opens its connection with the others. */
  grants?: boolean;
}

/** Resolves when the client is connected; rejects after timeoutMs. */
function connected(client: Redis | Cluster, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the grant store's Redis connection is not ready after ${timeoutMs} ms`)), timeoutMs);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A new connection with the same settings (and, on a cluster, the same nodes). */
function anotherConnection(client: Redis | Cluster): Redis | Cluster {
  return client instanceof Cluster ? client.duplicate() : client.duplicate();
}

export function createRedisStore(options: RedisStoreOptions): SharedStore {
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
  const clients = createRedisClients(options.settings, { commandTimeoutMs });
  const layout = new RedisKeyLayout(options.keyPrefix);
  const health = new RedisHealth(clients, layout, options.clock, options.logger, commandTimeoutMs);
  const notifications = new RedisNotifications(clients, layout);
  const parts = { client: clients.commands, layout, health, notifications, clock: options.clock, cipher: options.cipher, commandTimeoutMs };
  // The grant store's own connection: WAIT blocks the connection it runs on.
  const cipher = options.cipher;
  const grantClient = options.grants && cipher ? anotherConnection(clients.commands) : undefined;
  // Its failures reach the grant store's callers through its commands (and RedisHealth); not as unhandled 'error' events.
  grantClient?.on('error', () => undefined);
  return {
    tokens: new RedisTokenCache(parts),
    counter: new RedisSharedCounter(parts),
    grants: grantClient && cipher && new RedisGrantStore({ client: grantClient, layout, health, cipher, logger: options.logger }),
    health,
    async ready(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      await health.usable(timeoutMs);
      await notifications.ready(Math.max(1, deadline - Date.now()));
      if (grantClient && grantClient.status !== 'ready') await connected(grantClient, Math.max(1, deadline - Date.now()));
    },
    async close() {
      health.close();
      await notifications.close();
      // QUIT on a connected client lets replies in flight arrive; one never connected (or a cluster
      // still looking for its nodes) would queue it for ever, so it is only disconnected.
      const quit = (client: typeof clients.commands) => (client.status === 'ready' ? client.quit().then(() => undefined, () => undefined) : undefined);
      const connections = [clients.commands, clients.subscriber, ...(grantClient ? [grantClient] : [])];
      await Promise.race([Promise.all(connections.map(quit)), new Promise((r) => setTimeout(r, 2000).unref())]);
      for (const connection of connections) connection.disconnect();
    },
  };
}
