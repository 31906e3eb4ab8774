// Per-caller rate limits (token bucket). Decided in memory on every request, so the hot path does no
// I/O; with Redis, each replica also adds its counts to a shared one-second window every 200 ms and
// stops admitting a caller for the rest of the window once the cluster as a whole is over its burst.
import type { Caller } from '../core/caller-directory.ts';
import type { Clock } from '../core/clock.ts';
import { RateLimited } from '../core/errors.ts';

/** Adds to a counter shared by all replicas and returns its new total (Redis INCRBY with expiry). */
export interface SharedCounter {
  add(name: string, delta: number, ttlMs: number): Promise<number>;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
  /** Admitted since the last sync. */
  pending: number;
  blockedUntil: number;
}

const WINDOW_MS = 1000;
const SYNC_MS = 200;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly clock: Clock,
    private readonly shared?: SharedCounter,
  ) {}

  start(): void {
    if (!this.shared || this.timer) return;
    this.timer = setInterval(() => void this.sync(), SYNC_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Admits one request of the caller or throws RateLimited with the time to wait. */
  take(caller: Caller): void {
    const now = this.clock.now();
    const { requestsPerSecond, burst } = caller.rateLimit;
    let bucket = this.buckets.get(caller.id);
    if (!bucket) this.buckets.set(caller.id, (bucket = { tokens: burst, updatedAt: now, pending: 0, blockedUntil: 0 }));
    if (bucket.blockedUntil > now) {
      throw new RateLimited(`caller '${caller.id}' is over its rate limit across the cluster`, Math.ceil((bucket.blockedUntil - now) / 1000));
    }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * requestsPerSecond);
    bucket.updatedAt = now;
    if (bucket.tokens < 1) {
      throw new RateLimited(`caller '${caller.id}' is over its rate limit (${requestsPerSecond}/s, burst ${burst})`, Math.ceil((1 - bucket.tokens) / requestsPerSecond));
    }
    bucket.tokens -= 1;
    bucket.pending += 1;
  }

  private async sync(): Promise<void> {
    const now = this.clock.now();
    const window = Math.floor(now / WINDOW_MS);
    for (const [callerId, bucket] of this.buckets) {
      if (bucket.pending === 0) continue;
      const delta = bucket.pending;
      bucket.pending = 0;
      try {
        const total = await this.shared!.add(`rate:${callerId}:${window}`, delta, WINDOW_MS * 2);
        const limit = this.limitOf(callerId);
        if (limit !== undefined && total > limit) bucket.blockedUntil = (window + 1) * WINDOW_MS;
      } catch {
        // Redis away: each replica still enforces its own bucket.
      }
    }
  }

  private readonly limits = new Map<string, number>();

  /** Remembers the cluster-wide budget per window for a caller (its burst). */
  register(caller: Caller): void {
    this.limits.set(caller.id, Math.max(caller.rateLimit.burst, caller.rateLimit.requestsPerSecond));
  }

  private limitOf(callerId: string): number | undefined {
    return this.limits.get(callerId);
  }
}
