// Per-caller rate limits. Every request is decided in memory (no I/O on the hot path) by a token
// bucket per caller; with Redis, each replica also adds what it admitted to a counter per caller and
// one-second window shared by the cluster every 200 ms, learns the cluster's total from it, and stops
// admitting the caller for the rest of the window once the cluster has used the caller's budget.
// Only callers this replica has seen in this window or the one before are synchronised: an idle
// broker sends Redis nothing for its callers. A caller whose traffic moves to a replica that had not
// seen it lately is decided by that replica's bucket alone until its first sync, at most one burst.
// While the counter cannot be written or read, each replica decides on its own bucket alone: what
// it admitted then is not carried over to be added later, so an outage never turns into a backlog
// that refuses every request (docs/operations.md, "When Redis misbehaves").
import type { Caller } from './caller-directory.ts';
import type { Clock } from '../kernel/clock.ts';
import { RateLimited } from '../kernel/errors.ts';
import type { SharedCounter } from '../cache/token-cache.ts';


interface Bucket {
  caller: Caller;
  tokens: number;
  updatedAt: number;
  /** The shared window the fields below belong to. */
  window: number;
  /** Admitted here in this window and not yet added to the shared counter. */
  pending: number;
  /** The cluster's total for this window at the last sync. */
  clusterUsed: number;
  /** Whether the last sync worked; if not, the cluster's total is unknown and the bucket decides alone. */
  clusterKnown: boolean;
  /** The last window this replica saw a request of the caller in (-1: never). */
  seenWindow: number;
}

const WINDOW_MS = 1000;
const SYNC_MS = 200;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private timer?: NodeJS.Timeout;
  private syncing = false;

  constructor(
    private readonly clock: Clock,
    private readonly shared?: SharedCounter,
  ) {}

  /** Tracks these callers from the start (their buckets exist before their first request). */
  register(callers: readonly Caller[]): void {
    const now = this.clock.now();
    for (const caller of callers) if (!this.buckets.has(caller.id)) this.buckets.set(caller.id, RateLimiter.newBucket(caller, now));
  }

  private static newBucket(caller: Caller, now: number): Bucket {
    return { caller, tokens: caller.rateLimit.burst, updatedAt: now, window: Math.floor(now / WINDOW_MS), pending: 0, clusterUsed: 0, clusterKnown: true, seenWindow: -1 };
  }

  start(): void {
    if (!this.shared || this.timer) return;
    this.timer = setInterval(() => void this.sync(), SYNC_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Budget of a caller per shared window: its burst, or a second's worth of its rate if that is more. */
  private static clusterBudget(caller: Caller): number {
    return Math.max(caller.rateLimit.burst, caller.rateLimit.requestsPerSecond);
  }

  /** Admits one request of the caller or throws RateLimited with the time to wait. */
  take(caller: Caller): void {
    const now = this.clock.now();
    const window = Math.floor(now / WINDOW_MS);
    const { requestsPerSecond, burst } = caller.rateLimit;
    let bucket = this.buckets.get(caller.id);
    if (!bucket) this.buckets.set(caller.id, (bucket = RateLimiter.newBucket(caller, now)));
    RateLimiter.enterWindow(bucket, window);
    bucket.seenWindow = window;
    if (this.shared && bucket.clusterKnown && bucket.clusterUsed + bucket.pending >= RateLimiter.clusterBudget(caller)) {
      throw new RateLimited(`caller '${caller.id}' is over its rate limit across the cluster`, Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - now) / 1000)));
    }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * requestsPerSecond);
    bucket.updatedAt = now;
    if (bucket.tokens < 1) {
      throw new RateLimited(`caller '${caller.id}' is over its rate limit (${requestsPerSecond}/s, burst ${burst})`, Math.max(1, Math.ceil((1 - bucket.tokens) / requestsPerSecond)));
    }
    bucket.tokens -= 1;
    bucket.pending += 1;
  }

  /** A new window starts from nothing: counts of an earlier one, sent or not, never block in it. */
  private static enterWindow(bucket: Bucket, window: number): void {
    if (bucket.window === window) return;
    bucket.window = window;
    bucket.pending = 0;
    bucket.clusterUsed = 0;
  }

  private async sync(): Promise<void> {
    // One at a time: while Redis takes its time, more syncs would only queue up behind this one.
    if (this.syncing) return;
    this.syncing = true;
    try {
      const window = Math.floor(this.clock.now() / WINDOW_MS);
      // Callers not seen lately have nothing to add, and this replica has nothing to decide for them.
      const active = [...this.buckets.values()].filter((bucket) => bucket.seenWindow >= window - 1);
      await Promise.all(active.map((bucket) => this.syncBucket(bucket, window)));
    } finally {
      this.syncing = false;
    }
  }

  private async syncBucket(bucket: Bucket, window: number): Promise<void> {
    RateLimiter.enterWindow(bucket, window);
    const delta = bucket.pending;
    bucket.pending = 0;
    try {
      // INCRBY 0 reads the total: a replica that admitted nothing still learns what the others did.
      const total = await this.shared!.add(`rate:${bucket.caller.id}:${window}`, delta, WINDOW_MS * 2);
      if (bucket.window !== window) return; // the window ended meanwhile: its total no longer matters
      bucket.clusterUsed = total;
      bucket.clusterKnown = true;
    } catch {
      // Redis unusable: the delta is dropped, not kept to be added later (that backlog once refused
      // every request), and until a sync works again the token bucket alone decides.
      bucket.clusterKnown = false;
    }
  }
}
