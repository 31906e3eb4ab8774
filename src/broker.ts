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
import { completeKeyVaultMaterial, createClientAuthentication } from './client-auth/create-client-authentication.ts';
import { ConfigError } from './kernel/errors.ts';
import { componentLogger, createLogger, type Logger } from './observability/logger.ts';
import { idpKindOf } from './idps/idp-kinds.ts';
import { HttpListener } from './http/http-listener.ts';
import type { CredentialConfig } from './config/schema.ts';
import type { IdpKind } from './idps/idp-kind.ts';
import { signInScopes, type SignInConfig } from './idps/sign-in-schema.ts';
import type { ClientAuthentication } from './client-auth/client-authentication.ts';
import type { GrantStore } from './cache/grant-store.ts';
import type { TokenCredential } from '@azure/identity';
import type { KeyVaultConfig } from './client-auth/certificate/certificate-schema.ts';
import { MemoryGrantStore } from './cache/memory-grant-store.ts';
import { DelegatedEndpointResolver } from './delegated/delegated-endpoints.ts';
import { DelegatedTokenProvider, type RefreshObserver } from './delegated/delegated-token-provider.ts';
import { IdTokenVerifier } from './delegated/id-token-verifier.ts';
import { SignInService, type DelegatedRuntime } from './delegated/sign-in-service.ts';

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
  /** How often delegated credentials' grants are re-read (tests shorten it). */
  grantWatchMs?: number;
}

/**
 * How the broker authenticates to Azure Key Vault (https://learn.microsoft.com/azure/key-vault/general/authentication):
 * its managed identity, workload identity, or another of its credentials (a token for the vault's
 * scope, from the same cache as every other token).
 */
function keyVaultCredential(config: KeyVaultConfig, tokenOf: (credentialId: string, scope: string) => Promise<{ accessToken: string; expiresAt: number }>): TokenCredential {
  const auth = config.authentication;
  if (auth === 'managedIdentity' || auth === 'workloadIdentity') {
    // @azure/identity is loaded only by brokers that use it.
    let identity: Promise<TokenCredential> | undefined;
    const load = () =>
      import('@azure/identity').then((m) =>
        auth === 'managedIdentity' ? new m.ManagedIdentityCredential(config.managedIdentityClientId ? { clientId: config.managedIdentityClientId } : {}) : new m.WorkloadIdentityCredential(),
      );
    return { getToken: async (scopes, options) => (await (identity ??= load())).getToken(scopes, options) };
  }
  return {
    getToken: async (scopes) => {
      const served = await tokenOf(auth.credential, [scopes].flat().join(' '));
      return { token: served.accessToken, expiresOnTimestamp: served.expiresAt };
    },
  };
}

/** A delegated credential's parts: where its IdP takes sign-ins, and the provider that redeems its refresh token. */
function delegatedRuntime(
  credential: CredentialConfig,
  signIn: SignInConfig,
  idp: IdpKind<CredentialConfig>,
  auth: ClientAuthentication,
  grants: GrantStore,
  clock: Clock,
  logger: Logger,
  refreshed: NonNullable<RefreshObserver['refreshed']>,
): DelegatedRuntime {
  const idpName = credential.provider === 'entra' ? 'Entra ID' : `the identity provider of ${credential.id}`;
  const issuer = idp.delegatedIssuer(credential);
  const endpoints = new DelegatedEndpointResolver(issuer, idpName, credential.timeoutMs, (declared) => idp.delegatedIssuerMatches(credential, declared));
  const scopes = signInScopes(signIn, credential.scopes);
  const audience = (tokenEndpoint: string, discovered: string) => idp.assertionAudience(credential, tokenEndpoint, discovered);
  const provider = new DelegatedTokenProvider(
    { id: credential.id, clientId: credential.clientId, idpName, timeoutMs: credential.timeoutMs, signInScope: scopes.join(' '), audience },
    auth,
    grants,
    endpoints,
    clock,
    componentLogger(logger, 'sign-in'),
    { refreshed },
  );
  return {
    id: credential.id,
    clientId: credential.clientId,
    idpName,
    flow: signIn.flow,
    redirectUri: signIn.redirectUri,
    scopes,
    keepAliveMs: signIn.keepAliveSeconds * 1000,
    timeoutMs: credential.timeoutMs,
    authorizationParams: idp.authorizationParams(credential, scopes),
    auth,
    endpoints,
    provider,
    audience,
  };
}

/**
 * What the configuration cannot load by itself because it lives in a service: the certificates of
 * credentials whose certificate and key are in Azure Key Vault (keyVault without certFile). Read
 * once before the broker is built, so a vault that cannot be read stops the start with the path
 * named, as a bad file would. The broker authenticates to the vault as it will at run time: its
 * managed or workload identity, or another credential's token (obtained here directly, uncached).
 */
