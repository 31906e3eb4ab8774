// The one schema for the broker's configuration (docs/design.md §4). Every default lives here as a named
// constant; unknown keys are errors (`.strict()`), so a typo never falls back silently.
import { z } from 'zod';
import { clientAuthenticationProblem } from '../client-auth/client-auth-schema.ts';
import { credentialBaseSchema } from '../idps/credential-schema.ts';
import { SIGN_IN_CALLBACK_PATH } from '../idps/sign-in-schema.ts';
import { entraCredentialSchema, type EntraCredentialConfig } from '../idps/entra/entra-schema.ts';
import { oidcCredentialSchema, type OidcCredentialConfig } from '../idps/oidc/oidc-schema.ts';
import { filePath, httpUrl, resourceId } from '../kernel/schema-primitives.ts';
import { KEY_PREFIX_NO_BRACES, redisClusterSchema, redisSentinelSchema, redisTopologyProblem } from '../cache/redis/redis-schema.ts';

export { credentialBaseSchema, entraCredentialSchema, oidcCredentialSchema };
export type { EntraCredentialConfig, OidcCredentialConfig };

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_KEY_PREFIX = 'token-broker:';
/** Contract default for `min_ttl_seconds` (docs/design.md §5.2). */
export const DEFAULT_MIN_TTL_SECONDS = 60;
export const DEFAULT_BODY_LIMIT_BYTES = 16 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/**
 * Refresh at half the lifetime when the IdP gives no refresh_in: an Entra token (60–90 min) is
 * renewed with 30–45 min of life left, so an IdP outage of that length costs callers nothing, for
 * one extra exchange per key per lifetime. MSAL infers the same half for long-lived tokens.
 */
export const DEFAULT_REFRESH_AHEAD_RATIO = 0.5;
/** Targets asked for within this window are refreshed in the background; others are let expire. */
export const DEFAULT_KEEP_WARM_SECONDS = 3600;
export const DEFAULT_CERTIFICATE_RELOAD_SECONDS = 30;
/** Long enough for Kubernetes to take the pod out of its Service endpoints after readiness fails. */
export const DEFAULT_SHUTDOWN_DELAY_SECONDS = 5;

const SHA256_HEX = /^[0-9a-f]{64}$/i;
const RESERVED_FORM_FIELDS = new Set(['grant_type', 'client_id', 'client_assertion', 'client_assertion_type', 'client_secret', 'scope']);



export const PROVIDERS = ['entra', 'oidc'] as const;

/** Edit distance up to 2, for "did you mean" on a mistyped name. */
function isNear(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 2) return false;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]! <= 2;
}

/** "unknown provider 'oicd': must be one of 'entra', 'oidc' (did you mean 'oidc'?)" instead of zod's generic text. */
export function unknownValueMessage(what: string, value: unknown, allowed: readonly string[]): string {
  const list = allowed.map((a) => `'${a}'`).join(', ');
  if (value === undefined) return `required: one of ${list}`;
  const near = typeof value === 'string' ? allowed.find((a) => isNear(value.toLowerCase(), a)) : undefined;
  const shown = typeof value === 'string' ? `'${value}'` : JSON.stringify(value);
  return `unknown ${what} ${shown}: must be one of ${list}${near ? ` (did you mean '${near}'?)` : ''}`;
}

export const credentialSchema = z.discriminatedUnion('provider', [entraCredentialSchema, oidcCredentialSchema], {
  error: (issue) =>
    issue.code === 'invalid_union' && 'discriminator' in issue
      ? unknownValueMessage('provider', (issue.input as Record<string, unknown> | undefined)?.provider, PROVIDERS)
      : undefined,
});

/** Caller JWT algorithms: asymmetric only. No `none`, and no HMAC, which a public key must never verify. */
export const CALLER_JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export const DEFAULT_RATE_PER_SECOND = 100;
export const DEFAULT_RATE_BURST = 200;

const hashSchema = (what: string) =>
  z
    .string()
    .regex(SHA256_HEX, `must be the hex SHA-256 of the ${what} (64 hex digits)`)
    .transform((v) => v.toLowerCase());

