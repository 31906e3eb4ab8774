// Microsoft Entra ID as an IdP kind (docs/design.md §10, §11).
import { DEFAULT_ASSERTION_LIFETIME_SECONDS } from '../../client-auth/certificate/certificate-schema.ts';
import type { IdpKind } from '../idp-kind.ts';
import { ENTRA_CLOUDS } from './entra-clouds.ts';
import { EntraMsalProvider } from './entra-msal-provider.ts';
import type { EntraCredentialConfig } from './entra-schema.ts';
import { EntraV1Provider } from './entra-v1-provider.ts';

/**
 * Refusals of the client's credential, after which a just-rotated certificate or secret is retried
 * once with the previous one (Microsoft.Identity.Web does the same for certificates): 700027
 * signature / unknown key, 700024 assertion outside its time range, 7000214 / 1000502 certificate
 * revoked or expired, 7000215 invalid secret, 7000222 expired secret (docs/design.md §11).
 */
const CLIENT_CREDENTIAL_REFUSALS = new Set([700027, 700024, 7000214, 1000502, 7000215, 7000222]);

/** Entra v2 grants app tokens only for `<resource>/.default`; a bare resource means exactly that. */
export function entraScope(value: string): string {
  const trimmed = value.trim();
  return trimmed.endsWith('/.default') ? trimmed : `${trimmed.replace(/\/+$/, '')}/.default`;
}

export const entraIdp: IdpKind<EntraCredentialConfig> = {
  name: 'entra',
  normaliseScope: entraScope,
  scopeForResource: entraScope,
  cacheIdentity: (c) => ['entra', c.endpointVersion, c.cloud, c.authorityHost ?? '', c.tenantId, c.clientId],
  // PS256 + x5t#S256 is what Entra documents and MSAL sends; RS256 keeps the SHA-1 x5t (docs/design.md §10.1).
  assertionDefaults: () => ({ rsaAlgorithm: 'PS256', thumbprintFor: (alg) => (alg === 'RS256' ? 'x5t' : 'x5t#S256'), lifetimeSeconds: DEFAULT_ASSERTION_LIFETIME_SECONDS }),
  // 'ES256' is not a supported signature algorithm for Entra client assertions (AADSTS5002738).
  keyTypeProblem: (keyType) => (keyType === 'rsa' ? undefined : 'Entra ID accepts only RSA certificates (2048+ bits) for client assertions; this one has an EC key'),
  refusedClientCredential: (err) => err.idp.errorCodes?.some((code) => CLIENT_CREDENTIAL_REFUSALS.has(code)) ?? false,
  listingFacts: (c) => ({ endpoint_version: c.endpointVersion, cloud: c.cloud }),
  // The v2.0 issuer of the tenant: its discovery document names the authorize, token and devicecode
  // endpoints (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri).
  // Entra has no RFC 7009 revocation endpoint.
  delegatedIssuer: (c) => `${(c.authorityHost ?? ENTRA_CLOUDS[c.cloud].authorityHost).replace(/\/+$/, '')}/${c.tenantId}/v2.0`,
  // A tenant given by its domain name is declared by its GUID: https://login.microsoftonline.com/{guid}/v2.0.
  delegatedIssuerMatches: (c, declared) => {
    const expected = entraIdp.delegatedIssuer(c);
    const guidForm = new RegExp(`^${expected.slice(0, expected.lastIndexOf(`/${c.tenantId}/`)).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/v2\\.0$`, 'i');
    return declared === expected || guidForm.test(declared);
  },
  // Entra checks a client assertion's aud against the token endpoint URL (docs/design.md §10.1).
  assertionAudience: (_c, tokenEndpoint) => tokenEndpoint,
  // Entra returns a refresh token for offline_access without prompting again.
  authorizationParams: (): Record<string, string> => ({}),
  createProvider: (config, auth) => (config.endpointVersion === 'v1' ? new EntraV1Provider(config, auth) : new EntraMsalProvider(config, auth)),
};
