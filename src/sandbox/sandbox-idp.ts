// A real OAuth 2.0 authorization server (oidc-provider) for the demo and the tests: client
// credentials with private_key_jwt, enforcing aud, exp, signature and single-use jti. It is a
// sandbox: in-memory, loopback only, clients registered from throw-away certificates.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { X509Certificate, generateKeyPairSync, randomUUID } from 'node:crypto';
import { computeThumbprints } from '../client-auth/certificate/thumbprints.ts';

export interface SandboxClient {
  clientId: string;
  /** PEM certificate whose key signs this client's assertions. */
  certificatePem: string;
  /** Space-separated scopes the client may get (default "api.read api.write"). */
  scope?: string;
}

export interface CapturedAssertion {
  clientId?: string;
  assertion: string;
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  status: number;
  /** The server-side reason for a refusal (oidc-provider's error_detail). */
  errorDetail?: string;
}

export interface SandboxIdp {
  issuer: string;
  tokenEndpoint: string;
  jwksUri: string;
  captured: CapturedAssertion[];
  /** "METHOD /path" of every request received, in order. */
  requests: string[];
  close(): Promise<void>;
}

export interface SandboxIdpOptions {
  clients: SandboxClient[];
  host?: string;
  port?: number;
  /** Path under the origin for the issuer, e.g. "/realms/ehr", or "/" for an Auth0-style issuer (default none). */
  issuerPath?: string;
  /** Lifetime of issued access tokens in seconds (default 3600). */
  accessTokenTtlSeconds?: number;
}

export const SANDBOX_SCOPES = ['api.read', 'api.write'];
export const SANDBOX_RESOURCE = 'https://api.sandbox.test';

function decodePart(part: string | undefined): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** A minimal in-memory adapter: the same as oidc-provider's default, without its start-up warning. */
function memoryAdapterFactory() {
  const store = new Map<string, { payload: Record<string, unknown>; expiresAt?: number }>();
  return class SandboxAdapter {
    constructor(private readonly model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      store.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    }
    async find(id: string) {
      const entry = store.get(this.key(id));
      if (!entry || (entry.expiresAt && entry.expiresAt < Date.now())) return undefined;
      return entry.payload;
    }
    async findByUserCode() {
      return undefined;
    }
    async findByUid() {
      return undefined;
    }
    async consume(id: string) {
      const entry = store.get(this.key(id));
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(this.key(id));
    }
    async revokeByGrantId() {}
  };
}

/**
 * Serves an oidc-provider callback on the server; with an issuer path, mounted under it as Express
 * would (url stripped, originalUrl kept), and 404 elsewhere.
 */
export function serveUnder(server: Server, callback: (req: IncomingMessage, res: ServerResponse) => unknown, issuerPath = ''): void {
  const mountPath = issuerPath.replace(/\/$/, '');
  server.on('request', (req: IncomingMessage & { originalUrl?: string }, res: ServerResponse) => {
    if (!mountPath) return callback(req, res);
    if (!req.url?.startsWith(`${mountPath}/`)) {
      res.writeHead(404).end();
      return;
    }
    req.originalUrl = req.url;
    req.url = req.url.slice(mountPath.length);
    return callback(req, res);
  });
}

export async function startSandboxIdp(options: SandboxIdpOptions): Promise<SandboxIdp> {
  // oidc-provider warns on every Node release it was not built for; the sandbox works on Node 20.
  const originalWarn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING')) return;
    originalWarn(...args);
  };
  const { default: Provider } = await import('oidc-provider');
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${options.host ?? '127.0.0.1'}:${port}${options.issuerPath ?? ''}`;
  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ttl = options.accessTokenTtlSeconds ?? 3600;

  const provider = new Provider(issuer, {
    adapter: memoryAdapterFactory(),
    scopes: ['openid', ...SANDBOX_SCOPES],
    jwks: { keys: [{ ...signingKey, kid: randomUUID(), use: 'sig', alg: 'RS256' }] },
    clients: options.clients.map((c) => {
      const cert = new X509Certificate(c.certificatePem);
      const thumbprints = computeThumbprints(cert.raw);
      return {
        client_id: c.clientId,
        token_endpoint_auth_method: 'private_key_jwt',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: c.scope ?? SANDBOX_SCOPES.join(' '),
        jwks: {
          keys: [{ ...cert.publicKey.export({ format: 'jwk' }), x5c: [cert.raw.toString('base64')], x5t: thumbprints.x5t, 'x5t#S256': thumbprints.x5tS256 }],
        },
      };
    }),
    ttl: { ClientCredentials: () => ttl },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => SANDBOX_RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, resource: string) => ({
          scope: SANDBOX_SCOPES.join(' '),
          audience: resource,
          accessTokenTTL: ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  } as never);
  provider.proxy = false;

  const captured: CapturedAssertion[] = [];
  // The refusal reason is only given server-side, in the grant.error event (docs/design.md §8.2).
  provider.on('grant.error', (ctx: { state: Record<string, unknown> }, err: { error_detail?: string }) => {
    ctx.state.errorDetail = err.error_detail;
  });
  provider.use(async (ctx, next) => {
    await next();
    const params = (ctx as unknown as { oidc?: { params?: Record<string, unknown> } }).oidc?.params;
    const assertion = params?.client_assertion;
    if (typeof assertion === 'string') {
      const [h, p] = assertion.split('.');
      captured.push({
        clientId: typeof params?.client_id === 'string' ? params.client_id : undefined,
        assertion,
        header: decodePart(h),
        claims: decodePart(p),
        status: ctx.status,
        errorDetail: ctx.status >= 400 ? (ctx.state.errorDetail as string | undefined) : undefined,
      });
    }
  });

  const requests: string[] = [];
  server.on('request', (req: { method?: string; url?: string }) => requests.push(`${req.method} ${req.url?.split('?')[0]}`));
  serveUnder(server, provider.callback(), options.issuerPath);
  const base = `http://${options.host ?? '127.0.0.1'}:${port}${(options.issuerPath ?? '').replace(/\/$/, '')}`;
  return {
    issuer,
    tokenEndpoint: `${base}/token`,
    jwksUri: `${base}/jwks`,
    captured,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        console.warn = originalWarn;
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
