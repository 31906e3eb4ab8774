// A private key that never leaves Azure Key Vault: the broker hashes the JWS signing input and asks
// the vault to sign the digest (the keys "sign" operation,
// https://learn.microsoft.com/rest/api/keyvault/keys/sign/sign), through @azure/keyvault-keys. Only
// digests leave the broker. A key id without a version signs with the key's latest version, so a
// rotation in the vault is followed. Timeouts, retries and throttling (429 with Retry-After) are the
// Azure SDK's retry policy, bounded here; a failure becomes CredentialUnavailable, so tokens still
// valid keep being served (src/core/token-service.ts) and the caller of a cold target gets a 503
// naming the vault.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TokenCredential } from '@azure/identity';
import type { CryptographyClient } from '@azure/keyvault-keys';
import { CredentialUnavailable } from '../../kernel/errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { KeyVaultConfig, SigningAlgorithm } from './certificate-schema.ts';
import type { LoadedCertificate } from './certificate.ts';
import type { KeySigner, KeySignerStatus } from './key-signer.ts';

/**
 * The public clouds' vault domains: the SDK checks that a challenge names the vault's own resource
 * (https://learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses);
 * for other hosts (a stand-in, a sovereign deployment) that check cannot hold and is turned off.
 */
const VAULT_DOMAINS = ['.vault.azure.net', '.vault.azure.cn', '.vault.usgovcloudapi.net', '.managedhsm.azure.net'];

/** The Key Vault pipeline's own retries: a few, quickly, so an exchange's deadline is not spent waiting on the vault. */
export const KEY_VAULT_RETRY_OPTIONS = { maxRetries: 2, retryDelayInMs: 200, maxRetryDelayInMs: 2_000 };

export interface KeyVaultClientOptions {
  disableChallengeResourceVerification: boolean;
  retryOptions: typeof KEY_VAULT_RETRY_OPTIONS;
  tlsOptions?: { ca: Buffer };
}

export function keyVaultClientOptions(config: KeyVaultConfig, baseDir: string): KeyVaultClientOptions {
  const host = new URL(config.keyId).hostname;
  return {
    disableChallengeResourceVerification: !VAULT_DOMAINS.some((d) => host.endsWith(d)),
    retryOptions: KEY_VAULT_RETRY_OPTIONS,
    ...(config.caFile ? { tlsOptions: { ca: readFileSync(resolve(baseDir, config.caFile)) } } : {}),
  };
}

/** What a Key Vault SDK error says, without anything the vault echoed from the request. */
export function keyVaultFailure(err: unknown): { reason: string; retryAfterSeconds: number } {
  const e = err as { statusCode?: number; code?: string; name?: string; message?: string; response?: { headers?: { get(name: string): string | undefined } } };
  const retryAfter = Number(e.response?.headers?.get('retry-after'));
  const retryAfterSeconds = Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 60) : 2;
  if (e.statusCode === 429) return { reason: 'throttled by Key Vault (429)', retryAfterSeconds };
  if (e.statusCode === 401 || e.statusCode === 403) {
    return { reason: `Key Vault refused the broker's identity (${e.statusCode}${e.code ? ` ${e.code}` : ''}): it needs the keys sign permission (Key Vault Crypto User)`, retryAfterSeconds: 10 };
  }
  if (e.statusCode === 404) return { reason: 'Key Vault has no such key (404): check keyVault.keyId', retryAfterSeconds: 10 };
  if (e.statusCode) return { reason: `Key Vault answered ${e.statusCode}${e.code ? ` ${e.code}` : ''}`, retryAfterSeconds };
  if (e.name === 'AbortError') return { reason: 'Key Vault did not answer in time', retryAfterSeconds: 2 };
  return { reason: `Key Vault could not be reached (${(e.code ?? e.message ?? 'network error').slice(0, 120)})`, retryAfterSeconds: 2 };
}

export class KeyVaultKeySigner implements KeySigner {
  readonly backend = 'keyVault' as const;
  private readonly clients = new Map<string, Promise<CryptographyClient>>();
  private lastStatus: KeySignerStatus = { state: 'not_yet_used' };
  private lastKeyVersion?: string;

  constructor(
    private readonly config: KeyVaultConfig,
    private readonly baseDir: string,
    private readonly credentialId: string,
    private readonly credential: TokenCredential,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
  ) {}

  /** The key to sign with: the certificate's own key version when the vault gave the certificate, else the configured id. */
  private client(certificate: LoadedCertificate): Promise<CryptographyClient> {
    const keyId = certificate.keyVaultKeyId ?? this.config.keyId.replace(/\/$/, '');
    let client = this.clients.get(keyId);
    if (!client) {
      // The Key Vault SDK is loaded only by brokers that sign with a vault key.
      client = import('@azure/keyvault-keys').then((m) => new m.CryptographyClient(keyId, this.credential, keyVaultClientOptions(this.config, this.baseDir)));
      this.clients.set(keyId, client);
    }
    return client;
  }

  async sign(algorithm: SigningAlgorithm, signingInput: Buffer, certificate: LoadedCertificate): Promise<Buffer> {
    // RFC 7518 §3.3–3.5: each of RS256, PS256 and ES256 signs the SHA-256 digest; the vault gets only that.
    const digest = createHash('sha256').update(signingInput).digest();
    try {
      const result = await (await this.client(certificate)).sign(algorithm, digest, { abortSignal: AbortSignal.timeout(this.timeoutMs) });
      const version = result.keyID?.split('/').pop();
      if (version && version !== this.lastKeyVersion) {
        if (this.lastKeyVersion) this.logger.info({ credentialId: this.credentialId, keyVersion: version }, 'Key Vault signs with a new key version');
        this.lastKeyVersion = version;
      }
      this.lastStatus = { state: 'ok' };
      return Buffer.from(result.result);
    } catch (err) {
      const { reason, retryAfterSeconds } = keyVaultFailure(err);
      this.lastStatus = { state: 'unavailable', problem: `${this.config.keyId}: ${reason}` };
      this.logger.warn({ credentialId: this.credentialId, keyId: this.config.keyId, reason }, 'Key Vault signing failed');
      throw new CredentialUnavailable(`credential '${this.credentialId}': the assertion could not be signed by Key Vault key ${this.config.keyId}: ${reason}`, retryAfterSeconds, { cause: err });
    }
  }

  describe(): Record<string, unknown> {
    const auth = this.config.authentication;
    return {
      backend: this.backend,
      key_id: this.config.keyId,
      ...(this.lastKeyVersion ? { key_version: this.lastKeyVersion } : {}),
      authentication: typeof auth === 'string' ? auth : `credential ${auth.credential}`,
      state: this.lastStatus.state,
      ...(this.lastStatus.problem ? { problem: this.lastStatus.problem } : {}),
    };
  }

  status(): KeySignerStatus {
    return this.lastStatus;
  }

  close(): void {}
}
