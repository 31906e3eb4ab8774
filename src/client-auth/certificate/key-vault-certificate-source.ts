// A certificate credential whose certificate and key both live in Azure Key Vault: the certificate
// object of the key's name (https://learn.microsoft.com/azure/key-vault/certificates/about-certificates:
// each certificate version comes with its own key version) is read when the broker starts and again
// every reload interval, so a rotation in the vault (a new version) is picked up without a restart;
// the assertion then names the new certificate and is signed by its key version.
import type { TokenCredential } from '@azure/identity';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../observability/logger.ts';
import type { KeyVaultConfig } from './certificate-schema.ts';
import { certificateFromDer, type LoadedCertificate } from './certificate.ts';
import type { CertificateSource } from './certificate-source.ts';
import { ROTATION_FALLBACK_WINDOW_MS } from '../watched-files.ts';
import { keyVaultClientOptions, keyVaultFailure } from './key-vault-key-signer.ts';

/** The vault URL and the key's name, from https://<vault>/keys/<name>[/<version>]. */
export function keyVaultKeyName(keyId: string): { vaultUrl: string; name: string } {
  const url = new URL(keyId);
  return { vaultUrl: url.origin, name: url.pathname.split('/')[2]! };
}

/** The latest version of the certificate object named like the key. */
export async function readKeyVaultCertificate(config: KeyVaultConfig, baseDir: string, credential: TokenCredential, timeoutMs: number, now: Date): Promise<LoadedCertificate> {
  const { vaultUrl, name } = keyVaultKeyName(config.keyId);
  const { CertificateClient } = await import('@azure/keyvault-certificates');
  const client = new CertificateClient(vaultUrl, credential, keyVaultClientOptions(config, baseDir));
  const certificate = await client.getCertificate(name, { abortSignal: AbortSignal.timeout(timeoutMs) });
  if (!certificate.cer) throw new Error(`the certificate object ${vaultUrl}/certificates/${name} has no cer`);
  return certificateFromDer(Buffer.from(certificate.cer), `${vaultUrl}/certificates/${name}`, now, certificate.keyId);
}

export class KeyVaultCertificateSource implements CertificateSource {
  private certificate: LoadedCertificate;
  private before?: { certificate: LoadedCertificate; until: number };
  private problem?: string;
  private timer?: NodeJS.Timeout;
  private reading = false;

  constructor(
    private readonly credentialId: string,
    private readonly config: KeyVaultConfig,
    private readonly baseDir: string,
    initial: LoadedCertificate,
    private readonly credential: TokenCredential,
    private readonly options: { clock: Clock; logger: Logger; intervalMs: number; timeoutMs: number },
  ) {
    this.certificate = initial;
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
    this.timer ??= setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads the latest version; a failure keeps the certificate in use and says why. */
  async check(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const latest = await readKeyVaultCertificate(this.config, this.baseDir, this.credential, this.options.timeoutMs, new Date(this.options.clock.now()));
      this.problem = undefined;
      if (latest.thumbprints.sha256Hex === this.certificate.thumbprints.sha256Hex) return;
      this.before = { certificate: this.certificate, until: this.options.clock.now() + ROTATION_FALLBACK_WINDOW_MS };
      this.certificate = latest;
      this.options.logger.info(
        { credentialId: this.credentialId, thumbprint: latest.thumbprints.sha1Hex, keyId: latest.keyVaultKeyId, notAfter: latest.notAfter.toISOString() },
        'certificate rotated in Key Vault: the new version is in use',
      );
    } catch (err) {
      const reason = (err as { problems?: unknown }).problems ? (err as Error).message : keyVaultFailure(err).reason;
      this.problem = `the certificate could not be read from Key Vault: ${reason}`;
    } finally {
      this.reading = false;
    }
  }
}