export const callerJwtSchema = z
  .object({
    issuer: z.string().min(1).max(512).describe('the exact iss, e.g. https://kubernetes.default.svc.cluster.local'),
    jwksUri: httpUrl.optional().describe('JWKS of the issuer (cached; refetched on an unknown kid at most every 5 s, and every 10 minutes)'),
    jwksFile: filePath.optional().describe('a JWKS file instead of a URI (re-read on an unknown kid)'),
    jwksCaFile: filePath.optional().describe('PEM CA for an https jwksUri with a private CA (the Kubernetes API server)'),
    jwksTokenFile: filePath.optional().describe('a bearer token file sent to jwksUri (the Kubernetes API asks for one)'),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).describe('accepted aud value(s)'),
    subject: z.string().min(1).max(512).describe('exact sub, or a pattern with * (e.g. system:serviceaccount:bi:*)'),
    claims: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}).describe('further claims that must equal these values'),
    algorithms: z.array(z.enum(CALLER_JWT_ALGORITHMS)).min(1).default(['RS256', 'ES256', 'PS256']),
    clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
  })
  .strict()
  .superRefine((j, ctx) => {
    if (!j.jwksUri === !j.jwksFile) ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: 'give exactly one of jwksUri or jwksFile' });
  });

export const callerSchema = z
  .object({
    id: resourceId,
    apiKeySha256: hashSchema('API key').optional().describe('Authorization: Bearer <key>; store only the hash'),
    jwt: callerJwtSchema.optional().describe('Authorization: Bearer <JWT from this issuer> (Kubernetes service account tokens)'),
    identityHeaderSha256: hashSchema('IDENTITY_HEADER secret').optional().describe('managed-identity protocol: X-IDENTITY-HEADER'),
    allow: z
      .array(
        z
          .object({
            credential: z.string().min(1),
            scopes: z
              .array(z.string().min(1).max(1024))
              .min(1)
              .default(['*'])
              .describe('patterns over the credential\'s scopes; * matches any run of characters'),
          })
          .strict(),
      )
      .default([]),
    defaultCredential: z.string().min(1).optional().describe('managed-identity requests without client_id use this credential'),
    diagnostics: z.boolean().default(false).describe('may use /v1/diagnostics/*'),
    signIn: z.boolean().default(false).describe("may start, watch and end the sign-ins of delegated credentials (/v1/credentials/{id}/sign-in)"),
    rateLimit: z
      .object({
        requestsPerSecond: z.number().positive().max(100_000).default(DEFAULT_RATE_PER_SECOND),
        burst: z.number().int().min(1).max(1_000_000).default(DEFAULT_RATE_BURST),
      })
      .strict()
      .default({ requestsPerSecond: DEFAULT_RATE_PER_SECOND, burst: DEFAULT_RATE_BURST })
      .describe('token bucket per caller, shared across replicas through Redis (default 100/s, burst 200)'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.apiKeySha256 && !c.jwt && !c.identityHeaderSha256) {
      ctx.addIssue({ code: 'custom', path: ['apiKeySha256'], message: 'a caller needs apiKeySha256, jwt or identityHeaderSha256' });
    }
  });

