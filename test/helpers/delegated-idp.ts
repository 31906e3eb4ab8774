// A real OpenID Provider (oidc-provider) for the delegated-credential tests: a person signs in once
// (authorization code + PKCE, or device code) on its dev interaction pages, and the broker redeems
// the refresh token later. Refresh tokens rotate on every use, and a replayed one revokes the whole
// grant, so reuse detection and "sign out everywhere" can be tested. In-memory, loopback only.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { serveUnder } from '../../src/sandbox/sandbox-idp.ts';
import type { Adapter, AdapterPayload, Configuration, KoaContextWithOIDC } from 'oidc-provider';

export interface DelegatedIdpOptions {
  /** redirect_uris registered for both clients (the broker's /v1/sign-in/callback URLs). */
  redirectUris: string[];
  /** Access token lifetime, seconds (default 10). */
  accessTokenTtlSeconds?: number;
  /** Refresh token lifetime, seconds (default 1 day). */
  refreshTokenTtlSeconds?: number;
  /** Issuer path, e.g. '/realms/ehr', or '/<tenant>/v2.0' to stand where Entra's v2.0 issuer is (default none). */
  issuerPath?: string;
  port?: number; // default 0 (free port)
  /** The public client's id (default 'public-app'; an Entra credential needs a GUID). */
  publicClientId?: string;
  /** Scopes the IdP knows besides openid, offline_access, profile, email and openehr (e.g. an Entra-style 'api://cdr/.default'). */
  extraScopes?: string[];
}

export interface DelegatedIdp {
  issuer: string; // http://127.0.0.1:PORT[path]
  publicClientId: string; // 'public-app': token_endpoint_auth_method 'none'
  confidentialClientId: string; // 'confidential-app': client_secret_post
  confidentialClientSecret: string; // random per start
  /** Counters from the provider's own events. */
  stats: {
    codeRedemptions: number; // successful authorization_code grants
    refreshRedemptions: number; // successful refresh_token grants
    refreshReuse: number; // refresh_token grants refused because the token was already used (replay → grant revoked)
    invalidGrant: number; // every token-endpoint invalid_grant, whatever the reason
    deviceCodeRedemptions: number;
    revocations: number; // RFC 7009 revocation endpoint calls that succeeded
  };
  /** Revokes every grant (as an admin "sign out everywhere"): the stored refresh tokens stop working. Returns how many grants. */
  revokeAllGrants(): Promise<number>;
  /** Every request as "METHOD /path" (no query), in order. */
  requests: string[];
  close(): Promise<void>;
}

const PUBLIC_CLIENT_ID = 'public-app';
const CONFIDENTIAL_CLIENT_ID = 'confidential-app';
const SCOPES = ['openid', 'offline_access', 'profile', 'email', 'openehr'];
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

interface Entry {
  payload: AdapterPayload;
  expiresAt?: number;
}

/**
 * The whole store, shared by every model's adapter so revokeAllGrants can see across them. Unlike
 * oidc-provider's own memory adapter it has no LRU cap (a long test cannot evict a live grant).
 */
function memoryAdapterFactory(store: Map<string, Entry>) {
  const live = (key: string): Entry | undefined => {
    const entry = store.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry;
  };
  const findBy = (model: string, match: (p: AdapterPayload) => boolean): AdapterPayload | undefined => {
    for (const key of store.keys()) {
      if (!key.startsWith(`${model}:`)) continue;
      const entry = live(key);
      if (entry && match(entry.payload)) return entry.payload;
    }
    return undefined;
  };
  return class DelegatedIdpAdapter implements Adapter {
    constructor(private readonly model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      store.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    }
    async find(id: string) {
      return live(this.key(id))?.payload;
    }
    // The device flow's verification page looks the DeviceCode up by what the person typed (RFC 8628 §3.3).
    async findByUserCode(userCode: string) {
      return findBy(this.model, (p) => p.userCode === userCode);
    }
    // Sessions are found by their uid (e.g. on end_session and back from an interaction).
    async findByUid(uid: string) {
      return findBy(this.model, (p) => p.uid === uid);
    }
    // A consumed refresh token stays stored, marked: presenting it again is what triggers reuse detection.
    async consume(id: string) {
      const entry = live(this.key(id));
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(this.key(id));
    }
    // Really deletes: after a replay or a revocation every token of the grant must stop working.
    async revokeByGrantId(grantId: string) {
      for (const [key, entry] of store) {
        if (key.startsWith(`${this.model}:`) && entry.payload.grantId === grantId) store.delete(key);
      }
    }
  };
}

/** Everyone is whoever they typed on the dev login page; the claims are derived from that login. */
function accountClaims(login: string) {
  return {
    sub: login,
    name: login,
    preferred_username: login,
    email: login.includes('@') ? login : `${login}@example.test`,
    email_verified: true,
  };
}

