// The current signing material of one credential, reloaded from disk without a restart. Files are
// watched (a Kubernetes Secret volume swaps a ..data symlink, which shows up as events on the folder)
// and re-read on an interval as a fallback; a broken new pair never replaces a working one.
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { CertificateConfig } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../observability/logger.ts';
import { CertificateLoadError, loadCertificate, type LoadedCertificate } from './certificate.ts';

/** Certificates this close to notAfter are reported in the log (once a day) and in /readyz. */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

/** After a rotation, the previous certificate is kept this long for one retry (Entra may lag). */
export const ROTATION_FALLBACK_WINDOW_MS = 15 * 60_000;

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
  private timer?: NodeJS.Timeout;
  private watchers: FSWatcher[] = [];
  private debounce?: NodeJS.Timeout;
  private lastExpiryWarningAt = 0;

  constructor(
    private readonly credentialId: string,
    private readonly spec: CertificateConfig,
    private readonly baseDir: string,
    initial: LoadedCertificate,
    private readonly options: { clock: Clock; logger: Logger; intervalMs: number },
  ) {
    this.certificate = initial;
    this.lastFingerprint = this.fingerprintFiles() ?? '';
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
    this.timer = setInterval(() => {
      this.check();
      this.warnIfExpiringSoon();
    }, this.options.intervalMs);
    this.timer.unref();
    for (const dir of new Set(this.certificate.files.map((f) => dirname(f)))) {
      try {
        const watcher = watch(dir, () => {
          clearTimeout(this.debounce);
          // Writers replace files in several steps; read once they are done.
          this.debounce = setTimeout(() => this.check(), 200);
          this.debounce.unref();
        });
        watcher.on('error', () => undefined);
        watcher.unref();
        this.watchers.push(watcher);
      } catch {
        // Watching is an optimisation; the interval still reloads.
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    for (const w of this.watchers) w.close();
    this.watchers = [];
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

  private fingerprintFiles(): string | undefined {
    const hash = createHash('sha256');
    for (const file of [...this.certificate.files, ...(this.spec.passphraseFile ? [this.spec.passphraseFile] : [])]) {
      try {
        hash.update(readFileSync(resolve(this.baseDir, file)));
      } catch {
        hash.update(`missing:${file}`);
      }
    }
    return hash.digest('hex');
  }

  /** Re-reads the files; swaps in a new pair only when it loads and fits the configured algorithm. */
  check(): void {
    const fingerprint = this.fingerprintFiles();
    if (!fingerprint || fingerprint === this.lastFingerprint) return;
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
