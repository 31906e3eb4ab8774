// The token path (docs/design.md §6.2 and §6.3):
// - an in-process level in front of the shared cache, so a hit does no I/O;
// - one exchange per key per process (in-flight map) and per cluster (a lock in the shared cache;
//   the other replicas wait for the holder's result or failure instead of calling the IdP);
// - refresh-ahead in the background, by one replica, while callers keep the current token;
// - bounded retries with jitter, the IdP's Retry-After honoured cluster-wide, a circuit breaker;
// - a still-valid token keeps being served while the IdP fails; an expired one never is.
import type { CacheHealth, CachedToken, CacheLock, RecordedFailure, TokenCache } from '../cache/token-cache.ts';
import type { CredentialConfig } from '../config/schema.ts';
import type { ClientAuthentication } from '../client-auth/client-authentication.ts';
import type { IdpKind } from '../idps/idp-kind.ts';
import type { Logger } from '../observability/logger.ts';
import type { IssuedToken, TokenProvider } from '../idps/token-provider.ts';
import { credentialFingerprint, tokenCacheKey } from './cache-key.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import type { Clock } from '../kernel/clock.ts';
import { BrokerError, CredentialUnavailable, IdpRejected, IdpUnavailable, SignInRequired, UnknownCredential } from '../kernel/errors.ts';

export type CacheOutcome = 'hit' | 'miss' | 'refreshed';

/** Everything the broker holds for one configured credential. */
export interface CredentialRuntime {
  config: CredentialConfig;
  /** What the IdP of this credential wants (scopes, cache identity, which refusals are about the client's credential). */
  idp: IdpKind<CredentialConfig>;
  /** How the credential proves itself to its IdP (certificate, client secret, federated token). */
  auth: ClientAuthentication;
  provider: TokenProvider;
  /** Delegated credentials: the grant a person's sign-in left. */
  grant?: {
    /** Which sign-in, and whether it is usable: part of the cache key, so a new sign-in or an ended grant never gets tokens cached before it. */
    cacheIdentity(): string;
    /** What diagnostics show: state, who signed in, scopes, last refresh; never a token. */
    describe(): Record<string, unknown>;
    /** Who signed in (the ID token's sub), for the audit record of each token served. */
    subject(): string | undefined;
  };
}

export interface ServedToken extends CachedToken {
  credentialId: string;
  /** The normalised scope the token was requested for. */
  requestedScope: string;
  cacheOutcome: CacheOutcome;
  /** Served while the IdP fails, with less life left than asked for. */
  stale: boolean;
  /** Obtained by another request's exchange (in this process or on another replica) that this one waited for. */
  coalesced: boolean;
}

export interface TokenQuery {
  credentialId: string;
  /** Already normalised and allowed. */
  scope: string;
  minTtlSeconds: number;
  /** The caller named min_ttl_seconds itself: then a token with less life is never served, even while the IdP fails. */
  minTtlExplicit?: boolean;
}

/** What the token service reports as it works (metrics); every method optional to implement. */
export interface TokenServiceObserver {
  exchanged?(credentialId: string, provider: string, seconds: number, result: 'success' | 'rejected' | 'unavailable', code?: string): void;
  lockWaited?(credentialId: string): void;
  refreshedAhead?(credentialId: string, result: 'success' | 'failure' | 'adopted'): void;
}

export interface TokenServiceOptions {
  refreshAheadRatio: number;
  keepWarmSeconds: number;
  /** How often the background refresher looks at the targets (default 250 ms). */
  tickMs?: number;
  observer?: TokenServiceObserver;
}

/**
 * Lifetimes (docs/operations.md, "Misbehaving identity providers"): the IdP's expires_in (checked by
 * the provider: at least 1 s), never past the access token's own `exp`, never more than this cap.
 * RFC 6749 §5.1 makes expires_in RECOMMENDED: without it, a JWT's `exp` decides, else the fallback.
 */
