// The current signing material of one credential, reloaded from disk without a restart. Files are
// watched (a Kubernetes Secret volume swaps a ..data symlink, which shows up as events on the folder)
// and re-read on an interval as a fallback (../watched-files.ts); a broken new pair never replaces a
// working one.
import { resolve } from 'node:path';
import type { CertificateConfig } from './certificate-schema.ts';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../observability/logger.ts';
import { CertificateLoadError, loadCertificate, type LoadedCertificate } from './certificate.ts';
import { ROTATION_FALLBACK_WINDOW_MS, WatchedFiles, contentFingerprint } from '../watched-files.ts';

export { ROTATION_FALLBACK_WINDOW_MS };

/** Certificates this close to notAfter are reported in the log (once a day) and in /readyz. */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

export interface CertificateSource {
  current(): LoadedCertificate;
  /** The certificate used before the last rotation, while the rotation is recent. */
  previous(): LoadedCertificate | undefined;
  /** Why the files on disk are not in use, when the last reload failed. */
  reloadProblem(): string | undefined;
}

/** A certificate loaded once (the probe and tests). */
export class StaticCertificateSource implements CertificateSource {
  constructor(private readonly certificate: LoadedCertificate) {}
  current(): LoadedCertificate {
    return this.certificate;
  }
  previous(): undefined {
    return undefined;
  }
  reloadProblem(): undefined {
    return undefined;
  }
}

export class FileCertificateSource implements CertificateSource {
  private certificate: LoadedCertificate;
  private before?: { certificate: LoadedCertificate; until: number };
  private problem?: string;
  private lastFingerprint: string;
  private readonly watched: WatchedFiles;
  private lastExpiryWarningAt = 0;

  constructor(
    private readonly credentialId: string,
    private readonly spec: CertificateConfig,
    private readonly baseDir: string,
    initial: LoadedCertificate,
    private readonly options: { clock: Clock; logger: Logger; intervalMs: number },
  ) {
    this.certificate = initial;
    this.lastFingerprint = this.fingerprintFiles();
    this.watched = new WatchedFiles(() => this.certificate.files, {
      intervalMs: options.intervalMs,
      check: (reason) => {
        this.check();
        if (reason === 'interval') this.warnIfExpiringSoon();
      },
    });
  }

  current(): LoadedCertificate {
    return this.certificate;
  }

  previous(): LoadedCertificate | undefined {
    return this.before && this.before.until > this.options.clock.now() ? this.before.certificate : undefined;
  }

  reloadProblem(): string | undefined {
    return this.problem;
  }

  start(): void {
    this.warnIfExpiringSoon();
    this.watched.start();
  }

  stop(): void {
    this.watched.stop();
  }

  private warnIfExpiringSoon(): void {
    const now = this.options.clock.now();
    const left = this.certificate.notAfter.getTime() - now;
    if (left > EXPIRY_WARNING_DAYS * DAY_MS || now - this.lastExpiryWarningAt < DAY_MS) return;
    this.lastExpiryWarningAt = now;
    this.options.logger.warn(
      { credentialId: this.credentialId, notAfter: this.certificate.notAfter.toISOString(), daysLeft: Math.floor(left / DAY_MS), thumbprint: this.certificate.thumbprints.sha1Hex },
      'certificate expires soon: register a new one at the IdP, then replace the files',
    );
  }

  private fingerprintFiles(): string {
    const passphrase = this.spec.passphraseFile ? [resolve(this.baseDir, this.spec.passphraseFile)] : [];
    return contentFingerprint([...this.certificate.files.map((f) => resolve(this.baseDir, f)), ...passphrase]);
  }

  /** Re-reads the files; swaps in a new pair only when it loads and fits the configured algorithm. */
  check(): void {
    const fingerprint = this.fingerprintFiles();
    if (fingerprint === this.lastFingerprint) return;
    this.lastFingerprint = fingerprint;
    const { logger, clock } = this.options;
    try {
      const next = loadCertificate(this.spec, this.baseDir, new Date(clock.now()));
      if (next.keyType !== this.certificate.keyType) {
        throw new CertificateLoadError([{ field: 'keyFile', message: `the key type changed from ${this.certificate.keyType} to ${next.keyType}: restart to change algorithms` }]);
      }
      if (next.thumbprints.sha256Hex === this.certificate.thumbprints.sha256Hex) {
        this.problem = undefined;
        return;
      }
      this.before = { certificate: this.certificate, until: clock.now() + ROTATION_FALLBACK_WINDOW_MS };
      this.certificate = next;
      this.problem = undefined;
      logger.info(
        { credentialId: this.credentialId, thumbprint: next.thumbprints.sha1Hex, previous: this.before.certificate.thumbprints.sha1Hex, notAfter: next.notAfter.toISOString() },
        'certificate reloaded',
      );
    } catch (err) {
      this.problem = err instanceof CertificateLoadError ? err.message : `reload failed: ${(err as Error).message}`;
      logger.warn({ credentialId: this.credentialId, problem: this.problem }, 'new certificate files not usable: keeping the current certificate');
    }
  }
}
