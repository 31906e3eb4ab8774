// The `certificate` kind: a client assertion signed with the credential's private key (RFC 7523 §2.2
// private_key_jwt), a fresh one for every request, carrying the certificate's thumbprint.
import type { AssertionPreview, ClientAuthentication, ClientAuthParts, ClientAuthStatus, ClientAuthTarget, ClientAuthUse } from '../client-authentication.ts';
import type { LoadedCertificate } from './certificate.ts';
import { EXPIRY_WARNING_DAYS, type CertificateSource } from './certificate-source.ts';
import type { ClientAssertionSigner } from './client-assertion-signer.ts';

/** RFC 7521 §4.2: the assertion type of a JWT client assertion. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const DAY_MS = 86_400_000;

export class CertificateAuthentication implements ClientAuthentication {
  readonly kind = 'certificate' as const;

  constructor(
    readonly certificates: CertificateSource & { start?(): void; stop?(): void },
    readonly signer: ClientAssertionSigner,
  ) {}

  identity(): string {
    return this.certificates.current().thumbprints.sha256Hex;
  }

  previousIdentity(): string | undefined {
    return this.certificates.previous()?.thumbprints.sha256Hex;
  }

  hasPrevious(): boolean {
    return this.certificates.previous() !== undefined;
  }

  assertionAlgorithm(): string {
    return this.signer.profile.algorithm;
  }

  signingCertificate(): LoadedCertificate {
    return this.certificates.current();
  }

  async authenticate(target: ClientAuthTarget, use: ClientAuthUse = 'current'): Promise<ClientAuthParts> {
    const certificate = use === 'previous' ? this.certificates.previous() : undefined;
    return {
      form: {
        client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
        client_assertion: await this.signer.sign(target.audience, target.clientId, certificate),
      },
    };
  }

  status(nowMs: number): ClientAuthStatus {
    const cert = this.certificates.current();
    const notAfter = cert.notAfter.getTime();
    const status = notAfter <= nowMs ? 'expired' : notAfter - nowMs < EXPIRY_WARNING_DAYS * DAY_MS ? 'expiring_soon' : 'ok';
    const reloadProblem = this.certificates.reloadProblem();
    const signer = this.signer.keySigner.status();
    return {
      status,
      detail: {
        not_after: cert.notAfter.toISOString(),
        days_left: Math.floor((notAfter - nowMs) / DAY_MS),
        thumbprint: cert.thumbprints.sha1Hex,
        ...(reloadProblem ? { reload_problem: reloadProblem } : {}),
        // Where the key lives, and whether it signed last time (an HSM or a vault can be away).
        key: this.signer.keySigner.backend,
        ...(this.signer.keySigner.backend !== 'file' ? { signer: signer.state } : {}),
        ...(signer.problem ? { signer_problem: signer.problem } : {}),
      },
    };
  }

  expiresAt(): number {
    return this.certificates.current().notAfter.getTime();
  }

  describe(): Record<string, unknown> {
    const cert = this.certificates.current();
    return {
      kind: this.kind,
      files: cert.files,
      algorithm: this.signer.profile.algorithm,
      thumbprint_header: this.signer.profile.thumbprint,
      key: this.signer.keySigner.describe(),
      ...(this.certificates.reloadProblem() ? { reload_problem: this.certificates.reloadProblem() } : {}),
    };
  }

  previewAssertion(target: ClientAuthTarget, nowMs: number): AssertionPreview {
    return {
      header: this.signer.buildHeader() as unknown as Record<string, unknown>,
      claims: target.audience ? (this.signer.buildClaims(target.audience, target.clientId, nowMs) as unknown as Record<string, unknown>) : null,
      signedBy: 'broker',
    };
  }

  redactions(): string[] {
    return [];
  }

  start(): void {
    this.certificates.start?.();
  }

  stop(): void {
    this.certificates.stop?.();
    this.signer.keySigner.close();
  }
}