export async function prepareBroker(loaded: LoadedConfig, options: { logger?: Logger } = {}): Promise<LoadedConfig> {
  const logger = options.logger ?? createLogger({ level: loaded.config.server.logLevel });
  const pending = loaded.config.credentials.map((c, i) => ({ c, i })).filter(({ c }) => c.certificate?.keyVault && !c.certificate.certFile);
  if (pending.length === 0) return loaded;
  const problems: { path: string; message: string }[] = [];
  const materials = new Map(loaded.materials);
  const direct = async (credentialId: string, scope: string) => {
    const ref = loaded.config.credentials.find((c) => c.id === credentialId)!;
    const idp = idpKindOf(ref);
    const auth = createClientAuthentication(ref, loaded.materials.get(ref.id)!, {
      credentialId: ref.id,
      baseDir: loaded.baseDir,
      clock: systemClock,
      logger: componentLogger(logger, 'client-auth'),
      reloadIntervalMs: 60_000,
      timeoutMs: ref.timeoutMs,
    });
    try {
      const issued = await idp.createProvider(ref, auth, componentLogger(logger, 'providers')).acquire({ scope: idp.normaliseScope(scope) });
      return { accessToken: issued.accessToken, expiresAt: Date.now() + (issued.expiresInSeconds ?? 300) * 1000 };
    } finally {
      auth.stop();
    }
  };
  await Promise.all(
    pending.map(async ({ c, i }) => {
      const idp = idpKindOf(c);
      const result = await completeKeyVaultMaterial(c, loaded.baseDir, { defaults: idp.assertionDefaults(c), keyTypeProblem: (t) => idp.keyTypeProblem(t) }, keyVaultCredential(c.certificate!.keyVault!, direct), c.timeoutMs);
      for (const p of result.problems) problems.push({ path: `credentials[${i}].${p.path}`, message: p.message });
      if (result.material) materials.set(c.id, result.material);
    }),
  );
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...loaded, materials };
}

export function buildBroker(loaded: LoadedConfig, options: BuildOptions = {}): Broker {
  const { config } = loaded;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger({ level: config.server.logLevel });
  const credentials = new Map<string, CredentialRuntime>();
  const store = createSharedStore(config.cache, loaded.baseDir, clock, componentLogger(logger, 'redis'), config.credentials.some((c) => c.signIn));
  const delegated = new Map<string, DelegatedRuntime>();
  for (const credential of config.credentials) {
    const material = loaded.materials.get(credential.id);
    if (!material) throw new Error(`credential '${credential.id}': its material is not loaded (a Key Vault certificate is read by prepareBroker before buildBroker)`);
    const auth = createClientAuthentication(credential, material, {
      credentialId: credential.id,
      baseDir: loaded.baseDir,
      clock,
      logger: componentLogger(logger, 'client-auth'),
      reloadIntervalMs: config.server.certificateReloadSeconds * 1000,
      timeoutMs: credential.timeoutMs,
      keySigned: (backend, seconds, result) => metrics.keySigned(credential.id, backend, seconds, result),
      keyVaultCredential: (keyVault) => keyVaultCredential(keyVault, (id, scope) => tokenService.getToken({ credentialId: id, scope: credentials.get(id)!.idp.normaliseScope(scope), minTtlSeconds: 60 })),
    });
    auth.start();
    const idp = idpKindOf(credential);
    if (credential.signIn) {
      // The config schema requires an encryption key (and with the in-memory cache a state file) for these.
      if (!store.grants) throw new Error(`credential '${credential.id}' has signIn but the cache keeps no grants: set cache.encryptionKeyFile`);
      const runtime = delegatedRuntime(credential, credential.signIn, idp, auth, store.grants, clock, logger, (id, result, grant) => {
        metrics.refreshed(id, result);
        if (grant) signIns.noteGrant(id, grant);
      });
      delegated.set(credential.id, runtime);
      credentials.set(credential.id, { config: credential, idp, auth, provider: runtime.provider, grant: { cacheIdentity: () => signIns.cacheIdentity(credential.id), describe: () => signIns.describe(credential.id), subject: () => signIns.view(credential.id)?.subject } });
      continue;
    }
    credentials.set(credential.id, { config: credential, idp, auth, provider: idp.createProvider(credential, auth, componentLogger(logger, 'providers')) });
  }
  // Always there, so the sign-in routes answer alike everywhere (a credential without signIn is a 400).
  const signIns = new SignInService(delegated, {
    grants: store.grants ?? new MemoryGrantStore(clock),
    clock,
    logger: componentLogger(logger, 'sign-in'),
    idTokens: new IdTokenVerifier(componentLogger(logger, 'sign-in')),
    watchMs: options.grantWatchMs,
  });
  signIns.start();
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
    delegatedGrants: () => signIns.grantViews(),
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
    signIns,
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
      await signIns.stop();
      await tokenService.stop();
      for (const runtime of credentials.values()) runtime.auth.stop();
      await store.close();
    },
  };
}
