// Every Prometheus metric of the broker, in its own registry, `token_broker_` prefix, seconds,
// labels bounded by configuration (caller and credential ids, outcomes, IdP error codes).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type RequestOutcome = 'hit' | 'miss' | 'refreshed' | 'coalesced' | 'stale' | 'error';

/**
 * What the gauges read at each scrape. The material gauges follow the credential's kind of client
 * authentication: certificates have a notAfter, client secrets the age of their file (the IdP alone
 * knows when a secret expires), federated tokens the exp of the token in their file.
 */
export interface MetricsSources {
  /** credential id → certificate notAfter (epoch ms), for certificate credentials. */
  certificateNotAfter(): { credentialId: string; notAfterMs: number }[];
  /** credential id → seconds since its secret file last changed, for client-secret credentials. */
  clientSecretFileAge(): { credentialId: string; ageSeconds: number }[];
  /** credential id → exp of the federated token in its file (epoch ms), for federated-token credentials whose file holds one. */
  federatedTokenExpiry(): { credentialId: string; expiresAtMs: number }[];
  /** credential id → least remaining lifetime of its cached tokens (ms), for tokens in memory. */
  tokenRemaining(): { credentialId: string; remainingMs: number }[];
  redisUp(): number | undefined;
  /** Delegated credentials as this replica last read their grants. */
  delegatedGrants?(): { credentialId: string; signedIn: boolean; lastRefreshAtMs?: number; refreshExpiresAtMs?: number }[];
}