export async function startDelegatedIdp(options: DelegatedIdpOptions): Promise<DelegatedIdp> {
  // oidc-provider warns on every Node release it was not built for and on dev-only features, and
  // prints a NOTICE for each default helper it calls; none of it is actionable in a test.
  const originalWarn = console.warn;
  const originalInfo = console.info;
  const quiet =
    (original: (...args: unknown[]) => void, marker: string) =>
    (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes(marker)) return;
      original(...args);
    };
  const quietWarn = quiet(originalWarn, 'oidc-provider WARNING');
  const quietInfo = quiet(originalInfo, 'oidc-provider NOTICE');
  console.warn = quietWarn;
  console.info = quietInfo;
  const { default: Provider } = await import('oidc-provider');

  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}${options.issuerPath ?? ''}`;
  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const accessTtl = options.accessTokenTtlSeconds ?? 10;
  const refreshTtl = options.refreshTokenTtlSeconds ?? 24 * 60 * 60;
  const confidentialClientSecret = randomBytes(32).toString('base64url');
  const store = new Map<string, Entry>();

  const client = {
    // Both clients may do everything a delegated sign-in needs: code + PKCE, refresh, device code.
    grant_types: ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT],
    response_types: ['code'],
    redirect_uris: options.redirectUris,
    scope: [...SCOPES, ...(options.extraScopes ?? [])].join(' '),
    // 'web' accepts http loopback redirect URIs for the code flow and matches them exactly
    // ('native' would ignore the port, RFC 8252 §7.3); the broker is a web server, not an app.
    application_type: 'web',
  } as const;

  const configuration: Configuration = {
    adapter: memoryAdapterFactory(store),
    clients: [
      { ...client, client_id: options.publicClientId ?? PUBLIC_CLIENT_ID, token_endpoint_auth_method: 'none' },
      { ...client, client_id: CONFIDENTIAL_CLIENT_ID, client_secret: confidentialClientSecret, token_endpoint_auth_method: 'client_secret_post' },
    ],
    jwks: { keys: [{ ...signingKey, kid: randomUUID(), use: 'sig', alg: 'RS256' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: [...SCOPES, ...(options.extraScopes ?? [])],
    // The ID token of a code grant carries the claims of its scope 'openid' only (conformIdTokenClaims),
    // so the identity the broker shows is mapped there; profile/email add them at userinfo too.
    claims: {
      openid: ['sub', 'name', 'preferred_username', 'email'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => accountClaims(sub) }),
    // PKCE for every client, confidential ones included (RFC 9700 §2.1.1); oidc-provider 9 only does S256.
    pkce: { required: () => true },
    // A new refresh token on every use; a consumed one presented again revokes the grant
    // (RFC 9700 §4.14.2, lib/actions/grants/refresh_token.js).
    rotateRefreshToken: true,
    ttl: {
      AccessToken: accessTtl,
      RefreshToken: refreshTtl,
      AuthorizationCode: 60,
      DeviceCode: 600,
      IdToken: 3600,
      Interaction: 3600,
      Session: 24 * 60 * 60,
      // The grant outlives any refresh token, so a refresh token's own expiry is what ends it.
      Grant: Math.max(refreshTtl, 14 * 24 * 60 * 60),
    },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
  };
  const provider = new Provider(issuer, configuration);
  provider.proxy = false;

  const stats = { codeRedemptions: 0, refreshRedemptions: 0, refreshReuse: 0, invalidGrant: 0, deviceCodeRedemptions: 0, revocations: 0 };
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const grantType = ctx.oidc.params?.grant_type;
    if (grantType === 'authorization_code') stats.codeRedemptions += 1;
    else if (grantType === 'refresh_token') stats.refreshRedemptions += 1;
    else if (grantType === DEVICE_CODE_GRANT) stats.deviceCodeRedemptions += 1;
  });
  provider.on('grant.error', (ctx: KoaContextWithOIDC, err) => {
    if (err.error !== 'invalid_grant') return;
    stats.invalidGrant += 1;
    // The detail only oidc-provider sees; the client just gets invalid_grant (lib/actions/grants/refresh_token.js).
    if (ctx.oidc.params?.grant_type === 'refresh_token' && err.error_detail === 'refresh token already used') stats.refreshReuse += 1;
  });
  // oidc-provider 9 emits no revocation.success; RFC 7009 §2.2 answers 200 for every accepted call
  // (also for a token that was already invalid), so count those.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'revocation' && ctx.status === 200) stats.revocations += 1;
  });

  const requests: string[] = [];
  server.on('request', (req: IncomingMessage) => requests.push(`${req.method} ${req.url?.split('?')[0]}`));
  serveUnder(server, provider.callback(), options.issuerPath);

  return {
    issuer,
    publicClientId: options.publicClientId ?? PUBLIC_CLIENT_ID,
    confidentialClientId: CONFIDENTIAL_CLIENT_ID,
    confidentialClientSecret,
    stats,
    requests,
    async revokeAllGrants() {
      // What lib/helpers/revoke.js does per grant, for all of them at once, plus the sessions:
      // the next sign-in starts from the login form again.
      const grantIds = [...store.keys()].filter((key) => key.startsWith('Grant:')).map((key) => key.slice('Grant:'.length));
      const revoked = new Set(grantIds);
      for (const [key, entry] of store) {
        const grantId = entry.payload.grantId;
        if (key.startsWith('Grant:') || key.startsWith('Session:') || (grantId !== undefined && revoked.has(grantId))) store.delete(key);
      }
      return grantIds.length;
    },
    close: () =>
      new Promise<void>((resolve) => {
        // Only undo our own patch: another provider started later may have wrapped ours.
        if (console.warn === quietWarn) console.warn = originalWarn;
        if (console.info === quietInfo) console.info = originalInfo;
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
