// The shared level of the token cache: what every replica sees. The in-process level in front of it
// lives in the token service, so a cache hit does no I/O at all.
import type { GrantStore } from './grant-store.ts';

/** A token as the broker keeps it. Times are epoch milliseconds (UTC). */
export interface CachedToken {
  accessToken: string;
  tokenType: string;
  /** When the IdP's stated lifetime ends, counted from when the request was sent. */
  expiresAt: number;
  /** When to renew ahead of expiry: the IdP's refresh_in, else a fraction of the lifetime. */
  refreshAt: number;
  /** When the request that obtained it was sent. */
  obtainedAt: number;
  scope?: string;
}

/** A failed exchange, remembered briefly so other waiters and replicas answer alike without calling the IdP. */
export interface RecordedFailure {
  kind: 'rejected' | 'unavailable';
  message: string;
  retryAfterSeconds?: number;
  idpError?: string;
  hint?: string;
  idp?: { error: string; errorDescription?: string; errorCodes?: number[]; traceId?: string; correlationId?: string; httpStatus: number };
}

export interface CacheLock {
  /** Releases the lock if this holder still owns it (never another holder's). */
  release(): Promise<void>;
}

export interface CacheStatus {
  kind: 'memory' | 'redis';
  /** For Redis: standalone, cluster or sentinel. */
  topology?: 'standalone' | 'cluster' | 'sentinel';
  state: 'ok' | 'degraded';
  detail?: string;
}

/**
 * What the token path needs of the shared level. get/set/delete never return an expired token. The
 * lock, the failure record and the backoff are what make one exchange per cluster: the lock holder
 * exchanges, the others wait for its result (waitForUpdate) or its failure. Every method may throw
 * CacheUnavailable; callers fall back to the in-process level.
 */
export interface TokenCache {
  get(key: string): Promise<CachedToken | undefined>;
  /** Stores the token until it expires and tells waiters on every replica. */
  set(key: string, token: CachedToken): Promise<void>;
  /** Stores the token only if none is there (resync after an outage). */
  setIfAbsent(key: string, token: CachedToken): Promise<void>;
  delete(key: string): Promise<void>;
  /** The lock for one key, or undefined when another holder has it. Expires after ttlMs if never released. */
  tryLock(key: string, ttlMs: number): Promise<CacheLock | undefined>;
  /** Resolves when a token is stored or a failure recorded for the key, or after timeoutMs. */
  waitForUpdate(key: string, timeoutMs: number): Promise<void>;
  recordFailure(key: string, failure: RecordedFailure, ttlMs: number): Promise<void>;
  getFailure(key: string): Promise<RecordedFailure | undefined>;
  /** No exchange for this credential on any replica until the given time (the IdP's Retry-After). */
  setBackoff(credentialId: string, untilMs: number): Promise<void>;
  getBackoff(credentialId: string): Promise<number | undefined>;
}

/** Whether the shared level is usable now (/readyz, metrics), and the moment it comes back. */
export interface CacheHealth {
  status(): CacheStatus;
  /** Called after the shared level comes back from an outage. */
  onRecovered(listener: () => void): void;
}

/** Adds to a counter shared by all replicas and returns its new total (Redis INCRBY with expiry). */
export interface SharedCounter {
  add(name: string, delta: number, ttlMs: number): Promise<number>;
}

/** The shared level as the composition root gets it from createSharedStore: one per broker. */
export interface SharedStore {
  tokens: TokenCache;
  health: CacheHealth;
  /** Counters shared by the replicas (rate limits); absent when there is no shared level beyond this process. */
  counter?: SharedCounter;
  /** Delegated credentials' grants; present wherever they can be kept encrypted (an encryption key, or the in-memory store). */
  grants?: GrantStore;
  /** Resolves once the store is usable and hears notifications; rejects after timeoutMs. */
  ready(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}
