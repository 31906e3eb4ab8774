import type { Clock } from '../core/clock.ts';
import type { CachedToken, TokenCache } from './token-cache.ts';

const SWEEP_INTERVAL_MS = 60_000;

/** In-process cache: one replica only. Expired entries are dropped on read and by a periodic sweep. */
export class MemoryTokenCache implements TokenCache {
  private readonly entries = new Map<string, CachedToken>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly clock: Clock) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  async get(key: string): Promise<CachedToken | undefined> {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  async set(key: string, token: CachedToken): Promise<void> {
    if (token.expiresAt > this.clock.now()) this.entries.set(key, token);
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}
