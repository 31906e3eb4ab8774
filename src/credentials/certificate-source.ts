import type { LoadedCertificate } from './certificate.ts';

/** The current signing material of one credential. */
export interface CertificateSource {
  current(): LoadedCertificate;
}

/** A certificate loaded once at startup. */
export class StaticCertificateSource implements CertificateSource {
  constructor(private readonly certificate: LoadedCertificate) {}
  current(): LoadedCertificate {
    return this.certificate;
  }
}
