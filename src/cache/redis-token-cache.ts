// The shared level in Redis (ioredis): tokens with their own expiry, a lock per key released only
// by its owner, failure records and per-credential backoff, and a pub/sub channel that wakes the
// replicas waiting on a key. Commands fail fast while Redis is away (no offline queue) or slow (not
// sent at all) so the broker serves from memory instead of waiting; ioredis reconnects by itself.
// Whether Redis is usable is tracked here, from the connection's events, from what commands answer
// and from a health check every second; docs/operations.md ("When Redis misbehaves") describes it.
import { randomUUID } from 'node:crypto';
import { Redis, ReplyError, type RedisOptions } from 'ioredis';
import type { Clock } from '../kernel/clock.ts';
import { CacheUnavailable } from '../kernel/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { CacheCipher } from './cache-cipher.ts';
import type { CacheLock, CacheStatus, CachedToken, RecordedFailure, SharedCounter, TokenCache } from './token-cache.ts';

/** No reply within this is a timeout (ioredis `commandTimeout`): a hung Redis costs a caller this much at most. */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 1000;
/** How often the health check (a SET with expiry under the key prefix: it proves writes work) runs. */
export const REDIS_HEALTH_CHECK_INTERVAL_MS = 1000;
/**
 * Health checks in a row without a reply within the command timeout before Redis counts as slow.
 * One could be a stall of our own event loop (the timer fires before the reply is read).
 */
export const REDIS_SLOW_AFTER_TIMEOUTS = 2;
/** A Redis not connected this long after start is reported even if no error says why. */
export const REDIS_CONNECT_WARNING_MS = 5000;
const HEALTH_KEY_TTL_MS = 60_000;
// Replies that mean our credentials are refused (AUTH failed, or a command sent without it).
const AUTH_REPLY_CODES = new Set(['WRONGPASS', 'NOAUTH']);

/** Why Redis is unusable; `writes failing` carries Redis' error code (OOM, READONLY, MISCONF, NOPERM…). */
export type RedisTrouble = 'unreachable' | 'authentication failed' | 'slow' | `writes failing: ${string}`;

type CommandKind = 'read' | 'write';

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

/**
 * A Redis error reply and its code, the first word (`OOM command not allowed…` → OOM). A MULTI whose
 * commands were refused fails with EXECABORT; what matters is the first refusal behind it.
 */
function describeReply(err: Error & { previousErrors?: Error[] }): { code: string; message: string } {
  const message = err.previousErrors?.[0]?.message ?? err.message;
  return { code: /^[A-Z]+/.exec(message)?.[0] ?? 'ERR', message };
}

/** ioredis rejects with this plain Error when `commandTimeout` passes (https://github.com/redis/ioredis/blob/main/lib/Command.ts, setTimeout). */
function isTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Command timed out';
}