export const MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600;
export const FALLBACK_LIFETIME_SECONDS = 300;
/**
 * At most one exchange per target per interval while a valid token is held. A request whose
 * min_ttl_seconds that token does not meet, within this interval of its exchange, gets it anyway:
 * a new exchange would give at most this much more life, and a min_ttl_seconds above what the IdP
 * issues (expires_in 0-ish, or simply shorter than asked) would otherwise make one exchange per
 * request. With nothing valid held, the exchange is made: the last token's life (at least 1 s)
 * spaced it already.
 */
export const MIN_EXCHANGE_INTERVAL_MS = 5_000;

/** How long waiters and other replicas reuse the outcome of a failed exchange. */
const FAILURE_RECORD_MS = 2_000;
const WAIT_POLL_MS = 250;
const REFRESH_RECHECK_MS = 1_000;
const MAX_REFRESH_BACKOFF_MS = 30_000;
const STALE_WARNING_INTERVAL_MS = 30_000;

interface Target {
  key: string;
  runtime: CredentialRuntime;
  scope: string;
  lastUsedAt: number;
  nextRefreshAt: number;
  refreshFailures: number;
  refreshing: boolean;
  lastStaleWarningAt: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isIdpFailure(err: unknown): err is IdpRejected | IdpUnavailable {
  return err instanceof IdpRejected || err instanceof IdpUnavailable;
}

function failureOf(err: IdpRejected | IdpUnavailable): RecordedFailure {
  return err instanceof IdpRejected
    ? { kind: 'rejected', message: err.message, idpError: err.idpError, hint: err.hint, idp: err.idp }
    : { kind: 'unavailable', message: err.message, retryAfterSeconds: err.retryAfterSeconds };
}

function errorOf(failure: RecordedFailure): IdpRejected | IdpUnavailable {
  return failure.kind === 'rejected' && failure.idp
    ? new IdpRejected(failure.message, failure.idp, failure.hint ?? '', failure.idpError ?? failure.idp.error)
    : new IdpUnavailable(failure.message, failure.retryAfterSeconds ?? 5);
}

/** A refusal of the client's credential, with the fix its client authentication knows (ClientAuthentication.rejectionHint). */
function withClientAuthHint(runtime: CredentialRuntime, err: unknown): unknown {
  if (!(err instanceof IdpRejected) || !runtime.idp.refusedClientCredential(err)) return err;
  const hint = runtime.auth.rejectionHint?.(err);
  return hint ? new IdpRejected(err.message, err.idp, hint, err.idpError) : err;
}

export class TokenService {
  /** The in-process level: read on every request, never waited on. */
  private readonly local = new Map<string, CachedToken>();
  private readonly targets = new Map<string, Target>();
  private readonly inflight = new Map<string, Promise<{ token: CachedToken; waited: boolean }>>();
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly localBackoff = new Map<string, number>();
  private readonly fingerprints = new Map<string, { identity: string; value: string }>();
  private readonly refreshes = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private readonly cache: TokenCache;
  private readonly health: CacheHealth;

  constructor(
    private readonly credentials: ReadonlyMap<string, CredentialRuntime>,
    store: { tokens: TokenCache; health: CacheHealth },
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: TokenServiceOptions = { refreshAheadRatio: 0.5, keepWarmSeconds: 3600 },
  ) {
    this.cache = store.tokens;
    this.health = store.health;
    this.health.onRecovered(() => void this.resync());
  }

