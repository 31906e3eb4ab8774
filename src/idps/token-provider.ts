import type { ClientAuthUse } from '../client-auth/client-authentication.ts';

// One interface for every IdP kind (docs/design.md §2.3). Implementations throw only IdpRejected (the IdP
// answered and refused) or IdpUnavailable (unreachable, timed out, 5xx, 429); no MSAL or fetch error
// type crosses this folder.

export interface IssuedToken {
  accessToken: string;
  tokenType: string;
  /** Lifetime the IdP stated (expires_in, at least 1), in seconds from the moment the request was sent; undefined when it stated none. */
  expiresInSeconds?: number;
  /** The access token's own expiry (`exp` of a JWT access token), epoch milliseconds, when it has one. */
  expiresAtMs?: number;
  /** Entra's refresh_in: renew after this many seconds even though the token is still valid. */
  refreshInSeconds?: number;
  /** Scope granted, when the IdP says. */
  scope?: string;
}

export interface TokenRequest {
  /** Normalised scope ('' when none is requested). */
  scope: string;
  signal?: AbortSignal;
  /** Authenticate with the client's material from before the last rotation (one retry while the IdP catches up). */
  use?: ClientAuthUse;
}

export interface TokenEndpointDescription {
  /** The URL the token request is POSTed to. */
  tokenEndpoint: string;
  /** The `aud` the broker puts in its assertion for this endpoint. */
  audience: string;
}

export interface TokenProvider {
  /** Exchanges the client's credential for an access token (client credentials grant, RFC 6749 §4.4). */
  acquire(request: TokenRequest): Promise<IssuedToken>;
  /** Where the token request goes and which audience the assertion carries (may run discovery). */
  describeEndpoint(signal?: AbortSignal): Promise<TokenEndpointDescription>;
}
