// Entra ID v2 through msal-node's ConfidentialClientApplication. The assertion comes from our own
// signer through the clientAssertion callback, so header, claims and a fresh jti are ours
// (docs/design.md §8.3: MSAL's clientCertificate reuses one jti for 10 minutes).
import {
  ConfidentialClientApplication,
  type INetworkModule,
  type NetworkRequestOptions,
  type NetworkResponse,
} from '@azure/msal-node';
import type { EntraCredentialConfig } from './entra-schema.ts';
import { InternalError } from '../../kernel/errors.ts';
import type { ClientAuthentication } from '../../client-auth/client-authentication.ts';
import { ENTRA_CLOUDS } from './entra-clouds.ts';
import { outboundRequest } from '../../net/outbound-request.ts';
import { translateErrorResponse } from '../oauth-error.ts';
import { MAX_IDP_BODY_BYTES, parseJsonBody, parseTokenResponse, transportError } from '../token-endpoint-client.ts';
import type { IssuedToken, TokenEndpointDescription, TokenProvider, TokenRequest } from '../token-provider.ts';

const IDP_NAME = 'Entra ID';

/**
 * One network module per exchange: every call msal-node makes goes through the broker's outbound
 * request (one deadline for the whole call, a bounded body), and the raw answer is kept so that the
 * IdP's own error body (error_codes, trace_id) and expires_in/refresh_in reach us untouched.
 */
class ExchangeNetworkModule implements INetworkModule {
  lastResponse?: { status: number; headers: Record<string, string>; body: unknown };
  transportFailure?: unknown;
  readonly urls: string[] = [];

  constructor(
    private readonly timeoutMs: number,
    private readonly signal?: AbortSignal,
  ) {}

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('GET', url, options);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('POST', url, options);
  }

  private async send<T>(method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    this.urls.push(url);
    try {
      const res = await outboundRequest(url, { method, headers: options?.headers, body: options?.body, timeoutMs: this.timeoutMs, maxBodyBytes: MAX_IDP_BODY_BYTES, signal: this.signal });
      const body = parseJsonBody(res.body) ?? {};
      this.lastResponse = { status: res.status, headers: res.headers, body };
      // MSAL expects non-2xx answers returned, not thrown.
      return { status: res.status, headers: res.headers, body: body as T };
    } catch (err) {
      this.transportFailure = err;
      throw err;
    }
  }
}

export class EntraMsalProvider implements TokenProvider {
  private readonly origin: string;
  private readonly tokenEndpoint: string;
  private readonly authorityMetadata: string;
  private readonly authority: string;
  private readonly knownAuthority: string;

  constructor(
    private readonly config: EntraCredentialConfig,
    private readonly auth: ClientAuthentication,
  ) {
    const host = new URL(config.authorityHost ?? ENTRA_CLOUDS[config.cloud].authorityHost);
    this.origin = host.origin;
    this.knownAuthority = host.host;
    // MSAL insists on an https authority; the token endpoint it POSTs to comes from the pinned
    // metadata, so a plain-http test host works and MSAL makes no discovery call (docs/design.md §8.3).
    this.authority = `https://${host.host}/${config.tenantId}`;
    this.tokenEndpoint = `${this.origin}/${config.tenantId}/oauth2/v2.0/token`;
    this.authorityMetadata = JSON.stringify({
      token_endpoint: this.tokenEndpoint,
      authorization_endpoint: `${this.origin}/${config.tenantId}/oauth2/v2.0/authorize`,
      end_session_endpoint: `${this.origin}/${config.tenantId}/oauth2/v2.0/logout`,
      jwks_uri: `${this.origin}/${config.tenantId}/discovery/v2.0/keys`,
      issuer: `https://${host.host}/${config.tenantId}/v2.0`,
    });
  }

  async describeEndpoint(): Promise<TokenEndpointDescription> {
    // Entra: aud = the exact, tenant-specific token URL posted to (docs/design.md §10.3).
    return { tokenEndpoint: this.tokenEndpoint, audience: this.tokenEndpoint };
  }

  async acquire(request: TokenRequest): Promise<IssuedToken> {
    const network = new ExchangeNetworkModule(this.config.timeoutMs, request.signal);
    // Asked for before MSAL is built: msal-node takes a secret only at construction. Both kinds go
    // in the form (formOnly), as Entra takes them.
    const parts = await this.auth.authenticate({ clientId: this.config.clientId, tokenEndpoint: this.tokenEndpoint, audience: this.tokenEndpoint, formOnly: true }, request.use);
    const { client_assertion: clientAssertion, client_secret: clientSecret } = parts.form;
    if (!clientAssertion && !clientSecret) throw new InternalError('the client authentication gave msal-node neither an assertion nor a secret');
    // A new application per exchange: the broker's cache decides freshness, and MSAL's own
    // throttling state (which rethrows a past 5xx/429 without calling out) never builds up.
    const app = new ConfidentialClientApplication({
      auth: {
        clientId: this.config.clientId,
        authority: this.authority,
        knownAuthorities: [this.knownAuthority],
        authorityMetadata: this.authorityMetadata,
        ...(clientAssertion ? { clientAssertion } : { clientSecret }),
      },
      system: { networkClient: network },
    });
    try {
      await app.acquireTokenByClientCredential({ scopes: [request.scope], skipCache: true });
    } catch (err) {
      throw this.translate(err, network);
    }
    const raw = network.lastResponse;
    if (!raw || raw.status < 200 || raw.status >= 300) {
      throw new InternalError('msal-node returned a token without a successful token response');
    }
    return parseTokenResponse(raw.body, IDP_NAME);
  }

  private translate(err: unknown, network: ExchangeNetworkModule): Error {
    const raw = network.lastResponse;
    if (raw && (raw.status < 200 || raw.status >= 300)) {
      return translateErrorResponse(raw.status, raw.body, raw.headers['retry-after'], IDP_NAME, this.auth.redactions());
    }
    if (network.transportFailure) return transportError(network.transportFailure, IDP_NAME);
    if (raw) {
      // A 2xx that msal-node refused to turn into a token: say what is wrong with it, as the other providers do.
      try {
        parseTokenResponse(raw.body, IDP_NAME);
      } catch (unusable) {
        return unusable as Error;
      }
    }
    return new InternalError(`msal-node failed before calling ${IDP_NAME}: ${(err as { errorCode?: string }).errorCode ?? 'unknown error'}`, { cause: err });
  }
}
