import { createHash } from 'node:crypto';
import type { CredentialConfig } from '../config/schema.ts';

/**
 * Scopes compare as sets: "b a" and "a  b" are the same request (RFC 6749 §3.3: space-delimited,
 * order does not matter). Case is kept: resource URIs are case-sensitive at some IdPs.
 */
export function normaliseScope(scope: string): string {
  return [...new Set(scope.split(/\s+/).filter(Boolean))].sort().join(' ');
}

/**
 * A fingerprint of everything that decides which identity a token belongs to, so a changed tenant,
 * client id, endpoint or certificate never serves a token obtained under the old settings.
 */
export function credentialFingerprint(config: CredentialConfig, certificateSha256: string): string {
  const identity =
    config.provider === 'entra'
      ? ['entra', config.endpointVersion, config.cloud, config.authorityHost ?? '', config.tenantId, config.clientId]
      : ['oidc', config.preset, config.issuer ?? '', config.tokenEndpoint ?? '', config.clientId, JSON.stringify(config.tokenParams)];
  return createHash('sha256').update([...identity, certificateSha256].join('\n')).digest('base64url').slice(0, 16);
}

export function tokenCacheKey(credentialId: string, scope: string, fingerprint: string): string {
  return `${credentialId}|${fingerprint}|${scope}`;
}