// It is the token service's observer (core/token-service.ts TokenServiceObserver) by shape: observability
// imports no domain module.
export class BrokerMetrics {
  readonly registry = new Registry();
  private readonly tokenRequests: Counter<'caller' | 'credential' | 'outcome'>;
  private readonly idpExchange: Histogram<'credential' | 'provider' | 'result'>;
  private readonly idpErrors: Counter<'credential' | 'code'>;
  private readonly lockWaits: Counter<'credential'>;
  private readonly refreshAhead: Counter<'credential' | 'result'>;
  private readonly httpRequests: Counter<'route' | 'status'>;
  private readonly grantRefreshes: Counter<'credential' | 'result'>;
  private readonly keySigns: Histogram<'credential' | 'backend' | 'result'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'token_broker_' });
    this.tokenRequests = new Counter({
      name: 'token_broker_token_requests_total',
      help: 'Token requests answered, by caller, credential and outcome (hit, miss, refreshed, coalesced, stale, error).',
      labelNames: ['caller', 'credential', 'outcome'],
      registers,
    });
    this.idpExchange = new Histogram({
      name: 'token_broker_idp_exchange_duration_seconds',
      help: 'Duration of token exchanges with the identity provider, retries included.',
      labelNames: ['credential', 'provider', 'result'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.idpErrors = new Counter({
      name: 'token_broker_idp_errors_total',
      help: 'Failed exchanges by IdP error (AADSTS code, OAuth error, or unavailable).',
      labelNames: ['credential', 'code'],
      registers,
    });
    this.lockWaits = new Counter({
      name: 'token_broker_lock_waits_total',
      help: 'Requests that waited for another replica (or request) to finish an exchange instead of calling the IdP.',
      labelNames: ['credential'],
      registers,
    });
    this.refreshAhead = new Counter({
      name: 'token_broker_refresh_ahead_total',
      help: 'Background refreshes ahead of expiry, by result (success, failure, adopted: another replica had refreshed).',
      labelNames: ['credential', 'result'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'token_broker_http_requests_total',
      help: 'HTTP requests by route and status code.',
      labelNames: ['route', 'status'],
      registers,
    });
    new Gauge({
      name: 'token_broker_certificate_not_after_seconds',
      help: 'Expiry of the certificate in use per credential (Unix time; certificate credentials).',
      labelNames: ['credential'],
      registers,
      collect() {
        this.reset();
        for (const c of sources.certificateNotAfter()) this.set({ credential: c.credentialId }, Math.floor(c.notAfterMs / 1000));
      },
    });
    new Gauge({
      name: 'token_broker_client_secret_file_age_seconds',
      help: 'Seconds since the client secret file in use per credential last changed (client-secret credentials).',
      labelNames: ['credential'],
      registers,
      collect() {
        this.reset();
        for (const s of sources.clientSecretFileAge()) this.set({ credential: s.credentialId }, Math.max(0, s.ageSeconds));
      },
    });
    new Gauge({
      name: 'token_broker_federated_token_expiry_seconds',
      help: 'Expiry (exp) of the federated token in the file per credential (Unix time); absent while the file holds no usable token.',
      labelNames: ['credential'],
      registers,
      collect() {
        this.reset();
        for (const t of sources.federatedTokenExpiry()) this.set({ credential: t.credentialId }, Math.floor(t.expiresAtMs / 1000));
      },
    });
    new Gauge({
      name: 'token_broker_token_remaining_seconds',
      help: 'Least remaining lifetime among the tokens cached in this replica, per credential.',
      labelNames: ['credential'],
      registers,
      collect() {
        this.reset();
        for (const t of sources.tokenRemaining()) this.set({ credential: t.credentialId }, Math.max(0, t.remainingMs / 1000));
      },
    });
    this.keySigns = new Histogram({
      name: 'token_broker_key_sign_duration_seconds',
      help: 'Client-assertion signatures by where the key is (file, pkcs11, keyVault) and result (success, failure).',
      labelNames: ['credential', 'backend', 'result'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.grantRefreshes = new Counter({
      name: 'token_broker_delegated_refreshes_total',
      help: 'Redemptions of delegated credentials\' refresh tokens by this replica, by result (success, failure, sign_in_required).',
      labelNames: ['credential', 'result'],
      registers,
    });
    const grants = () => sources.delegatedGrants?.() ?? [];
    new Gauge({
      name: 'token_broker_delegated_signed_in',
      help: '1 while a delegated credential holds a usable grant, 0 when a person must sign in (again).',
      labelNames: ['credential'],
      registers,
      collect() {
        this.reset();
        for (const g of grants()) this.set({ credential: g.credentialId }, g.signedIn ? 1 : 0);
      },
    });
    new Gauge({
      name: 'token_broker_delegated_last_refresh_age_seconds',
      help: 'Seconds since the refresh token of a delegated credential was last redeemed (or the person signed in).',
      labelNames: ['credential'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const g of grants()) if (g.lastRefreshAtMs !== undefined) this.set({ credential: g.credentialId }, Math.max(0, (now - g.lastRefreshAtMs) / 1000));
      },
    });
    new Gauge({
      name: 'token_broker_delegated_refresh_token_expiry_seconds',
      help: 'When the refresh token of a delegated credential expires (Unix time), where the IdP says.',
      labelNames: ['credential'],
      registers,
      collect() {
        this.reset();
        for (const g of grants()) if (g.refreshExpiresAtMs !== undefined) this.set({ credential: g.credentialId }, Math.floor(g.refreshExpiresAtMs / 1000));
      },
    });
    new Gauge({
      name: 'token_broker_redis_up',
      help: '1 when the shared Redis cache is usable (connected, answering in time, accepting writes), 0 when the broker serves from memory (absent without Redis).',
      registers,
      collect() {
        const up = sources.redisUp();
        if (up !== undefined) this.set(up);
      },
    });
  }

  tokenServed(caller: string, credential: string, outcome: RequestOutcome): void {
    this.tokenRequests.inc({ caller, credential, outcome });
  }

  httpRequest(route: string, status: number): void {
    this.httpRequests.inc({ route, status: String(status) });
  }

  // TokenServiceObserver
  exchanged(credential: string, provider: string, seconds: number, result: 'success' | 'rejected' | 'unavailable', code?: string): void {
    this.idpExchange.observe({ credential, provider, result }, seconds);
    if (result !== 'success') this.idpErrors.inc({ credential, code: code ?? result });
  }

  lockWaited(credential: string): void {
    this.lockWaits.inc({ credential });
  }

  /** One signature by a credential's key (client-auth/certificate/client-assertion-signer.ts). */
  keySigned(credential: string, backend: string, seconds: number, result: 'success' | 'failure'): void {
    this.keySigns.observe({ credential, backend, result }, seconds);
  }

  // RefreshObserver (delegated/delegated-token-provider.ts)
  refreshed(credential: string, result: 'success' | 'sign_in_required' | 'failure'): void {
    this.grantRefreshes.inc({ credential, result });
  }

  refreshedAhead(credential: string, result: 'success' | 'failure' | 'adopted'): void {
    this.refreshAhead.inc({ credential, result });
  }
}
