// Builds the object graph from a loaded config: certificates → signers → providers → token
// service → HTTP app. main.ts, the demo and the tests all start the broker through here.
import type { Server } from 'node:http';
import { createApp, createMetricsApp } from './app.ts';
import { BrokerMetrics } from './observability/metrics.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSharedStore } from './cache/create-shared-store.ts';
import type { LoadedConfig } from './config/load.ts';
import { CallerJwtVerifier } from './callers/caller-jwt-verifier.ts';
import { JwksKeySet } from './callers/jwks-key-set.ts';
import { RateLimiter } from './callers/rate-limiter.ts';
import { CallerDirectory } from './callers/caller-directory.ts';
import { systemClock, type Clock } from './kernel/clock.ts';
import { TokenService, type CredentialRuntime } from './core/token-service.ts';
import { createClientAuthentication } from './client-auth/create-client-authentication.ts';
import { componentLogger, createLogger, type Logger } from './observability/logger.ts';
import { idpKindOf } from './idps/idp-kinds.ts';
import { HttpListener } from './http/http-listener.ts';

export interface Broker {
  app: ReturnType<typeof createApp>;
  tokenService: TokenService;
  logger: Logger;
  /** Starts listening (and on metrics.port when set); resolves with the bound address, rejects with a ListenError. */
  listen(port?: number, host?: string): Promise<{ url: string; server: Server }>;
  /** Readiness fails from now on; requests are still served, each answered with Connection: close. */
  beginShutdown(): void;
  /** Stops accepting, lets in-flight requests and refreshes finish, closes the cache. */
  close(): Promise<void>;
  metrics: BrokerMetrics;
}

export interface BuildOptions {
  logger?: Logger;
  clock?: Clock;
  /** Background refresher period (tests shorten it). */
  refreshTickMs?: number;
}

export function buildBroker(loaded: LoadedConfig, options: BuildOptions = {}): Broker {
  const { config } = loaded;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger({ level: config.server.logLevel });
  const credentials = new Map<string, CredentialRuntime>();
  for (const credential of config.credentials) {
    const auth = createClientAuthentication(credential, loaded.materials.get(credential.id)!, {
      credentialId: credential.id,
      baseDir: loaded.baseDir,
      clock,
      logger: componentLogger(logger, 'client-auth'),
      reloadIntervalMs: config.server.certificateReloadSeconds * 1000,
    });
    auth.start();
    const idp = idpKindOf(credential);
    credentials.set(credential.id, { config: credential, idp, auth, provider: idp.createProvider(credential, auth, componentLogger(logger, 'providers')) });
  }
  const store = createSharedStore(config.cache, loaded.baseDir, clock, componentLogger(logger, 'redis'));
  const metrics: BrokerMetrics = new BrokerMetrics({
    certificateNotAfter: () => [...credentials.values()].filter((r) => r.auth.kind === 'certificate').map((r) => ({ credentialId: r.config.id, notAfterMs: r.auth.expiresAt()! })),
    // The secret kind reports its file's age in status(); a federated token counts only while its file holds one.
    clientSecretFileAge: () =>
      [...credentials.values()].filter((r) => r.auth.kind === 'clientSecret').flatMap((r) => {
        const age = r.auth.status(clock.now()).detail.age_seconds;
        return typeof age === 'number' ? [{ credentialId: r.config.id, ageSeconds: age }] : [];
      }),
    federatedTokenExpiry: () =>
      [...credentials.values()].filter((r) => r.auth.kind === 'federatedToken').flatMap((r) => {
        const expiresAtMs = r.auth.expiresAt();
        return expiresAtMs !== undefined && r.auth.status(clock.now()).status !== 'unavailable' ? [{ credentialId: r.config.id, expiresAtMs }] : [];
      }),
    tokenRemaining: () => tokenService.tokenRemaining(),
    redisUp: () => {
      const status = store.health.status();
      return status.kind === 'redis' ? (status.state === 'ok' ? 1 : 0) : undefined;
    },
  });
  const tokenService: TokenService = new TokenService(credentials, store, clock, componentLogger(logger, 'token-service'), {
    refreshAheadRatio: config.cache.refreshAheadRatio,
    keepWarmSeconds: config.cache.keepWarmSeconds,
    tickMs: options.refreshTickMs,
    observer: metrics,
  });
  tokenService.start();
  const callers = new CallerDirectory(config.callers);
  const jwtVerifier = new CallerJwtVerifier(
    config.callers.flatMap((c) => {
      if (!c.jwt) return [];
      const source = {
        uri: c.jwt.jwksUri,
        file: c.jwt.jwksFile && resolve(loaded.baseDir, c.jwt.jwksFile),
        ca: c.jwt.jwksCaFile ? readFileSync(resolve(loaded.baseDir, c.jwt.jwksCaFile)) : undefined,
        tokenFile: c.jwt.jwksTokenFile && resolve(loaded.baseDir, c.jwt.jwksTokenFile),
      };
      return [{ caller: callers.byId(c.id)!, config: c.jwt, keySet: new JwksKeySet(source, componentLogger(logger, 'caller-jwt'), () => clock.now()) }];
    }),
    componentLogger(logger, 'caller-jwt'),
  );
  const rateLimiter = new RateLimiter(clock, store.counter);
  rateLimiter.register(callers.callers);
  rateLimiter.start();
  const imds = config.server.imdsSidecar;
  let shuttingDown = false;
  const app = createApp({
    tokenService,
    callers,
    jwtVerifier,
    rateLimiter,
    imdsCaller: imds?.enabled ? callers.byId(imds.caller) : undefined,
    metrics,
    serveMetrics: config.metrics.port === undefined,
    clock,
    logger,
    bodyLimitBytes: config.server.bodyLimitBytes,
    isShuttingDown: () => shuttingDown,
  });
  let api: HttpListener | undefined;
  let metricsApi: HttpListener | undefined;

  return {
    app,
    tokenService,
    metrics,
    logger,
    async listen(port = config.server.port, host = config.server.host) {
      api = new HttpListener(app, {
        requestTimeoutMs: config.server.requestTimeoutMs,
        headersTimeoutMs: Math.min(config.server.requestTimeoutMs, 10_000),
        keepAliveTimeoutMs: 5_000,
      });
      const address = await api.listen(port, host);
      if (config.metrics.port !== undefined) {
        // A separate port for Prometheus, so the API port can stay closed to the monitoring network.
        // A configured port that cannot be opened is fatal like the API port: no silent gap in monitoring.
        metricsApi = new HttpListener(createMetricsApp({ metrics, logger }), { purpose: 'for metrics (metrics.port)' });
        try {
          await metricsApi.listen(config.metrics.port, host);
        } catch (err) {
          await api.close();
          throw err;
        }
      }
      for (const listener of [api, metricsApi]) listener?.server.on('error', (err) => logger.error({ error: err.message }, 'server error'));
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return { url: `http://${shownHost}:${address.port}`, server: api.server };
    },
    beginShutdown() {
      shuttingDown = true;
      api?.beginDrain();
      metricsApi?.beginDrain();
    },
    async close() {
      shuttingDown = true;
      await Promise.all([api?.close(), metricsApi?.close()]);
      rateLimiter.stop();
      await tokenService.stop();
      for (const runtime of credentials.values()) runtime.auth.stop();
      await store.close();
    },
  };
}
