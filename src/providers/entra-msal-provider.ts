// Entra ID v2 through msal-node's ConfidentialClientApplication. The assertion comes from our own
// signer through the clientAssertion callback, so header, claims and a fresh jti are ours
// (reference "local IdPs" §2c: MSAL's clientCertificate reuses one jti for 10 minutes).
import {
  ConfidentialClientApplication,
  type INetworkModule,
  type NetworkRequestOptions,
  type NetworkResponse,
} from '@azure/msal-node';
import type { EntraCredentialConfig } from '../config/schema.ts';
import { IdpUnavailable, InternalError } from '../core/errors.ts';
import type { ClientAssertionSigner } from '../credentials/client-assertion-signer.ts';
import { ENTRA_CLOUDS } from './entra-clouds.ts';
import { DEFAULT_RETRY_AFTER_SECONDS, translateErrorResponse } from './oauth-error.ts';
import { parseTokenResponse } from './token-endpoint-client.ts';
import type { IssuedToken, TokenEndpointDescription, TokenProvider, TokenRequest } from './token-provider.ts';

const IDP_NAME = 'Entra ID';

/**
 * One network module per exchange: it applies our timeout, and keeps the raw answer so that the
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

  private async send<T>(method: string, url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    this.urls.push(url);
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      const res = await fetch(url, {
        method,
        headers: options?.headers,
        body: options?.body,
        signal: this.signal ? AbortSignal.any([timeout, this.signal]) : timeout,
        redirect: 'error',
      });
      const text = await res.text();
      let body: unknown = {};
      try {
        body = JSON.parse(text);
      } catch {
        body = {};
      }
      const headers = Object.fromEntries(res.headers);
      this.lastResponse = { status: res.status, headers, body };
      // MSAL expects non-2xx answers returned, not thrown.
      return { status: res.status, headers, body: body as T };
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
    private readonly signer: ClientAssertionSigner,
  ) {
    const host = new URL(config.authorityHost ?? ENTRA_CLOUDS[config.cloud].authorityHost);
    this.origin = host.origin;
    this.knownAuthority = host.host;
    // MSAL insists on an https authority; the token endpoint it POSTs to comes from the pinned
    // metadata, so a plain-http test host works and MSAL makes no discovery call (reference §2a).
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
    // Entra: aud = the exact, tenant-specific token URL posted to (reference §1.3).
    return { tokenEndpoint: this.tokenEndpoint, audience: this.tokenEndpoint };
  }

  async acquire(request: TokenRequest): Promise<IssuedToken> {
    const network = new ExchangeNetworkModule(this.config.timeoutMs, request.signal);
    // A new application per exchange: the broker's cache decides freshness, and MSAL's own
    // throttling state (which rethrows a past 5xx/429 without calling out) never builds up.
    const app = new ConfidentialClientApplication({
      auth: {
        clientId: this.config.clientId,
        authority: this.authority,
        knownAuthorities: [this.knownAuthority],
        authorityMetadata: this.authorityMetadata,
        clientAssertion: async ({ clientId, tokenEndpoint }) => this.signer.sign(tokenEndpoint ?? this.tokenEndpoint, clientId, request.certificate),
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
      return translateErrorResponse(raw.status, raw.body, raw.headers['retry-after'], IDP_NAME);
    }
    if (network.transportFailure) {
      const name = (network.transportFailure as Error).name;
      return new IdpUnavailable(
        `${IDP_NAME}: request to ${this.origin} ${name === 'TimeoutError' ? `timed out after ${this.config.timeoutMs} ms` : 'failed (network error)'}`,
        DEFAULT_RETRY_AFTER_SECONDS,
        { cause: network.transportFailure },
      );
    }
    return new InternalError(`msal-node failed before calling ${IDP_NAME}: ${(err as { errorCode?: string }).errorCode ?? 'unknown error'}`, { cause: err });
  }
}