  /** Starts the background refresher. */
  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.options.tickMs ?? 250);
    this.timer.unref();
  }

  /** Stops refreshing and lets refreshes already running finish. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.refreshes, ...this.inflight.values()]);
  }

  credential(id: string): CredentialRuntime {
    const runtime = this.credentials.get(id);
    if (!runtime) throw new UnknownCredential(id);
    return runtime;
  }

  listCredentials(): CredentialRuntime[] {
    return [...this.credentials.values()];
  }

  cacheStatus() {
    return this.health.status();
  }

  /** Least remaining lifetime of the tokens this replica holds, per credential (metrics). */
  tokenRemaining(): { credentialId: string; remainingMs: number }[] {
    const now = this.clock.now();
    const least = new Map<string, number>();
    for (const [key, token] of this.local) {
      const id = this.targets.get(key)?.runtime.config.id;
      if (!id || token.expiresAt <= now) continue;
      least.set(id, Math.min(least.get(id) ?? Infinity, token.expiresAt - now));
    }
    return [...least].map(([credentialId, remainingMs]) => ({ credentialId, remainingMs }));
  }

  cacheKey(runtime: CredentialRuntime, scope: string): string {
    const identity = runtime.grant ? `${runtime.auth.identity()}|${runtime.grant.cacheIdentity()}` : runtime.auth.identity();
    let fp = this.fingerprints.get(runtime.config.id);
    if (fp?.identity !== identity) {
      fp = { identity, value: credentialFingerprint(runtime.idp.cacheIdentity(runtime.config), identity) };
      this.fingerprints.set(runtime.config.id, fp);
    }
    return tokenCacheKey(runtime.config.id, scope, fp.value);
  }

  async getToken(query: TokenQuery): Promise<ServedToken> {
    const runtime = this.credential(query.credentialId);
    const key = this.cacheKey(runtime, query.scope);
    const now = this.clock.now();
    const target = this.track(key, runtime, query.scope, now);
    const minTtlMs = query.minTtlSeconds * 1000;
    const local = this.local.get(key);
    if (local && local.expiresAt > now && local.expiresAt - now >= minTtlMs) {
      this.maybeRefreshAhead(target, local, now);
      return this.served(local, query, 'hit');
    }
    return this.slowPath(target, query, minTtlMs, local);
  }

  /** One exchange, bypassing every cache (diagnostic probe). The token is not stored. */
  async exchangeUncached(credentialId: string, scope: string): Promise<CachedToken> {
    const runtime = this.credential(credentialId);
    const requestedAt = this.clock.now();
    const issued = await runtime.provider.acquire({ scope }).catch((err: unknown) => {
      throw withClientAuthHint(runtime, err);
    });
    return this.toCached(issued, requestedAt);
  }

  private track(key: string, runtime: CredentialRuntime, scope: string, now: number): Target {
    let target = this.targets.get(key);
    if (!target) {
      target = { key, runtime, scope, lastUsedAt: now, nextRefreshAt: 0, refreshFailures: 0, refreshing: false, lastStaleWarningAt: 0 };
      this.targets.set(key, target);
    }
    target.lastUsedAt = now;
    return target;
  }

  private async slowPath(target: Target, query: TokenQuery, minTtlMs: number, local: CachedToken | undefined): Promise<ServedToken> {
    const shared = await this.sharedGet(target.key);
    const now = this.clock.now();
    if (shared && shared.expiresAt > now && shared.expiresAt - now >= minTtlMs) {
      this.local.set(target.key, shared);
      this.maybeRefreshAhead(target, shared, now);
      return this.served(shared, query, 'hit');
    }
    const stale = [local, shared].filter((t): t is CachedToken => !!t && t.expiresAt > now).sort((a, b) => b.expiresAt - a.expiresAt)[0];
    if (stale && now - stale.obtainedAt < MIN_EXCHANGE_INTERVAL_MS && !this.inflight.has(target.key)) {
      // Exchanged moments ago (by any replica: obtainedAt travels with the token) and still valid,
      // only shorter than asked: served as it is (expires_in says so) rather than exchanging again.
      this.adopt(target.key, stale);
      return this.served(stale, query, 'hit');
    }
    try {
      const { token, coalesced } = await this.obtain(target, minTtlMs, stale);
      if (token.expiresAt <= this.clock.now()) {
        // An IdP that answers expires_in 0 (or a clock jump) must not make us hand out a dead token.
        throw new IdpUnavailable('the identity provider issued a token that is already expired', 5);
      }
      if (token.expiresAt - token.obtainedAt < minTtlMs && token.obtainedAt >= now - 1000) {
        this.logger.warn(
          { credentialId: query.credentialId, scope: query.scope, minTtlSeconds: query.minTtlSeconds, lifetimeSeconds: Math.floor((token.expiresAt - token.obtainedAt) / 1000) },
          `min_ttl_seconds exceeds the lifetime the identity provider gives: such requests get the token of the last exchange, and exchange again at most every ${MIN_EXCHANGE_INTERVAL_MS / 1000} s`,
        );
      }
      return { ...this.served(token, query, stale ? 'refreshed' : 'miss'), coalesced };
    } catch (err) {
      if (!query.minTtlExplicit && isIdpFailure(err)) {
        // Right after a certificate rotation the credential has a new cache key; the tokens obtained
        // with the previous certificate are just as valid for the same identity while the IdP fails.
        const fallback = stale ?? (await this.previousIdentityToken(target.runtime, target.scope));
        if (fallback && fallback.expiresAt > this.clock.now()) {
          this.warnStale(target, err, fallback);
          return { ...this.served(fallback, query, 'hit'), stale: true };
        }
      }
      throw err;
    }
  }

  private async previousIdentityToken(runtime: CredentialRuntime, scope: string): Promise<CachedToken | undefined> {
    const previous = runtime.auth.previousIdentity();
    if (previous === undefined) return undefined;
    const key = tokenCacheKey(runtime.config.id, scope, credentialFingerprint(runtime.idp.cacheIdentity(runtime.config), previous));
    return this.local.get(key) ?? (await this.sharedGet(key));
  }

  private warnStale(target: Target, err: BrokerError, stale: CachedToken): void {
    const now = this.clock.now();
    if (now - target.lastStaleWarningAt < STALE_WARNING_INTERVAL_MS) return;
    target.lastStaleWarningAt = now;
    this.logger.warn(
      { credentialId: target.runtime.config.id, scope: target.scope, code: err.code, error: err.message, expiresInSeconds: Math.floor((stale.expiresAt - now) / 1000) },
      'identity provider failing: serving the still-valid token',
    );
  }

  /** One exchange per key per process; concurrent requests share it. */
  private async obtain(target: Target, minTtlMs: number, stale: CachedToken | undefined): Promise<{ token: CachedToken; coalesced: boolean }> {
    const joined = this.inflight.get(target.key);
    if (joined) {
      this.options.observer?.lockWaited?.(target.runtime.config.id);
      return { token: (await joined).token, coalesced: true };
    }
    const pending = this.obtainAcrossCluster(target, minTtlMs, stale).finally(() => this.inflight.delete(target.key));
    this.inflight.set(target.key, pending);
    const { token, waited } = await pending;
    return { token, coalesced: waited };
  }

  /** One exchange per key per cluster: the lock holder exchanges; the others wait for its outcome. */
  private async obtainAcrossCluster(target: Target, minTtlMs: number, stale: CachedToken | undefined): Promise<{ token: CachedToken; waited: boolean }> {
    const { runtime, key } = target;
    const lockTtlMs = this.lockTtlMs(runtime);
    const deadline = this.clock.now() + lockTtlMs + 1000;
    // A token newer than the one we had, or with enough life left, is a result we can use.
    const usable = (t: CachedToken | undefined): t is CachedToken =>
      !!t && t.expiresAt > this.clock.now() && (t.expiresAt - this.clock.now() >= minTtlMs || t.obtainedAt > (stale?.obtainedAt ?? 0));
    let waited = false;
    while (this.clock.now() < deadline) {
      await this.assertMayCallIdp(runtime);
      const lock = await this.lock(key, lockTtlMs);
      if (lock) {
        try {
          const shared = await this.sharedGet(key);
          if (usable(shared)) return { token: this.adopt(key, shared), waited };
          return { token: await this.exchangeAndStore(target), waited };
        } catch (err) {
          if (isIdpFailure(err)) await this.recordFailure(runtime, key, err);
          throw err;
        } finally {
          await lock.release();
        }
      }
      if (waited) {
        const failure = await this.cache.getFailure(key).catch(() => undefined);
        if (failure) throw errorOf(failure);
      }
      if (!waited) this.options.observer?.lockWaited?.(runtime.config.id);
      await this.cache.waitForUpdate(key, Math.min(WAIT_POLL_MS, Math.max(1, deadline - this.clock.now())));
      waited = true;
      const shared = await this.sharedGet(key);
      if (usable(shared)) return { token: this.adopt(key, shared), waited };
    }
    throw new IdpUnavailable('timed out waiting for another replica to obtain the token', 1);
  }

  private lockTtlMs(runtime: CredentialRuntime): number {
    // Long enough for every attempt to time out, plus the pauses between them.
    return runtime.config.timeoutMs * (runtime.config.retries + 1) + 2_000 * runtime.config.retries + 2_000;
  }

  /** The shared lock, or a stand-in that only this process knows when the shared cache is down. */
  private async lock(key: string, ttlMs: number): Promise<CacheLock | undefined> {
    try {
      return await this.cache.tryLock(key, ttlMs);
    } catch {
      return { release: async () => undefined };
    }
  }

  private async sharedGet(key: string): Promise<CachedToken | undefined> {
    try {
      return await this.cache.get(key);
    } catch {
      return undefined;
    }
  }

  private adopt(key: string, token: CachedToken): CachedToken {
    const local = this.local.get(key);
    if (!local || local.obtainedAt <= token.obtainedAt) this.local.set(key, token);
    return token;
  }

  /** Throws IdpUnavailable while the IdP asked us to wait (any replica heard it) or the breaker is open. */
  private async assertMayCallIdp(runtime: CredentialRuntime): Promise<void> {
    const id = runtime.config.id;
    const now = this.clock.now();
    const shared = await this.cache.getBackoff(id).catch(() => undefined);
    const until = Math.max(shared ?? 0, this.localBackoff.get(id) ?? 0);
    if (until > now) {
      throw new IdpUnavailable(`the identity provider asked to wait (Retry-After); no request before ${new Date(until).toISOString()}`, Math.ceil((until - now) / 1000), {
        fromIdp: true,
      });
    }
    const blockedMs = this.breaker(id).blockedForMs();
    if (blockedMs > 0) {
      throw new IdpUnavailable('the identity provider failed repeatedly; calls are paused (circuit open)', Math.ceil(blockedMs / 1000));
    }
  }

  private breaker(credentialId: string): CircuitBreaker {
    let breaker = this.breakers.get(credentialId);
    if (!breaker) this.breakers.set(credentialId, (breaker = new CircuitBreaker(this.clock)));
    return breaker;
  }

  private async recordFailure(runtime: CredentialRuntime, key: string, err: IdpRejected | IdpUnavailable): Promise<void> {
    const ttlMs = err instanceof IdpUnavailable ? Math.min(Math.max(err.retryAfterSeconds * 1000, FAILURE_RECORD_MS), 30_000) : FAILURE_RECORD_MS;
    await this.cache.recordFailure(key, failureOf(err), ttlMs).catch(() => undefined);
    if (err instanceof IdpUnavailable && err.retryAfterFromIdp) {
      const until = this.clock.now() + err.retryAfterSeconds * 1000;
      this.localBackoff.set(runtime.config.id, until);
      await this.cache.setBackoff(runtime.config.id, until).catch(() => undefined);
    }
  }

  private async exchangeAndStore(target: Target): Promise<CachedToken> {
    const token = await this.exchange(target.runtime, target.scope);
    this.local.set(target.key, token);
    await this.cache.set(target.key, token).catch(() => undefined);
    return token;
  }

  /** One exchange with the IdP: bounded retries with full jitter on network errors and 5xx. */
  private async exchange(runtime: CredentialRuntime, scope: string): Promise<CachedToken> {
    const started = this.clock.now();
    const observe = (result: 'success' | 'rejected' | 'unavailable', code?: string) =>
      this.options.observer?.exchanged?.(runtime.config.id, runtime.config.provider, (this.clock.now() - started) / 1000, result, code);
    try {
      const token = await this.exchangeWithRetries(runtime, scope);
      observe('success');
      return token;
    } catch (err) {
      if (err instanceof IdpRejected) observe('rejected', err.idpError);
      else if (err instanceof IdpUnavailable) observe('unavailable', err.retryAfterFromIdp ? 'throttled' : 'unavailable');
      throw err;
    }
  }

  private async exchangeWithRetries(runtime: CredentialRuntime, scope: string): Promise<CachedToken> {
    const breaker = this.breaker(runtime.config.id);
    for (let attempt = 0; ; attempt++) {
      const requestedAt = this.clock.now();
      try {
        const issued = await this.acquireWithRotationFallback(runtime, scope);
        breaker.recordSuccess();
        const token = this.toCached(issued, requestedAt);
        this.logger.info(
          {
            credentialId: runtime.config.id,
            scope,
            durationMs: this.clock.now() - requestedAt,
            expiresInSeconds: issued.expiresInSeconds,
            lifetimeSeconds: Math.floor((token.expiresAt - requestedAt) / 1000),
            refreshInSeconds: Math.round((token.refreshAt - requestedAt) / 1000),
          },
          'token exchanged with the identity provider',
        );
        return token;
      } catch (err) {
        // Nothing was sent (an expired federated token, an unreadable secret file): not the IdP's failure, and no retry helps now.
        if (err instanceof CredentialUnavailable) throw err;
        if (!(err instanceof IdpUnavailable)) {
          if (err instanceof IdpRejected) breaker.recordSuccess(); // the IdP is up; the request is wrong
          throw err;
        }
        if (err.retryAfterFromIdp || attempt >= runtime.config.retries) {
          breaker.recordFailure();
          throw err;
        }
        // Full jitter (AWS architecture blog): spreads the retries of many replicas.
        await sleep(Math.random() * Math.min(2000, 200 * 2 ** attempt));
      }
    }
  }

  private async acquireWithRotationFallback(runtime: CredentialRuntime, scope: string): Promise<IssuedToken> {
    try {
      return await runtime.provider.acquire({ scope });
    } catch (err) {
      if (!(err instanceof IdpRejected) || !runtime.idp.refusedClientCredential(err)) throw err;
      if (!runtime.auth.hasPrevious()) throw withClientAuthHint(runtime, err);
      this.logger.warn(
        { credentialId: runtime.config.id, kind: runtime.auth.kind, idpError: err.idpError },
        `refused right after a rotation: retrying once with the previous ${runtime.auth.kind === 'certificate' ? 'certificate' : 'secret'}`,
      );
      return await runtime.provider.acquire({ scope, use: 'previous' }).catch((again: unknown) => {
        throw withClientAuthHint(runtime, again);
      });
    }
  }

  private toCached(issued: IssuedToken, requestedAt: number): CachedToken {
    const statedSeconds = issued.expiresInSeconds ?? (issued.expiresAtMs !== undefined ? MAX_TOKEN_LIFETIME_SECONDS : FALLBACK_LIFETIME_SECONDS);
    const expiresAt = Math.min(requestedAt + Math.min(statedSeconds, MAX_TOKEN_LIFETIME_SECONDS) * 1000, issued.expiresAtMs ?? Infinity);
    if (issued.expiresAtMs !== undefined && expiresAt - requestedAt < 1000) {
      const exp = Math.abs(issued.expiresAtMs) < 8.64e15 ? new Date(issued.expiresAtMs).toISOString() : `${issued.expiresAtMs / 1000} s`;
      throw new IdpRejected(
        `the identity provider issued an access token whose exp (${exp}) is already past, or within a second`,
        { error: 'invalid_response', errorDescription: `access token exp ${exp}`, httpStatus: 200 },
        `the token's exp is ${exp} by the broker's clock: check the clocks of the broker and the IdP (NTP), and the token lifetime configured at the IdP`,
        'invalid_response',
      );
    }
    const lifetimeMs = expiresAt - requestedAt;
    const refreshInMs = issued.refreshInSeconds !== undefined ? Math.min(issued.refreshInSeconds * 1000, lifetimeMs) : lifetimeMs * this.options.refreshAheadRatio;
    return {
      accessToken: issued.accessToken,
      tokenType: issued.tokenType,
      expiresAt: requestedAt + lifetimeMs,
      refreshAt: requestedAt + Math.floor(refreshInMs),
      obtainedAt: requestedAt,
      scope: issued.scope,
    };
  }

  private served(token: CachedToken, query: TokenQuery, cacheOutcome: CacheOutcome): ServedToken {
    return { ...token, credentialId: query.credentialId, requestedScope: query.scope, cacheOutcome, stale: false, coalesced: false };
  }

  // ── refresh-ahead ────────────────────────────────────────────────────────────────────────────

  private maybeRefreshAhead(target: Target, token: CachedToken, now: number): void {
    if (now < token.refreshAt || now < target.nextRefreshAt || target.refreshing) return;
    target.refreshing = true;
    const run = this.refreshAhead(target, token).finally(() => {
      target.refreshing = false;
      this.refreshes.delete(run);
    });
    this.refreshes.add(run);
  }

  /** Renews a token before it expires; callers keep the current one meanwhile. Never throws. */
  private async refreshAhead(target: Target, current: CachedToken): Promise<void> {
    const { key, runtime } = target;
    target.nextRefreshAt = this.clock.now() + REFRESH_RECHECK_MS;
    const shared = await this.sharedGet(key);
    if (shared && shared.obtainedAt > current.obtainedAt) {
      this.adopt(key, shared); // another replica renewed it
      this.options.observer?.refreshedAhead?.(runtime.config.id, 'adopted');
      return;
    }
    if (this.inflight.has(key)) return;
    let lock: CacheLock | undefined;
    try {
      await this.assertMayCallIdp(runtime);
      lock = await this.lock(key, this.lockTtlMs(runtime));
      if (!lock) return; // another replica is renewing it; its result is picked up on the next check
      const again = await this.sharedGet(key);
      if (again && again.obtainedAt > current.obtainedAt) {
        this.adopt(key, again);
        this.options.observer?.refreshedAhead?.(runtime.config.id, 'adopted');
        return;
      }
      const pending = this.exchangeAndStore(target).then((token) => ({ token, waited: false }));
      this.inflight.set(key, pending);
      await pending.finally(() => this.inflight.delete(key));
      target.refreshFailures = 0;
      this.options.observer?.refreshedAhead?.(runtime.config.id, 'success');
    } catch (err) {
      this.options.observer?.refreshedAhead?.(runtime.config.id, 'failure');
      target.refreshFailures += 1;
      const backoffMs = Math.min(MAX_REFRESH_BACKOFF_MS, 1000 * 2 ** Math.min(target.refreshFailures, 5));
      const retryAfterMs = err instanceof IdpUnavailable ? err.retryAfterSeconds * 1000 : 0;
      target.nextRefreshAt = this.clock.now() + Math.max(backoffMs, retryAfterMs);
      if (isIdpFailure(err)) {
        if (lock) await this.recordFailure(runtime, key, err);
        this.logger.warn(
          { credentialId: runtime.config.id, scope: target.scope, code: err.code, error: err.message, expiresInSeconds: Math.floor((current.expiresAt - this.clock.now()) / 1000) },
          'refresh-ahead failed: the current token is served until it expires',
        );
      } else if (!(err instanceof SignInRequired)) {
        // SignInRequired was logged once where it was found (the delegated credential's provider).
        this.logger.error({ credentialId: runtime.config.id, error: (err as Error).message }, 'refresh-ahead failed unexpectedly');
      }
    } finally {
      await lock?.release();
    }
  }

  /** Keeps recently used targets fresh with no request in flight; forgets the ones not used. */
  private tick(): void {
    const now = this.clock.now();
    const keepWarmMs = this.options.keepWarmSeconds * 1000;
    for (const [key, target] of this.targets) {
      const token = this.local.get(key);
      if (token && token.expiresAt <= now) this.local.delete(key);
      const idle = now - target.lastUsedAt > keepWarmMs;
      // A rotated certificate gives the credential a new key: the old one is not kept warm.
      const current = this.cacheKey(target.runtime, target.scope) === key;
      if (idle || !current) {
        this.targets.delete(key);
        continue;
      }
      if (token && token.expiresAt > now) this.maybeRefreshAhead(target, token, now);
    }
  }

  /** After a shared-cache outage, share what this replica obtained meanwhile. */
  private async resync(): Promise<void> {
    const now = this.clock.now();
    const writes = [...this.local].filter(([, t]) => t.expiresAt > now).map(([key, t]) => this.cache.setIfAbsent(key, t).catch(() => undefined));
    await Promise.all(writes);
    this.logger.info({ entries: writes.length }, 'shared cache resynchronised');
  }
}