export const serverSchema = z
  .object({
    host: z.string().min(1).default(DEFAULT_HOST).describe('env HOST overrides'),
    port: z.number().int().min(0).max(65535).default(DEFAULT_PORT).describe('env PORT overrides'),
    bodyLimitBytes: z.number().int().min(256).max(1024 * 1024).default(DEFAULT_BODY_LIMIT_BYTES),
    requestTimeoutMs: z.number().int().min(1000).max(300_000).default(DEFAULT_REQUEST_TIMEOUT_MS).describe('time allowed to receive a whole request (Node requestTimeout; default 15000)'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('env LOG_LEVEL overrides'),
    imdsSidecar: z
      .object({
        enabled: z.boolean().default(false),
        caller: z.string().min(1).describe('the one caller this IMDS endpoint serves'),
      })
      .strict()
      .optional()
      .describe('serve /metadata/identity/oauth2/token (Metadata: true) for one caller; loopback listeners only'),
    shutdownDelaySeconds: z
      .number()
      .min(0)
      .max(120)
      .default(DEFAULT_SHUTDOWN_DELAY_SECONDS)
      .describe('after SIGTERM: /readyz fails at once, requests are still served this long before the listener closes (default 5)'),
    certificateReloadSeconds: z
      .number()
      .min(0.1)
      .max(3600)
      .default(DEFAULT_CERTIFICATE_RELOAD_SECONDS)
      .describe('how often certificate files are re-read (they are also watched); default 30'),
  })
  .strict()
  .default({
    host: DEFAULT_HOST,
    port: DEFAULT_PORT,
    bodyLimitBytes: DEFAULT_BODY_LIMIT_BYTES,
    requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
    logLevel: 'info',
    certificateReloadSeconds: DEFAULT_CERTIFICATE_RELOAD_SECONDS,
    shutdownDelaySeconds: DEFAULT_SHUTDOWN_DELAY_SECONDS,
  });

export const cacheSchema = z
  .object({
    redisUrl: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional()
      .describe('one standalone Redis; absent with no redisCluster or redisSentinel: in-memory cache (one replica only); env REDIS_URL overrides'),
    redisCluster: redisClusterSchema.optional().describe('a Redis Cluster (Azure Managed Redis OSS cluster policy, ElastiCache cluster mode, self-hosted)'),
    redisSentinel: redisSentinelSchema.optional().describe('a master and replicas managed by Redis Sentinel'),
    keyPrefix: z
      .string()
      .max(128)
      .regex(KEY_PREFIX_NO_BRACES, 'must not contain { or }: the broker puts one hash tag per target into every key (docs/operations.md)')
      .default(DEFAULT_KEY_PREFIX),
    encryptionKeyFile: filePath
      .optional()
      .describe('AES-256-GCM keys for tokens at rest in Redis: one base64 or hex 32-byte key per line, the first encrypts'),
    stateFile: filePath
      .optional()
      .describe('with the in-memory cache: where delegated credentials keep their grants (encrypted with encryptionKeyFile, written atomically) so a restart keeps every sign-in'),
    tlsCaFile: filePath.optional().describe('PEM CA bundle for a rediss:// redisUrl with a private CA (redisCluster and redisSentinel have tls.caFile)'),
    refreshAheadRatio: z
      .number()
      .min(0.1)
      .max(0.9)
      .default(DEFAULT_REFRESH_AHEAD_RATIO)
      .describe('fraction of the lifetime after which a token is renewed when the IdP gives no refresh_in (default 0.5)'),
    keepWarmSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .default(DEFAULT_KEEP_WARM_SECONDS)
      .describe('targets used within this window are refreshed in the background (default 3600)'),
  })
  .strict()
  .default({ keyPrefix: DEFAULT_KEY_PREFIX, refreshAheadRatio: DEFAULT_REFRESH_AHEAD_RATIO, keepWarmSeconds: DEFAULT_KEEP_WARM_SECONDS });

export const configSchema = z
  .object({
    server: serverSchema,
    cache: cacheSchema,
    metrics: z
      .object({
        port: z.number().int().min(1).max(65535).optional().describe('serve /metrics on this port instead of the main one'),
      })
      .strict()
      .default({})
      .describe('Prometheus metrics at /metrics'),
    credentials: z.array(credentialSchema).min(1, 'at least one credential is needed'),
    callers: z.array(callerSchema).default([]),
  })
  .strict()
  .superRefine((config, ctx) => {
    const parts: ConfigParts = {
      server: config.server,
      cache: config.cache,
      credentials: config.credentials,
      callers: config.callers,
      credentialIds: config.credentials.map((c) => c.id),
      callerIds: config.callers.map((c) => c.id),
    };
    for (const issue of crossFieldIssues(parts)) ctx.addIssue({ code: 'custom', ...issue });
  });

/**
 * The parts of a config that parsed, for the rules that span several of them. A part that did not
 * parse is undefined and its rules are skipped; ids are as written, so a credential with a broken
 * field still counts as configured (no second, misleading "no credential with id" problem).
 */
export interface ConfigParts {
  server?: z.infer<typeof serverSchema>;
  cache?: z.infer<typeof cacheSchema>;
  credentials: readonly (CredentialConfig | undefined)[];
  callers: readonly (CallerConfig | undefined)[];
  credentialIds: readonly unknown[];
  callerIds: readonly unknown[];
}

export interface CrossFieldIssue {
  path: (string | number)[];
  message: string;
}

/** The rules across fields and sections; the schema applies them, and so does the loader for a config with other problems. */
export function crossFieldIssues(parts: ConfigParts): CrossFieldIssue[] {
  const issues: CrossFieldIssue[] = [];
  const issue = (path: (string | number)[], message: string) => issues.push({ path, message });
  const credentialIds = new Set<string>();
  parts.credentialIds.forEach((id, i) => {
    if (typeof id !== 'string') return;
    if (credentialIds.has(id)) issue(['credentials', i, 'id'], `duplicate credential id '${id}'`);
    credentialIds.add(id);
  });
  parts.credentials.forEach((c, i) => {
    const auth = c && clientAuthenticationProblem(c);
    if (auth) issue(['credentials', i, auth.path], auth.message);
    if (c?.provider === 'entra' && c.clientSecret?.method === 'client_secret_basic') {
      // Entra documents the secret as the client_secret form field (and msal-node sends it so).
      issue(['credentials', i, 'clientSecret', 'method'], 'Entra ID takes the secret as a form field: use client_secret_post, or leave method out');
    }
    if (c?.provider === 'oidc') {
      if (!c.issuer && !c.tokenEndpoint) issue(['credentials', i, 'issuer'], 'an oidc credential needs issuer (for discovery) or tokenEndpoint');
      for (const field of Object.keys(c.tokenParams)) {
        if (RESERVED_FORM_FIELDS.has(field)) issue(['credentials', i, 'tokenParams', field], 'is set by the broker and cannot be overridden');
      }
    }
    const vaultAuth = c?.certificate?.keyVault?.authentication;
    if (c && vaultAuth && typeof vaultAuth === 'object') {
      const path = ['credentials', i, 'certificate', 'keyVault', 'authentication', 'credential'];
      const other = parts.credentials.find((o) => o?.id === vaultAuth.credential);
      if (vaultAuth.credential === c.id) issue(path, 'a credential cannot get its own Key Vault token: name another credential (its token signs this one\'s assertions)');
      else if (!parts.credentialIds.includes(vaultAuth.credential)) issue(path, `no credential with id '${vaultAuth.credential}' is configured`);
      else if (other?.certificate?.keyVault && typeof other.certificate.keyVault.authentication === 'object') {
        issue(path, `'${vaultAuth.credential}' gets its own Key Vault token from another credential: name one that authenticates without Key Vault`);
      }
    }
    if (c?.signIn) {
      const flow = c.signIn.flow;
      if (flow === 'authorization_code' && !c.signIn.redirectUri) {
        issue(['credentials', i, 'signIn', 'redirectUri'], `required for authorization_code: the broker's public URL ending in ${SIGN_IN_CALLBACK_PATH}, registered at the IdP`);
      }
      if (flow === 'authorization_code' && c.signIn.redirectUri && !new URL(c.signIn.redirectUri).pathname.endsWith(SIGN_IN_CALLBACK_PATH)) {
        issue(['credentials', i, 'signIn', 'redirectUri'], `must end in ${SIGN_IN_CALLBACK_PATH}: the broker serves the redirect there (a path prefix before it, for a proxy, is fine)`);
      }
      if (flow === 'device_code' && c.signIn.redirectUri) issue(['credentials', i, 'signIn', 'redirectUri'], 'the device code flow has no redirect: remove redirectUri');
      if (c.provider === 'entra' && c.endpointVersion === 'v1') issue(['credentials', i, 'endpointVersion'], 'delegated credentials use the v2.0 endpoints: set endpointVersion: v2');
      if (c.provider === 'oidc' && !c.issuer) issue(['credentials', i, 'issuer'], 'a delegated credential needs issuer: its discovery document names the authorization, device and revocation endpoints');
      if (c.federatedToken) issue(['credentials', i, 'federatedToken'], 'a delegated credential authenticates the client with a certificate, a client secret, or none (publicClient: true)');
    }
    if (c?.provider === 'entra' && !c.signIn) {
      c.scopes.forEach((s, j) => {
        // Entra v2: one resource per request (AADSTS700022, docs/design.md §10.7).
        if (/\s/.test(s)) issue(['credentials', i, 'scopes', j], 'an entra scope names one resource: <resource>/.default');
      });
    }
  });
  const callerIds = new Set<string>();
  parts.callerIds.forEach((id, i) => {
    if (typeof id !== 'string') return;
    if (callerIds.has(id)) issue(['callers', i, 'id'], `duplicate caller id '${id}'`);
    callerIds.add(id);
  });
  const imds = parts.server?.imdsSidecar;
  if (parts.server && imds?.enabled) {
    if (!callerIds.has(imds.caller)) issue(['server', 'imdsSidecar', 'caller'], `no caller with id '${imds.caller}'`);
    // IMDS has no caller secret: anything that reaches the port gets the caller's tokens.
    if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(parts.server.host)) {
      issue(['server', 'imdsSidecar', 'enabled'], `needs a loopback listener (server.host 127.0.0.1), not '${parts.server.host}'`);
    }
  }
  const keyHashes = new Map<string, string>();
  parts.callers.forEach((caller, i) => {
    if (!caller) return;
    for (const field of ['apiKeySha256', 'identityHeaderSha256'] as const) {
      const hash = caller[field];
      if (!hash) continue;
      const other = keyHashes.get(hash);
      if (other) issue(['callers', i, field], `the same secret hash is already used by caller '${other}'`);
      keyHashes.set(hash, caller.id);
    }
    if (caller.defaultCredential && !caller.allow.some((a) => a.credential === caller.defaultCredential)) {
      issue(['callers', i, 'defaultCredential'], `'${caller.defaultCredential}' is not in this caller's allow list`);
    }
    caller.allow.forEach((a, j) => {
      if (!credentialIds.has(a.credential)) issue(['callers', i, 'allow', j, 'credential'], `no credential with id '${a.credential}' is configured`);
    });
  });
  const delegated = parts.credentials.findIndex((c) => c?.signIn !== undefined);
  if (delegated >= 0 && parts.cache) {
    const redis = !!(parts.cache.redisUrl || parts.cache.redisCluster || parts.cache.redisSentinel);
    // A refresh token is a person's long-lived authority: never at rest in plaintext.
    if (!parts.cache.encryptionKeyFile) {
      issue(['cache', 'encryptionKeyFile'], `required with a delegated credential (credentials[${delegated}] has signIn): refresh tokens are stored encrypted`);
    }
    if (!redis && !parts.cache.stateFile) {
      issue(['cache', 'stateFile'], `required with a delegated credential and the in-memory cache: without it a restart loses every sign-in (or set cache.redisUrl)`);
    }
    if (parts.callers.length > 0 && !parts.callers.some((c) => c?.signIn)) {
      issue(['callers'], `no caller has signIn: true, so nobody could start the sign-in of credentials[${delegated}]`);
    }
  }
  if (parts.cache?.stateFile && (parts.cache.redisUrl || parts.cache.redisCluster || parts.cache.redisSentinel)) {
    issue(['cache', 'stateFile'], 'is for the in-memory cache: with Redis, grants are kept in Redis');
  }
  const topology = parts.cache && redisTopologyProblem(parts.cache);
  if (topology) issue(['cache'], topology);
  if (parts.cache?.encryptionKeyFile && !parts.cache.redisUrl && !parts.cache.redisCluster && !parts.cache.redisSentinel && !parts.cache.stateFile) {
    issue(['cache', 'encryptionKeyFile'], 'encrypts tokens at rest in Redis or in cache.stateFile: set cache.redisUrl, cache.redisCluster, cache.redisSentinel or cache.stateFile too (the in-memory cache never leaves the process)');
  }
  if (parts.cache?.tlsCaFile && !parts.cache.redisUrl) {
    issue(['cache', 'tlsCaFile'], 'is for a rediss:// cache.redisUrl; with redisCluster or redisSentinel set tls.caFile inside it');
  }
  return issues;
}

export type BrokerConfig = z.infer<typeof configSchema>;
export type CredentialConfig = z.infer<typeof credentialSchema>;
export type CallerConfig = z.infer<typeof callerSchema>;
export type CallerJwtConfig = z.infer<typeof callerJwtSchema>;
