import { createHash } from 'node:crypto';

/**
 * Certificate thumbprints in every form an IdP or a portal shows them.
 * RFC 7515 §4.1.7/§4.1.8: x5t and x5t#S256 are base64url of the *binary* digest of the DER —
 * not of the hex string (the ADAL regression behind "invalid signature", docs/design.md §10.1).
 */
export interface Thumbprints {
  /** Upper-case hex SHA-1, as the Azure portal lists it. */
  sha1Hex: string;
  /** Upper-case hex SHA-256. */
  sha256Hex: string;
  /** base64url(SHA-1(DER)): the `x5t` header. */
  x5t: string;
  /** base64url(SHA-256(DER)): the `x5t#S256` header. */
  x5tS256: string;
}

export function computeThumbprints(der: Buffer): Thumbprints {
  const sha1 = createHash('sha1').update(der).digest();
  const sha256 = createHash('sha256').update(der).digest();
  return {
    sha1Hex: sha1.toString('hex').toUpperCase(),
    sha256Hex: sha256.toString('hex').toUpperCase(),
    x5t: sha1.toString('base64url'),
    x5tS256: sha256.toString('base64url'),
  };
}