export class RedisTokenCache implements TokenCache, SharedCounter {
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly channel: string;
  private readonly redisUrl: string;
  private readonly commandTimeoutMs: number;
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly recoveredListeners: (() => void)[] = [];
  private readonly usableWaiters = new Set<() => void>();
  /** The subscriber has subscribed at least once: from then on this replica hears result notifications. */
  private subscribed = false;
  private readonly subscribedWaiters = new Set<() => void>();
  /** connecting: never usable yet; unusable: an episode the operator was warned about. */
  private state: 'connecting' | 'ok' | 'unusable' = 'connecting';
  private trouble?: { reason: RedisTrouble; error: string };
  /** The connection's last error, or '' before there was one. */
  private lastError = '';
  private healthCheck?: Promise<void>;
  private readonly healthTimer: NodeJS.Timeout;
  private readonly connectWarningTimer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: RedisTokenCacheOptions) {
    this.redisUrl = describeRedisUrl(options.url);
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
    const common: RedisOptions = {
      connectTimeout: 2000,
      commandTimeout: this.commandTimeoutMs,
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
      this.subscriber.subscribe(this.channel).then(() => {
        this.subscribed = true;
        for (const done of [...this.subscribedWaiters]) done();
      }, () => undefined);
    });
    this.subscriber.on('message', (_channel: string, key: string) => this.wake(key));
    this.subscriber.on('error', () => undefined);
    this.client.on('ready', () => {
      this.lastError = 'connection closed';
      // A new, authenticated connection ends an outage of the connection itself; slow and failing
      // writes are for the health check (below, at once) to clear.
      const reason = this.trouble?.reason;
      if (this.state === 'connecting' || reason === 'unreachable' || reason === 'authentication failed') this.markUsable();
      void this.checkHealth();
    });
    this.client.on('error', (err: Error) => {
      this.lastError = err.message;
      // ioredis reports a refused AUTH (or HELLO … AUTH) as an 'error' event, then reconnects.
      if (err instanceof ReplyError && AUTH_REPLY_CODES.has(describeReply(err).code)) this.markUnusable('authentication failed', err.message);
      else if (this.state !== 'ok' && this.client.status !== 'ready') this.markUnusable('unreachable', err.message);
    });
    this.client.on('close', () => {
      if (this.closed || this.trouble?.reason === 'authentication failed') return;
      this.markUnusable('unreachable', this.lastError);
    });
    this.healthTimer = setInterval(() => void this.checkHealth(), REDIS_HEALTH_CHECK_INTERVAL_MS);
    this.healthTimer.unref();
    // A Redis that accepts the connection but never answers emits no error: say so anyway.
    this.connectWarningTimer = setTimeout(() => {
      if (this.state === 'connecting') this.markUnusable('unreachable', `not connected within ${REDIS_CONNECT_WARNING_MS} ms${this.lastError ? `: ${this.lastError}` : ''}`);
    }, REDIS_CONNECT_WARNING_MS);
    this.connectWarningTimer.unref();
  }

  /** Resolves once Redis is usable, or rejects after timeoutMs (startup and tests). */
  /** Resolves once Redis is usable and this replica hears result notifications (its subscription is in place). */
  async ready(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const waitFor = (isDone: () => boolean, waiters: Set<() => void>, what: () => string) =>
      isDone()
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const done = () => {
              clearTimeout(timer);
              waiters.delete(done);
              resolve();
            };
            const timer = setTimeout(() => {
              waiters.delete(done);
              reject(new CacheUnavailable(what()));
            }, Math.max(0, deadline - Date.now()));
            waiters.add(done);
          });
    await waitFor(() => this.state === 'ok', this.usableWaiters, () => `redis not usable within ${timeoutMs} ms: ${this.trouble?.error ?? (this.lastError || 'not connected')}`);
    await waitFor(() => this.subscribed, this.subscribedWaiters, () => `redis notifications not subscribed within ${timeoutMs} ms`);
  }


  private markUsable(): void {
    if (this.state === 'ok' || this.closed) return;
    const recovered = this.state === 'unusable';
    this.state = 'ok';
    this.trouble = undefined;
    this.options.logger.info({ redis: this.redisUrl }, recovered ? 'redis usable again' : 'redis connected');
    for (const done of [...this.usableWaiters]) done();
    this.usableWaiters.clear();
    if (recovered) for (const listener of this.recoveredListeners) listener();
  }

  /** One warning per episode; while it lasts, only the reason shown in status() follows. */
  private markUnusable(reason: RedisTrouble, error: string): void {
    if (this.closed) return;
    this.trouble = { reason, error };
    if (this.state === 'unusable') return;
    this.state = 'unusable';
    this.options.logger.warn({ redis: this.redisUrl, reason, error }, `redis ${reason}: serving from memory`);
  }

  /** What a failed command says about Redis; connection errors are left to the connection's events. */
  private noteFailure(err: unknown, kind: CommandKind): void {
    if (isTimeout(err)) {
      void this.checkHealth(); // one slow reply is not yet a slow Redis
    } else if (err instanceof ReplyError) {
      const { code, message } = describeReply(err as Error);
      if (AUTH_REPLY_CODES.has(code)) this.markUnusable('authentication failed', message);
      else if (kind === 'write') this.markUnusable(`writes failing: ${code}`, message);
    }
  }

  /** At most one at a time; a Redis that is not even connected is left to the connection's events. */
  private checkHealth(): Promise<void> {
    if (this.closed || this.client.status !== 'ready') return Promise.resolve();
    this.healthCheck ??= this.runHealthCheck().finally(() => (this.healthCheck = undefined));
    return this.healthCheck;
  }

  private async runHealthCheck(): Promise<void> {
    for (let attempt = 1; attempt <= REDIS_SLOW_AFTER_TIMEOUTS; attempt++) {
      try {
        await this.client.set(this.key('health', 'check'), String(this.options.clock.now()), 'PX', HEALTH_KEY_TTL_MS);
        this.markUsable();
        return;
      } catch (err) {
        if (!isTimeout(err)) return this.noteFailure(err, 'write');
      }
    }
    this.markUnusable('slow', `no reply to ${REDIS_SLOW_AFTER_TIMEOUTS} health checks in a row within ${this.commandTimeoutMs} ms`);
  }

  private key(kind: string, key: string): string {
    return `${this.options.keyPrefix}${kind}:${key}`;
  }

  private async run<T>(what: string, kind: CommandKind, op: () => Promise<T>): Promise<T> {
    // A slow Redis gets no commands but the health check's: every one would cost its caller the timeout.
    if (this.trouble?.reason === 'slow') throw new CacheUnavailable(`redis ${what} not sent: redis is slow (${this.trouble.error})`);
    try {
      return await op();
    } catch (err) {
      this.noteFailure(err, kind);
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
    return this.run('GET', 'read', async () => this.decode(redisKey, await this.client.get(redisKey)));
  }

  async set(key: string, token: CachedToken): Promise<void> {
    const ttl = Math.floor(token.expiresAt - this.options.clock.now());
    if (ttl <= 0) return;
    const redisKey = this.key('token', key);
    await this.run('SET', 'write', () =>
      this.client.multi().set(redisKey, this.encode(redisKey, token), 'PX', ttl).del(this.key('failure', key)).publish(this.channel, key).exec(),
    );
  }

  async setIfAbsent(key: string, token: CachedToken): Promise<void> {
    const ttl = Math.floor(token.expiresAt - this.options.clock.now());
    if (ttl <= 0) return;
    const redisKey = this.key('token', key);
    await this.run('SET NX', 'write', () => this.client.set(redisKey, this.encode(redisKey, token), 'PX', ttl, 'NX'));
  }

  async delete(key: string): Promise<void> {
    await this.run('DEL', 'write', () => this.client.del(this.key('token', key)));
  }

  async tryLock(key: string, ttlMs: number): Promise<CacheLock | undefined> {
    const lockKey = this.key('lock', key);
    const owner = randomUUID();
    const acquired = await this.run('lock', 'write', () => this.client.set(lockKey, owner, 'PX', Math.ceil(ttlMs), 'NX'));
    if (acquired !== 'OK') return undefined;
    return {
      // A failed release only delays the others until the lock expires.
      release: () => this.run('unlock', 'write', () => this.client.eval(RELEASE_SCRIPT, 2, lockKey, this.channel, owner, key)).then(() => undefined, () => undefined),
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
    await this.run('SET failure', 'write', () => this.client.multi().set(redisKey, value, 'PX', Math.max(1, Math.ceil(ttlMs))).publish(this.channel, key).exec());
  }

  async getFailure(key: string): Promise<RecordedFailure | undefined> {
    const redisKey = this.key('failure', key);
    const value = await this.run('GET failure', 'read', () => this.client.get(redisKey));
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
    if (ttl > 0) await this.run('SET backoff', 'write', () => this.client.set(this.key('backoff', credentialId), String(untilMs), 'PX', ttl));
  }

  async getBackoff(credentialId: string): Promise<number | undefined> {
    const value = await this.run('GET backoff', 'read', () => this.client.get(this.key('backoff', credentialId)));
    const until = Number(value);
    return value && until > this.options.clock.now() ? until : undefined;
  }

  /** A counter shared by all replicas (rate limits): INCRBY with an expiry. */
  async add(name: string, delta: number, ttlMs: number): Promise<number> {
    const key = this.key('counter', name);
    const results = await this.run('INCRBY', 'write', () => this.client.multi().incrby(key, delta).pexpire(key, ttlMs).exec());
    return Number(results?.[0]?.[1] ?? 0);
  }

  status(): CacheStatus {
    if (this.state === 'ok') return { kind: 'redis', state: 'ok' };
    const detail = this.trouble ? `redis ${this.trouble.reason}: ${this.trouble.error}` : 'redis not connected yet';
    return { kind: 'redis', state: 'degraded', detail };
  }

  onRecovered(listener: () => void): void {
    this.recoveredListeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.healthTimer);
    clearTimeout(this.connectWarningTimer);
    for (const key of [...this.waiters.keys()]) this.wake(key);
    await Promise.allSettled([this.client.quit(), this.subscriber.quit()]);
    this.client.disconnect();
    this.subscriber.disconnect();
  }
}
