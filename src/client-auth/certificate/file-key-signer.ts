// A private key read from a file into this process: node's crypto signs with it directly, in the
// JOSE form each algorithm needs (RFC 7518 §3.3–3.5): PKCS#1 v1.5, PSS with a 32-byte salt and
// MGF1-SHA-256, and ECDSA as R‖S (`dsaEncoding: 'ieee-p1363'`, not DER).
import { constants, sign } from 'node:crypto';
import type { SigningAlgorithm } from './certificate-schema.ts';
import type { LoadedCertificate } from './certificate.ts';
import type { KeySigner, KeySignerStatus } from './key-signer.ts';

export function signWithKey(algorithm: SigningAlgorithm, signingInput: Buffer, key: NonNullable<LoadedCertificate['privateKey']>): Buffer {
  switch (algorithm) {
    case 'RS256':
      return sign('sha256', signingInput, key);
    case 'PS256':
      return sign('sha256', signingInput, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    case 'ES256':
      return sign('sha256', signingInput, { key, dsaEncoding: 'ieee-p1363' });
  }
}

export class FileKeySigner implements KeySigner {
  readonly backend = 'file' as const;

  async sign(algorithm: SigningAlgorithm, signingInput: Buffer, certificate: LoadedCertificate): Promise<Buffer> {
    // The certificate source keeps the key beside its certificate: a rotated pair signs from the moment it is loaded.
    if (!certificate.privateKey) throw new Error('a file-backed certificate without its private key');
    return signWithKey(algorithm, signingInput, certificate.privateKey);
  }

  describe(): Record<string, unknown> {
    return { backend: this.backend };
  }

  status(): KeySignerStatus {
    return { state: 'ok' };
  }

  close(): void {}
}
