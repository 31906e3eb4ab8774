// Generic OAuth 2.0 client credentials (RFC 6749 §4.4) with whatever client authentication the
// credential has (private_key_jwt, RFC 7523 §2.2 / OIDC Core §9; a client secret; a federated token),
// with presets for the assertion audience each IdP requires (docs/design.md §13).
import type { OidcCredentialConfig } from './oidc-schema.ts';
import type { OidcPreset } from './oidc-schema.ts';
import { IdpRejected } from '../../kernel/errors.ts';
import type { ClientAuthentication } from '../../client-auth/client-authentication.ts';
import type { Logger } from '../../observability/logger.ts';
import { scrubSecrets } from '../scrub-secrets.ts';
import { getJson, postTokenRequest } from '../token-endpoint-client.ts';
import type { IssuedToken, TokenEndpointDescription, TokenProvider, TokenRequest } from '../token-provider.ts';

const PRESET_NAMES: Record<OidcPreset, string> = { keycloak: 'Keycloak', okta: 'Okta', auth0: 'Auth0', generic: 'OIDC provider' };

const stripSlash = (s: string) => s.replace(/\/+$/, '');

/**
 * The `aud` each IdP accepts:
 * - keycloak: the realm issuer (accepted alongside the token URL; single value since 26.2, and the
 *   value RFC 7523bis moves every AS towards);
 * - okta: the full token endpoint URL;
 * - auth0: the tenant (or custom-domain) URL with a trailing slash;
 * - generic: the token endpoint URL (RFC 7523 §3 names it as the value to use).
 */
export function audienceFor(preset: OidcPreset, tokenEndpoint: string, issuer: string | undefined): string {
  switch (preset) {
    case 'keycloak': {
      if (issuer) return stripSlash(issuer);
      const realm = /^(.*\/realms\/[^/]+)\/protocol\/openid-connect\/token$/.exec(tokenEndpoint);
      return realm ? realm[1]! : tokenEndpoint;
    }
    case 'auth0':
      return `${new URL(issuer ?? tokenEndpoint).origin}/`;
    case 'okta':
    case 'generic':
      return tokenEndpoint;
  }
}

export class OidcClientCredentialsProvider implements TokenProvider {
  private readonly idpName: string;
  private discovery?: Promise<{ tokenEndpoint: string; issuer?: string }>;
  private warnedOtherHost = false;

  constructor(
    private readonly config: OidcCredentialConfig,
    private readonly auth: ClientAuthentication,
    private readonly logger?: Logger,
  ) {
    this.idpName = PRESET_NAMES[config.preset];
  }

  /** Discovery runs once per process; a failed discovery is not cached, so the next call retries. */
  private resolveEndpoint(signal?: AbortSignal): Promise<{ tokenEndpoint: string; issuer?: string }> {
    if (this.config.tokenEndpoint) {
      return Promise.resolve({ tokenEndpoint: this.config.tokenEndpoint, issuer: this.config.issuer });
    }
    this.discovery ??= this.discover(signal).catch((err: unknown) => {
      this.discovery = undefined;
      throw err;
    });
    return this.discovery;
  }

  private async discover(signal?: AbortSignal): Promise<{ tokenEndpoint: string; issuer: string }> {
    const issuer = this.config.issuer!;
    const url = `${stripSlash(issuer)}/.well-known/openid-configuration`;
    const body = await getJson(url, { timeoutMs: this.config.timeoutMs, signal, idpName: this.idpName });
    const doc = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    const tokenEndpoint = doc.token_endpoint;
    // OIDC Discovery §4.3: the issuer in the document must be the one configured.
    if (typeof doc.issuer !== 'string' || stripSlash(doc.issuer) !== stripSlash(issuer)) {
      throw new IdpRejected(
        `${this.idpName}: discovery at ${url} names issuer ${scrubSecrets(JSON.stringify(doc.issuer) ?? 'nothing').slice(0, 200)}, not ${issuer}`,
        { error: 'invalid_discovery', httpStatus: 200 },
        'set issuer to exactly the issuer the discovery document declares',
        'invalid_discovery',
      );
    }
    const endpoint = typeof tokenEndpoint === 'string' && /^https?:\/\//.test(tokenEndpoint) && URL.canParse(tokenEndpoint) ? new URL(tokenEndpoint) : undefined;
    if (typeof tokenEndpoint !== 'string' || !endpoint) {
      throw new IdpRejected(
        `${this.idpName}: discovery at ${url} has no token_endpoint`,
        { error: 'invalid_discovery', httpStatus: 200 },
        'set tokenEndpoint explicitly or fix the issuer',
        'invalid_discovery',
      );
    }
    // The signed assertion goes to the token endpoint: an https issuer whose document points it at
    // plain http would send it, and get the token back, in the clear (RFC 6749 §3.2: the token
    // endpoint requires TLS). Only an http issuer (tests, the demo) may name an http endpoint.
    if (new URL(issuer).protocol === 'https:' && endpoint.protocol !== 'https:') {
      throw new IdpRejected(
        `${this.idpName}: the discovery document ${url} names an http token_endpoint (${endpoint.origin}${endpoint.pathname}) for an https issuer; refused: the client assertion would be sent in plaintext`,
        { error: 'invalid_discovery', errorDescription: 'token_endpoint is not https', httpStatus: 200 },
        'the discovery document must name an https token_endpoint: fix the IdP (its public URL or the proxy headers it trusts), or set tokenEndpoint explicitly',
        'invalid_discovery',
      );
    }
    if (!this.warnedOtherHost && endpoint.host !== new URL(issuer).host) {
      this.warnedOtherHost = true;
      this.logger?.warn(
        { credentialId: this.config.id, issuer, tokenEndpoint: `${endpoint.origin}${endpoint.pathname}`, discovery: url },
        'discovery points the token endpoint at another host than the issuer: the client assertion is sent there',
      );
    }
    return { tokenEndpoint, issuer: doc.issuer };
  }

  async describeEndpoint(signal?: AbortSignal): Promise<TokenEndpointDescription> {
    const { tokenEndpoint, issuer } = await this.resolveEndpoint(signal);
    return { tokenEndpoint, audience: audienceFor(this.config.preset, tokenEndpoint, issuer) };
  }

  async acquire(request: TokenRequest): Promise<IssuedToken> {
    const { tokenEndpoint, audience } = await this.describeEndpoint(request.signal);
    const parts = await this.auth.authenticate({ clientId: this.config.clientId, tokenEndpoint, audience }, request.use);
    const form = new URLSearchParams(this.config.tokenParams);
    form.set('grant_type', 'client_credentials');
    // With client_secret_basic the header names the client (RFC 6749 §2.3.1); otherwise the form does.
    if (!parts.authorization) form.set('client_id', this.config.clientId);
    for (const [name, value] of Object.entries(parts.form)) form.set(name, value);
    if (request.scope) form.set('scope', request.scope);
    return postTokenRequest(
      tokenEndpoint,
      { form, authorization: parts.authorization },
      { timeoutMs: this.config.timeoutMs, signal: request.signal, idpName: this.idpName, redactions: this.auth.redactions() },
    );
  }
}
