// A generic OAuth 2.0 / OpenID Connect provider as an IdP kind, with presets for the audience and
// assertion lifetime Keycloak, Okta and Auth0 each require (docs/design.md §13).
import { DEFAULT_ASSERTION_LIFETIME_SECONDS } from '../../client-auth/certificate/certificate-schema.ts';
import { normaliseScopeSet, type IdpKind } from '../idp-kind.ts';
import { OidcClientCredentialsProvider, audienceFor } from './oidc-client-credentials-provider.ts';
import type { OidcCredentialConfig } from './oidc-schema.ts';

/** Auth0: "max 5 min, ≤ 1 min recommended" for private_key_jwt assertions. */
export const AUTH0_ASSERTION_LIFETIME_SECONDS = 60;

export const oidcIdp: IdpKind<OidcCredentialConfig> = {
  name: 'oidc',
  normaliseScope: normaliseScopeSet,
  // OIDC has no resources; a credential may list one as a scope (managed-identity clients send resources).
  scopeForResource: () => undefined,
  cacheIdentity: (c) => ['oidc', c.preset, c.issuer ?? '', c.tokenEndpoint ?? '', c.clientId, JSON.stringify(c.tokenParams)],
  assertionDefaults: (c) => ({
    rsaAlgorithm: 'RS256',
    thumbprintFor: () => 'x5t#S256',
    lifetimeSeconds: c.preset === 'auth0' ? AUTH0_ASSERTION_LIFETIME_SECONDS : DEFAULT_ASSERTION_LIFETIME_SECONDS,
  }),
  keyTypeProblem: () => undefined,
  // RFC 6749 §5.2: invalid_client is "client authentication failed". Auth0 answers a wrong secret
  // with 401 access_denied "Unauthorized", older Keycloak with 401 unauthorized_client "Invalid client
  // secret" (docs/design.md §13): on a 401 those mean the same.
  refusedClientCredential: (err) =>
    err.idp.error === 'invalid_client' || (err.idp.httpStatus === 401 && (err.idp.error === 'access_denied' || err.idp.error === 'unauthorized_client')),
  listingFacts: (c) => ({ preset: c.preset }),
  delegatedIssuer: (c) => c.issuer ?? '',
  delegatedIssuerMatches: (c, declared) => declared.replace(/\/+$/, '') === (c.issuer ?? '').replace(/\/+$/, ''),
  assertionAudience: (c, tokenEndpoint, issuer) => audienceFor(c.preset, tokenEndpoint, issuer),
  // tokenParams (Auth0's audience: https://auth0.com/docs/secure/tokens/access-tokens/get-access-tokens)
  // go on the authorization request too; OIDC Core §11: a refresh token for offline_access is issued
  // when prompt contains consent (oidc-provider requires it).
  authorizationParams: (c, scopes): Record<string, string> => ({ ...c.tokenParams, ...(scopes.includes('offline_access') ? { prompt: 'consent' } : {}) }),
  createProvider: (config, auth, logger) => new OidcClientCredentialsProvider(config, auth, logger),
};
