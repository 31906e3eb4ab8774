import type { LoadedCertificate } from '../credentials/certificate.ts';

// One interface for every IdP kind (DESIGN §2). Implementations throw only IdpRejected (the IdP
// answered and refused) or IdpUnavailable (unreachable, timed out, 5xx, 429); no MSAL or fetch error
// type crosses this folder.

export interface IssuedToken {
  accessToken: string;
  tokenType: string;
  /** Lifetime the IdP stated, in seconds from the moment the request was sent. */
  expiresInSeconds: number;
  /** Entra's refresh_in: renew after this many seconds even though the token is still valid. */
  refreshInSeconds?: number;
  /** Scope granted, when the IdP says. */
  scope?: string;
}

export interface TokenRequest {
  /** Normalised scope ('' when none is requested). */
  scope: string;
  signal?: AbortSignal;
  /** Sign with this certificate instead of the current one (retry after a rotation). */
  certificate?: LoadedCertificate;
}

export interface TokenEndpointDescription {
  /** The URL the token request is POSTed to. */
  tokenEndpoint: string;
  /** The `aud` the broker puts in its assertion for this endpoint. */
  audience: string;
}

export interface TokenProvider {
  /** Exchanges one signed client assertion for an access token. */
  acquire(request: TokenRequest): Promise<IssuedToken>;
  /** Where the token request goes and which audience the assertion carries (may run discovery). */
  describeEndpoint(signal?: AbortSignal): Promise<TokenEndpointDescription>;
}
