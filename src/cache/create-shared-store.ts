// The shared level the configuration asks for: in memory (one replica), or Redis in one of its
// topologies. The composition root gets a SharedStore and never asks which it is.
import { resolve } from 'node:path';
import type { Clock } from '../kernel/clock.ts';
import type { Logger } from '../observability/logger.ts';
import { CacheCipher } from './cache-cipher.ts';
import { MemoryGrantStore } from './memory-grant-store.ts';
import { memoryStore } from './memory-token-cache.ts';
import { redisSettingsFrom, describeRedis, type RedisCacheSection } from './redis/redis-clients.ts';
import { createRedisStore } from './redis/redis-store.ts';
import type { SharedStore } from './token-cache.ts';

export interface CacheSection extends RedisCacheSection {
  keyPrefix: string;
  encryptionKeyFile?: string;
  stateFile?: string;
}

/** `grants`: delegated credentials are configured, so the store keeps grants too. */
export function createSharedStore(cache: CacheSection, baseDir: string, clock: Clock, logger: Logger, grants = false): SharedStore {
  const settings = redisSettingsFrom(cache, baseDir);
  const cipher = cache.encryptionKeyFile ? CacheCipher.fromKeyFile(resolve(baseDir, cache.encryptionKeyFile)) : undefined;
  if (!settings) {
    const stateFile = cache.stateFile && cipher ? { path: resolve(baseDir, cache.stateFile), cipher, logger } : undefined;
    return memoryStore(clock, new MemoryGrantStore(clock, stateFile));
  }
  logger.info({ redis: describeRedis(settings), topology: settings.topology, encrypted: !!cipher }, 'using the shared Redis cache');
  return createRedisStore({ settings, keyPrefix: cache.keyPrefix, clock, logger, cipher, grants });
}
