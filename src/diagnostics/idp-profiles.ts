// What each IdP accepts in a client assertion, as far as its documentation says (docs/design.md
// §13, table of assertion rules by IdP; §10 for Entra). Where a value is not documented, the comment
// says so and the rules that use it phrase their findings as warnings, not as certainties.
import type { IdpProfileName } from './assertion-rule.ts';

export interface IdpProfile {
  kind: IdpProfileName;
  name: string;
  /** `alg` values accepted for private_key_jwt. */
  algorithms: readonly string[];
  /** Clock skew the IdP tolerates on nbf / exp / iat, in seconds. */
  skewSeconds: number;
  skewDocumented: boolean;
  /** Longest assertion life (exp − iat, or exp − now) in seconds, and whether longer ones are refused. */
  maxLifetimeSeconds: number;
  lifetimeEnforced: boolean;
  jti: 'required' | 'recommended' | 'optional';
  /** A replayed jti is refused (one assertion per request). */
  jtiSingleUse: boolean;
  /** What a refused client assertion comes back as, when nothing more specific is known. */
  clientAuthError: string;
}

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

export const IDP_PROFILES: Readonly<Record<IdpProfileName, IdpProfile>> = {
  entra: {
    kind: 'entra',
    name: 'Entra ID',
    // PS256 (current doc) and RS256 (older doc, MSAL fallback); ES256 → AADSTS5002738 (docs/design.md §10.1, §10.5).
    algorithms: ['PS256', 'RS256'],
    // Undocumented (docs/design.md §10.4, §10.11); 5 min is the usual Microsoft identity leeway.
    skewSeconds: 300,
    skewDocumented: false,
    // "keep it short - 5-10 minutes after nbf at most … doesn't place restrictions on the exp time" (docs/design.md §10.2).
    maxLifetimeSeconds: 600,
    lifetimeEnforced: false,
    // Documented as "a GUID, unique"; MSAL reuses assertions, so Entra does not enforce one-time use (docs/design.md §10.2).
    jti: 'recommended',
    jtiSingleUse: false,
    clientAuthError: 'invalid_client',
  },
  keycloak: {
    kind: 'keycloak',
    name: 'Keycloak',
    // Any asymmetric alg, or exactly the client's token_endpoint_auth_signing_alg; none/HS rejected (docs/design.md §13.1).
    algorithms: ASYMMETRIC,
    skewSeconds: 15,
    skewDocumented: true,
    // The limit is on the assertion's age (client setting), not its lifetime (docs/design.md §13.1).
    maxLifetimeSeconds: 600,
    lifetimeEnforced: false,
    jti: 'required',
    jtiSingleUse: true,
    clientAuthError: 'invalid_client',
  },
  okta: {
    kind: 'okta',
    name: 'Okta',
    // Okta signs and verifies RSA and EC keys; PS* is not offered for private_key_jwt.
    algorithms: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512'],
    skewSeconds: 60, // undocumented
    skewDocumented: false,
    // "exp … must be a maximum of only an hour in the future" (developer.okta.com, create-sign-jwt).
    maxLifetimeSeconds: 3600,
    lifetimeEnforced: true,
    // "(Optional) … used to prevent the JWT from being replayed".
    jti: 'optional',
    jtiSingleUse: true,
    clientAuthError: 'invalid_client',
  },
  auth0: {
    kind: 'auth0',
    name: 'Auth0',
    // Credential algorithms Auth0 offers: RS256, RS384, PS256; "must match the algorithm specified when you created your application credential".
    algorithms: ['RS256', 'RS384', 'PS256'],
    skewSeconds: 60, // undocumented
    skewDocumented: false,
    // "Auth0 supports a maximum of 5 minutes as token lifetime" (auth0.com, authenticate-with-private-key-jwt).
    maxLifetimeSeconds: 300,
    lifetimeEnforced: true,
    jti: 'required',
    jtiSingleUse: true,
    clientAuthError: 'invalid_client',
  },
  generic: {
    kind: 'generic',
    name: 'OIDC provider',
    algorithms: ASYMMETRIC,
    // oidc-provider's default clockTolerance; other servers vary.
    skewSeconds: 15,
    skewDocumented: false,
    maxLifetimeSeconds: 600,
    lifetimeEnforced: false,
    // OIDC Core §9: jti REQUIRED for private_key_jwt; oidc-provider refuses a replayed one.
    jti: 'required',
    jtiSingleUse: true,
    clientAuthError: 'invalid_client',
  },
};
