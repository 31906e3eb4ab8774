// The shared level for a single replica: everything in this process. Locks here only order the
// process's own work; the token service already runs one exchange per key at a time.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { MemoryGrantStore } from './memory-grant-store.ts';
import type { GrantStore } from './grant-store.ts';
import type { Clock } from '../kernel/clock.ts';
import type { CacheLock, CachedToken, RecordedFailure, SharedStore, TokenCache } from './token-cache.ts';

const SWEEP_INTERVAL_MS = 60_000;

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

export class MemoryTokenCache implements TokenCache {
  private readonly tokens = new Map<string, CachedToken>();
  private readonly locks = new Map<string, Expiring<string>>();
  private readonly failures = new Map<string, Expiring<RecordedFailure>>();
  private readonly backoffs = new Map<string, number>();
  private readonly updates = new EventEmitter();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly clock: Clock) {
    this.updates.setMaxListeners(0);
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  async get(key: string): Promise<CachedToken | undefined> {
    const entry = this.tokens.get(key);
    if (entry && entry.expiresAt <= this.clock.now()) {
      this.tokens.delete(key);
      return undefined;
    }
    return entry;
  }

  async set(key: string, token: CachedToken): Promise<void> {
    if (token.expiresAt > this.clock.now()) this.tokens.set(key, token);
    this.failures.delete(key);
    this.updates.emit(key);
  }

  async setIfAbsent(key: string, token: CachedToken): Promise<void> {
    if (!(await this.get(key))) await this.set(key, token);
  }

  async delete(key: string): Promise<void> {
    this.tokens.delete(key);
  }

  async tryLock(key: string, ttlMs: number): Promise<CacheLock | undefined> {
    const held = this.locks.get(key);
    if (held && held.expiresAt > this.clock.now()) return undefined;
    const owner = randomUUID();
    this.locks.set(key, { value: owner, expiresAt: this.clock.now() + ttlMs });
    return {
      release: async () => {
        if (this.locks.get(key)?.value === owner) this.locks.delete(key);
        this.updates.emit(key);
      },
    };
  }

  waitForUpdate(key: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.updates.off(key, done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.updates.on(key, done);
    });
  }

  async recordFailure(key: string, failure: RecordedFailure, ttlMs: number): Promise<void> {
    this.failures.set(key, { value: failure, expiresAt: this.clock.now() + ttlMs });
    this.updates.emit(key);
  }

  async getFailure(key: string): Promise<RecordedFailure | undefined> {
    const entry = this.failures.get(key);
    return entry && entry.expiresAt > this.clock.now() ? entry.value : undefined;
  }

  async setBackoff(credentialId: string, untilMs: number): Promise<void> {
    this.backoffs.set(credentialId, Math.max(untilMs, this.backoffs.get(credentialId) ?? 0));
  }

  async getBackoff(credentialId: string): Promise<number | undefined> {
    const until = this.backoffs.get(credentialId);
    return until !== undefined && until > this.clock.now() ? until : undefined;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.tokens.clear();
    this.updates.removeAllListeners();
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [key, entry] of this.tokens) if (entry.expiresAt <= now) this.tokens.delete(key);
    for (const [key, entry] of this.failures) if (entry.expiresAt <= now) this.failures.delete(key);
    for (const [key, entry] of this.locks) if (entry.expiresAt <= now) this.locks.delete(key);
    for (const [key, until] of this.backoffs) if (until <= now) this.backoffs.delete(key);
  }
}

/** The in-process store: always usable, nothing shared (one replica). */
export function memoryStore(clock: Clock, grants: GrantStore = new MemoryGrantStore(clock)): SharedStore {
  const tokens = new MemoryTokenCache(clock);
  return {
    tokens,
    grants,
    health: { status: () => ({ kind: 'memory', state: 'ok' }), onRecovered: () => undefined },
    ready: async () => undefined,
    close: () => tokens.close(),
  };
}
