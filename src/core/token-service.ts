// Cache-aside token service (DESIGN §6 "Cache"): a token is served from the cache while it has at
// least min_ttl_seconds left, otherwise one exchange per key runs at a time in this process and
// every concurrent request for that key waits on it. A token is never served past its expiry.
import type { CredentialConfig } from '../config/schema.ts';
import type { CachedToken, TokenCache } from '../cache/token-cache.ts';
import type { CertificateSource } from '../credentials/certificate-source.ts';
import type { ClientAssertionSigner } from '../credentials/client-assertion-signer.ts';
import type { TokenProvider } from '../providers/token-provider.ts';
import type { Logger } from '../observability/logger.ts';
import { credentialFingerprint, tokenCacheKey } from './cache-key.ts';
import type { Clock } from './clock.ts';
import { IdpUnavailable, UnknownCredential } from './errors.ts';

export type CacheOutcome = 'hit' | 'miss' | 'refreshed';

/** Everything the broker holds for one configured credential. */
export interface CredentialRuntime {
  config: CredentialConfig;
  certificates: CertificateSource;
  signer: ClientAssertionSigner;
  provider: TokenProvider;
}

export interface ServedToken extends CachedToken {
  credentialId: string;
  /** The normalised scope the token was requested for. */
  requestedScope: string;
  cacheOutcome: CacheOutcome;
}

export interface TokenQuery {
  credentialId: string;
  /** Already normalised and allowed. */
  scope: string;
  minTtlSeconds: number;
}

export class TokenService {
  private readonly inflight = new Map<string, Promise<CachedToken>>();

  constructor(
    private readonly credentials: ReadonlyMap<string, CredentialRuntime>,
    private readonly cache: TokenCache,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  credential(id: string): CredentialRuntime {
    const runtime = this.credentials.get(id);
    if (!runtime) throw new UnknownCredential(id);
    return runtime;
  }

  listCredentials(): CredentialRuntime[] {
    return [...this.credentials.values()];
  }

  async getToken(query: TokenQuery): Promise<ServedToken> {
    const runtime = this.credential(query.credentialId);
    const key = this.cacheKey(runtime, query.scope);
    const minTtlMs = query.minTtlSeconds * 1000;
    const cached = await this.cache.get(key);
    if (cached && cached.expiresAt - this.clock.now() >= minTtlMs) {
      return this.served(cached, query, 'hit');
    }
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.exchange(runtime, query.scope, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const token = await pending;
    const now = this.clock.now();
    if (token.expiresAt - now < minTtlMs && token.obtainedAt >= now - 1000) {
      // The contract is literal: every such request makes an exchange. Say so, once per exchange.
      this.logger.warn(
        { credentialId: query.credentialId, scope: query.scope, minTtlSeconds: query.minTtlSeconds, lifetimeSeconds: Math.floor((token.expiresAt - token.obtainedAt) / 1000) },
        'min_ttl_seconds exceeds the lifetime the identity provider gives: every such request makes an exchange',
      );
    }
    if (token.expiresAt <= now) {
      // An IdP that answers with expires_in 0 (or a clock jump) must not make us hand out a dead token.
      throw new IdpUnavailable('the identity provider issued a token that is already expired', 5);
    }
    return this.served(token, query, cached ? 'refreshed' : 'miss');
  }

  /** One exchange, bypassing the cache (diagnostic probe). The token is not stored. */
  async exchangeUncached(credentialId: string, scope: string): Promise<CachedToken> {
    const runtime = this.credential(credentialId);
    const requestedAt = this.clock.now();
    const issued = await runtime.provider.acquire({ scope });
    return this.toCached(issued, requestedAt);
  }

  cacheKey(runtime: CredentialRuntime, scope: string): string {
    return tokenCacheKey(runtime.config.id, scope, credentialFingerprint(runtime.config, runtime.certificates.current().thumbprints.sha256Hex));
  }

  private async exchange(runtime: CredentialRuntime, scope: string, key: string): Promise<CachedToken> {
    // Expiry counts from when the request was sent, so network time never stretches a token's life.
    const requestedAt = this.clock.now();
    const issued = await runtime.provider.acquire({ scope });
    const token = this.toCached(issued, requestedAt);
    this.logger.info(
      {
        credentialId: runtime.config.id,
        scope,
        durationMs: this.clock.now() - requestedAt,
        expiresInSeconds: issued.expiresInSeconds,
        refreshInSeconds: issued.refreshInSeconds,
      },
      'token exchanged with the identity provider',
    );
    await this.cache.set(key, token);
    return token;
  }

  private toCached(issued: Awaited<ReturnType<TokenProvider['acquire']>>, requestedAt: number): CachedToken {
    return {
      accessToken: issued.accessToken,
      tokenType: issued.tokenType,
      expiresAt: requestedAt + issued.expiresInSeconds * 1000,
      refreshAt: issued.refreshInSeconds !== undefined ? requestedAt + issued.refreshInSeconds * 1000 : undefined,
      obtainedAt: requestedAt,
      scope: issued.scope,
    };
  }

  private served(token: CachedToken, query: TokenQuery, cacheOutcome: CacheOutcome): ServedToken {
    return { ...token, credentialId: query.credentialId, requestedScope: query.scope, cacheOutcome };
  }
}
