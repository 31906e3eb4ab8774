// Who holds a certificate credential's private key and signs with it: a key file read into this
// process, a PKCS#11 token (an HSM) or Azure Key Vault. The assertion signer builds the JWS signing
// input and asks for its signature; it never sees where the key is.
import type { SigningAlgorithm } from './certificate-schema.ts';
import type { LoadedCertificate } from './certificate.ts';

export type KeyBackend = 'file' | 'pkcs11' | 'keyVault';

export interface KeySignerStatus {
  /** ok: signed (or opened) last time; unavailable: the last attempt failed and no signature is possible now. */
  state: 'ok' | 'unavailable' | 'not_yet_used';
  problem?: string;
}

export interface KeySigner {
  readonly backend: KeyBackend;
  /**
   * The JWS signature over `signingInput` (RFC 7515 §5.1): RSASSA-PKCS1-v1_5 or RSASSA-PSS bytes, or
   * for ES256 the 64-byte R‖S (RFC 7518 §3.4). `certificate` is the one the assertion names (the file
   * backend signs with its key). Throws CredentialUnavailable when the key cannot sign now.
   */
  sign(algorithm: SigningAlgorithm, signingInput: Buffer, certificate: LoadedCertificate): Promise<Buffer>;
  /** Where the key lives, for diagnostics and `inspect`: never key material or a PIN. */
  describe(): Record<string, unknown>;
  status(): KeySignerStatus;
  close(): void;
}
