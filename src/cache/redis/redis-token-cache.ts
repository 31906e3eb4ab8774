// The shared level in Redis, the same on every topology: tokens with their own expiry, a lock per
// target released only by its owner, failure records and per-credential backoff. A target's keys
// share one hash tag (redis-key-layout.ts), so each MULTI and script stays in one cluster slot; the
// result notification is published inside the same MULTI or script (redis-notifications.ts).
// Commands fail fast while Redis is away (no offline queue) or slow (not sent at all) so the broker
// serves from memory instead of waiting; RedisHealth decides which.
import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Clock } from '../../kernel/clock.ts';
import type { CacheCipher } from '../cache-cipher.ts';
import type { CacheLock, CachedToken, RecordedFailure, TokenCache } from '../token-cache.ts';
import type { RedisHealth } from './redis-health.ts';
import type { RedisKeyLayout } from './redis-key-layout.ts';
import type { RedisNotifications } from './redis-notifications.ts';

// Release only if we still own the lock, then announce it (waiters may retry or read the result).
// KEYS[1] lock; ARGV owner, message, PUBLISH or SPUBLISH, channel. A sharded channel carries the
// lock's hash tag, so the script's keys and channel share a slot.
const RELEASE_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]); redis.call(ARGV[3], ARGV[4], ARGV[2]); return 1 end return 0`;

export interface RedisTokenCacheParts {
  client: Redis | Cluster;
  layout: RedisKeyLayout;
  health: RedisHealth;
  notifications: RedisNotifications;
  clock: Clock;
  cipher?: CacheCipher;
  /** How long a command may take (and so the longest wait for the notification set-up just after connecting). */
  commandTimeoutMs: number;
}

export class RedisTokenCache implements TokenCache {
  private readonly client: Redis | Cluster;
  private readonly layout: RedisKeyLayout;
  private readonly health: RedisHealth;

  constructor(private readonly parts: RedisTokenCacheParts) {
    ({ client: this.client, layout: this.layout, health: this.health } = parts);
  }

  private encode(redisKey: string, value: unknown): string {
    const json = JSON.stringify(value);
    return this.parts.cipher ? this.parts.cipher.encrypt(json, redisKey) : json;
  }

  /** With encryption on, a plaintext value (written before encryption was enabled, or by someone else) is ignored rather than trusted. */
  private decode<T>(redisKey: string, value: string | null): T | undefined {
    if (!value) return undefined;
    const json = this.parts.cipher ? this.parts.cipher.decrypt(value, redisKey) : value.startsWith('{') ? value : undefined;
    if (!json) return undefined;
    try {
      return JSON.parse(json) as T;
    } catch {
      return undefined;
    }
  }

  async get(key: string): Promise<CachedToken | undefined> {
    const redisKey = this.layout.token(key);
    const token = this.decode<CachedToken>(redisKey, await this.health.run('GET', 'read', () => this.client.get(redisKey)));
    return token && typeof token.accessToken === 'string' && token.expiresAt > this.parts.clock.now() ? token : undefined;
  }

  async set(key: string, token: CachedToken): Promise<void> {
    const ttl = Math.floor(token.expiresAt - this.parts.clock.now());
    if (ttl <= 0) return;
    const redisKey = this.layout.token(key);
    await this.health.run('SET', 'write', async () => {
      const { command, channel } = await this.publicationFor(key);
      return this.client.multi().set(redisKey, this.encode(redisKey, token), 'PX', ttl).del(this.layout.failure(key))[command](channel, key).exec();
    });
  }

  async setIfAbsent(key: string, token: CachedToken): Promise<void> {
    const ttl = Math.floor(token.expiresAt - this.parts.clock.now());
    if (ttl <= 0) return;
    const redisKey = this.layout.token(key);
    await this.health.run('SET NX', 'write', () => this.client.set(redisKey, this.encode(redisKey, token), 'PX', ttl, 'NX'));
  }

  async delete(key: string): Promise<void> {
    await this.health.run('DEL', 'write', () => this.client.del(this.layout.token(key)));
  }

  async tryLock(key: string, ttlMs: number): Promise<CacheLock | undefined> {
    const lockKey = this.layout.lock(key);
    const owner = randomUUID();
    const acquired = await this.health.run('lock', 'write', () => this.client.set(lockKey, owner, 'PX', Math.ceil(ttlMs), 'NX'));
    if (acquired !== 'OK') return undefined;
    return {
      // A failed release only delays the others until the lock expires.
      release: () =>
        this.health
          .run('unlock', 'write', async () => {
            const { command, channel } = await this.publicationFor(key);
            return this.client.eval(RELEASE_SCRIPT, 1, lockKey, owner, key, command, channel);
          })
          .then(() => undefined, () => undefined),
    };
  }

  private publicationFor(key: string) {
    return this.parts.notifications.publicationFor(key, this.parts.commandTimeoutMs);
  }

  waitForUpdate(key: string, timeoutMs: number): Promise<void> {
    return this.parts.notifications.waitForUpdate(key, timeoutMs, async () => {
      // Token and failure share the target's slot: one MGET on a cluster too.
      const [token, failure] = await this.health.run('MGET', 'read', () => this.client.mget(this.layout.token(key), this.layout.failure(key)));
      return !!token || !!failure;
    });
  }

  // Failure records reach callers as problem details; with encryption on they are sealed too, so
  // whoever can write to Redis cannot put words in the broker's mouth.
  async recordFailure(key: string, failure: RecordedFailure, ttlMs: number): Promise<void> {
    const redisKey = this.layout.failure(key);
    await this.health.run('SET failure', 'write', async () => {
      const { command, channel } = await this.publicationFor(key);
      return this.client.multi().set(redisKey, this.encode(redisKey, failure), 'PX', Math.max(1, Math.ceil(ttlMs)))[command](channel, key).exec();
    });
  }

  async getFailure(key: string): Promise<RecordedFailure | undefined> {
    const redisKey = this.layout.failure(key);
    return this.decode<RecordedFailure>(redisKey, await this.health.run('GET failure', 'read', () => this.client.get(redisKey)));
  }

  async setBackoff(credentialId: string, untilMs: number): Promise<void> {
    const ttl = Math.ceil(untilMs - this.parts.clock.now());
    if (ttl > 0) await this.health.run('SET backoff', 'write', () => this.client.set(this.layout.backoff(credentialId), String(untilMs), 'PX', ttl));
  }

  async getBackoff(credentialId: string): Promise<number | undefined> {
    const value = await this.health.run('GET backoff', 'read', () => this.client.get(this.layout.backoff(credentialId)));
    const until = Number(value);
    return value && until > this.parts.clock.now() ? until : undefined;
  }
}
