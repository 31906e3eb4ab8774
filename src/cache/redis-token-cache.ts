// The shared level in Redis (ioredis): tokens with their own expiry, a lock per key released only
// by its owner, failure records and per-credential backoff, and a pub/sub channel that wakes the
// replicas waiting on a key. Commands fail fast while Redis is away (no offline queue) so the
// broker serves from memory instead of waiting; ioredis reconnects by itself.
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Clock } from '../core/clock.ts';
import { CacheUnavailable } from '../core/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { SharedCounter } from '../callers/rate-limiter.ts';
import type { CacheCipher } from './cache-cipher.ts';
import type { CacheLock, CacheStatus, CachedToken, RecordedFailure, TokenCache } from './token-cache.ts';

export interface RedisTokenCacheOptions {
  url: string;
  keyPrefix: string;
  clock: Clock;
  logger: Logger;
  cipher?: CacheCipher;
  /** PEM CA for rediss:// with a private CA. */
  tlsCa?: Buffer;
  commandTimeoutMs?: number;
}

// Release only if we still own the lock, then wake the waiters (they may retry or read the result).
const RELEASE_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]); redis.call('publish', KEYS[2], ARGV[2]); return 1 end return 0`;

/** host:port only: the URL may carry a password. */
export function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(unparseable redis URL)';
  }
}

export class RedisTokenCache implements TokenCache, SharedCounter {
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly channel: string;
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly recoveredListeners: (() => void)[] = [];
  private state: 'ok' | 'degraded' = 'degraded';
  private lastError = 'connecting';
  private everReady = false;
  private closed = false;

  constructor(private readonly options: RedisTokenCacheOptions) {
    const common: RedisOptions = {
      connectTimeout: 2000,
      commandTimeout: options.commandTimeoutMs ?? 1000,
      maxRetriesPerRequest: 1,
      // Reconnect forever, backing off to 2 s: Redis coming back must need no restart of ours.
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      ...(options.tlsCa ? { tls: { ca: options.tlsCa } } : {}),
    };
    this.channel = `${options.keyPrefix}updates`;
    this.client = new Redis(options.url, { ...common, enableOfflineQueue: false });
    // The subscriber (re)subscribes on every connect itself: ioredis' own autoResubscribe leaves its
    // SUBSCRIBE promise unhandled, and a connection lost in that moment would be an unhandled rejection.
    this.subscriber = new Redis(options.url, { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: false });
    this.subscriber.on('ready', () => {
      this.subscriber.subscribe(this.channel).catch(() => undefined);
    });
    this.subscriber.on('message', (_channel: string, key: string) => this.wake(key));
    this.subscriber.on('error', () => undefined);
    this.client.on('ready', () => {
      const recovered = this.everReady && this.state === 'degraded';
      this.state = 'ok';
      this.everReady = true;
      this.options.logger.info({ redis: describeRedisUrl(options.url) }, recovered ? 'redis reachable again' : 'redis connected');
      if (recovered) for (const listener of this.recoveredListeners) listener();
    });
    this.client.on('error', (err: Error) => {
      this.lastError = err.message;
    });
    this.client.on('close', () => {
      if (this.state === 'ok' && !this.closed) {
        this.options.logger.warn({ redis: describeRedisUrl(options.url), error: this.lastError }, 'redis unreachable: serving from memory');
      }
      this.state = 'degraded';
    });
  }

  /** Resolves once connected, or rejects after timeoutMs (startup and tests). */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.client.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CacheUnavailable(`redis not reachable within ${timeoutMs} ms: ${this.lastError}`)), timeoutMs);
      this.client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private key(kind: string, key: string): string {
    return `${this.options.keyPrefix}${kind}:${key}`;
  }

  private async run<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw new CacheUnavailable(`redis ${what} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  private encode(redisKey: string, token: CachedToken): string {
    const json = JSON.stringify(token);
    return this.options.cipher ? this.options.cipher.encrypt(json, redisKey) : json;
  }

  private decode(redisKey: string, value: string | null): CachedToken | undefined {
    if (!value) return undefined;
    // With encryption on, a plaintext value (written before encryption was enabled, or by someone
    // else) is ignored rather than trusted.
    const json = this.options.cipher ? this.options.cipher.decrypt(value, redisKey) : value.startsWith('{') ? value : undefined;
    if (!json) return undefined;
    try {
      const token = JSON.parse(json) as CachedToken;
      return typeof token.accessToken === 'string' && token.expiresAt > this.options.clock.now() ? token : undefined;
    } catch {
      return undefined;
    }
  }

  get(key: string): Promise<CachedToken | undefined> {
    const redisKey = this.key('token', key);
    return this.run('GET', async () => this.decode(redisKey, await this.client.get(redisKey)));
  }

  async set(key: string, token: CachedToken): Promise<void> {
    const ttl = Math.floor(token.expiresAt - this.options.clock.now());
    if (ttl <= 0) return;
    const redisKey = this.key('token', key);
    await this.run('SET', () =>
      this.client.multi().set(redisKey, this.encode(redisKey, token), 'PX', ttl).del(this.key('failure', key)).publish(this.channel, key).exec(),
    );
  }

  async setIfAbsent(key: string, token: CachedToken): Promise<void> {
    const ttl = Math.floor(token.expiresAt - this.options.clock.now());
    if (ttl <= 0) return;
    const redisKey = this.key('token', key);
    await this.run('SET NX', () => this.client.set(redisKey, this.encode(redisKey, token), 'PX', ttl, 'NX'));
  }

  async delete(key: string): Promise<void> {
    await this.run('DEL', () => this.client.del(this.key('token', key)));
  }

  async tryLock(key: string, ttlMs: number): Promise<CacheLock | undefined> {
    const lockKey = this.key('lock', key);
    const owner = randomUUID();
    const acquired = await this.run('lock', () => this.client.set(lockKey, owner, 'PX', Math.ceil(ttlMs), 'NX'));
    if (acquired !== 'OK') return undefined;
    return {
      // A failed release only delays the others until the lock expires.
      release: () => this.client.eval(RELEASE_SCRIPT, 2, lockKey, this.channel, owner, key).then(() => undefined, () => undefined),
    };
  }

  waitForUpdate(key: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      set.add(done);
    });
  }

  private wake(key: string): void {
    for (const done of [...(this.waiters.get(key) ?? [])]) done();
  }

  // Failure records reach callers as problem details; with encryption on they are sealed too, so
  // whoever can write to Redis cannot put words in the broker's mouth.
  async recordFailure(key: string, failure: RecordedFailure, ttlMs: number): Promise<void> {
    const redisKey = this.key('failure', key);
    const json = JSON.stringify(failure);
    const value = this.options.cipher ? this.options.cipher.encrypt(json, redisKey) : json;
    await this.run('SET failure', () => this.client.multi().set(redisKey, value, 'PX', Math.max(1, Math.ceil(ttlMs))).publish(this.channel, key).exec());
  }

  async getFailure(key: string): Promise<RecordedFailure | undefined> {
    const redisKey = this.key('failure', key);
    const value = await this.run('GET failure', () => this.client.get(redisKey));
    if (!value) return undefined;
    const json = this.options.cipher ? this.options.cipher.decrypt(value, redisKey) : value;
    try {
      return json ? (JSON.parse(json) as RecordedFailure) : undefined;
    } catch {
      return undefined;
    }
  }

  async setBackoff(credentialId: string, untilMs: number): Promise<void> {
    const ttl = Math.ceil(untilMs - this.options.clock.now());
    if (ttl > 0) await this.run('SET backoff', () => this.client.set(this.key('backoff', credentialId), String(untilMs), 'PX', ttl));
  }

  async getBackoff(credentialId: string): Promise<number | undefined> {
    const value = await this.run('GET backoff', () => this.client.get(this.key('backoff', credentialId)));
    const until = Number(value);
    return value && until > this.options.clock.now() ? until : undefined;
  }

  /** A counter shared by all replicas (rate limits): INCRBY with an expiry. */
  async add(name: string, delta: number, ttlMs: number): Promise<number> {
    const key = this.key('counter', name);
    const results = await this.run('INCRBY', () => this.client.multi().incrby(key, delta).pexpire(key, ttlMs).exec());
    return Number(results?.[0]?.[1] ?? 0);
  }

  status(): CacheStatus {
    return this.state === 'ok' ? { kind: 'redis', state: 'ok' } : { kind: 'redis', state: 'degraded', detail: `redis unreachable: ${this.lastError}` };
  }

  onRecovered(listener: () => void): void {
    this.recoveredListeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const key of [...this.waiters.keys()]) this.wake(key);
    await Promise.allSettled([this.client.quit(), this.subscriber.quit()]);
    this.client.disconnect();
    this.subscriber.disconnect();
  }
}
