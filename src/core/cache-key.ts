import { createHash } from 'node:crypto';

/**
 * A fingerprint of everything that decides which identity a token belongs to, so a changed tenant,
 * client id, endpoint or certificate never serves a token obtained under the old settings:
 * `idpIdentity` from the IdP kind (IdpKind.cacheIdentity), `clientIdentity` from the client
 * authentication (a certificate thumbprint; never anything derived from a secret).
 */
export function credentialFingerprint(idpIdentity: readonly string[], clientIdentity: string): string {
  return createHash('sha256').update([...idpIdentity, clientIdentity].join('\n')).digest('base64url').slice(0, 16);
}

export function tokenCacheKey(credentialId: string, scope: string, fingerprint: string): string {
  return `${credentialId}|${fingerprint}|${scope}`;
}
