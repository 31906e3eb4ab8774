// The client-authentication kinds, by the block a credential names: what each reads and checks at
// startup (and in `config check`), and the ClientAuthentication it becomes. A new kind is its module,
// its schema in client-auth-schema.ts, and one case in each switch here.
import type { Clock } from '../kernel/clock.ts';
import type { Logger } from '../observability/logger.ts';
import { CertificateAuthentication } from './certificate/certificate-authentication.ts';
import type { AssertionConfig, CertificateConfig, KeyVaultConfig } from './certificate/certificate-schema.ts';
import { CertificateLoadError, loadCertificate, type KeyType, type LoadedCertificate } from './certificate/certificate.ts';
import { FileCertificateSource } from './certificate/certificate-source.ts';
import { FileKeySigner } from './certificate/file-key-signer.ts';
import type { KeySigner } from './certificate/key-signer.ts';
import { Pkcs11KeySigner } from './certificate/pkcs11-key-signer.ts';
import { KeyVaultKeySigner, keyVaultFailure } from './certificate/key-vault-key-signer.ts';
import { KeyVaultCertificateSource, keyVaultKeyName, readKeyVaultCertificate } from './certificate/key-vault-certificate-source.ts';
import type { TokenCredential } from '@azure/identity';
import { ClientAssertionSigner, resolveAssertionProfile, type AssertionDefaults, type AssertionProfile } from './certificate/client-assertion-signer.ts';
import { clientAuthenticationKinds, type ClientAuthenticationKind } from './client-auth-schema.ts';
import type { ClientAuthentication } from './client-authentication.ts';
import { ClientSecretAuthentication, ClientSecretLoadError, describeClientSecretMaterial, loadClientSecret, type ClientSecretMaterial } from './client-secret.ts';
import type { ClientSecretConfig } from './client-secret-schema.ts';
import type { FederatedTokenConfig } from './federated-token-schema.ts';
import { PublicClientAuthentication } from './public-client.ts';
import { FederatedTokenAuthentication, describeFederatedTokenMaterial, loadFederatedTokenMaterial, type FederatedTokenMaterial } from './federated-token.ts';

/** What a credential's client authentication loaded at startup, per kind. */
export type ClientAuthMaterial =
  | { kind: 'certificate'; certificate: LoadedCertificate; profile: AssertionProfile; keyLocation: string }
  | ({ kind: 'clientSecret' } & ClientSecretMaterial)
  | FederatedTokenMaterial
  | { kind: 'publicClient' };

/** The blocks of a credential that configure its client authentication (already parsed). */
export interface ClientAuthSpec {
  certificate?: CertificateConfig;
  clientSecret?: ClientSecretConfig;
  federatedToken?: FederatedTokenConfig;
  assertion?: AssertionConfig;
  publicClient?: boolean;
}

/** What the credential's IdP kind says about assertions (src/idps/idp-kind.ts). */
export interface IdpAssertionRules {
  defaults?: AssertionDefaults;
  keyTypeProblem(keyType: KeyType): string | undefined;
}

export interface ClientAuthProblem {
  /** Relative to the credential, e.g. certificate.keyFile or assertion.algorithm. */
  path: string;
  message: string;
}

function clientAuthKindOf(spec: ClientAuthSpec): ClientAuthenticationKind | undefined {
  const kinds = clientAuthenticationKinds(spec as Record<string, unknown>);
  return kinds.length === 1 ? kinds[0] : undefined;
}

/**
 * Reads and checks the material the credential names (files, key and certificate, their fit to the
 * IdP). `rules.defaults` undefined: the IdP part of the credential did not parse, so only the files
 * are checked.
 */
export function loadClientAuthMaterial(spec: ClientAuthSpec, baseDir: string, now: Date, rules: IdpAssertionRules): { material?: ClientAuthMaterial; problems: ClientAuthProblem[] } {
  const kind = clientAuthKindOf(spec);
  switch (kind) {
    case undefined:
      return { problems: [] };
    case 'publicClient':
      return { material: { kind }, problems: [] };
    case 'certificate': {
      // The certificate is the vault's: read when the broker starts (completeKeyVaultMaterial).
      if (spec.certificate!.keyVault && !spec.certificate!.certFile) return { problems: [] };
      let certificate: LoadedCertificate;
      try {
        certificate = loadCertificate(spec.certificate!, baseDir, now);
      } catch (err) {
        if (!(err instanceof CertificateLoadError)) throw err;
        return { problems: err.problems.map((p) => ({ path: `certificate.${p.field}`, message: p.message })) };
      }
      const keyProblem = rules.keyTypeProblem(certificate.keyType);
      if (keyProblem) return { problems: [{ path: 'certificate', message: keyProblem }] };
      if (!rules.defaults || !spec.assertion) return { problems: [] };
      try {
        return { material: certificateMaterial(certificate, spec, rules.defaults), problems: [] };
      } catch (err) {
        return { problems: [{ path: 'assertion.algorithm', message: (err as Error).message }] };
      }
    }
    case 'clientSecret':
      try {
        return { material: { kind, ...loadClientSecret(spec.clientSecret!, baseDir) }, problems: [] };
      } catch (err) {
        if (!(err instanceof ClientSecretLoadError)) throw err;
        return { problems: err.problems.map((p) => ({ path: `clientSecret.${p.field}`, message: p.message })) };
      }
    case 'federatedToken':
      return loadFederatedTokenMaterial(spec.federatedToken!, baseDir, now);
  }
}

export interface ClientAuthDeps {
  credentialId: string;
  baseDir: string;
  clock: Clock;
  logger: Logger;
  /** How often watched files are re-read as a fallback to watching. */
  reloadIntervalMs: number;
  /** Deadline of one call to an external key signer (the credential's timeoutMs). */
  timeoutMs: number;
  /** How the broker authenticates to Azure Key Vault for this credential's key (the composition root decides). */
  keyVaultCredential?: (config: KeyVaultConfig) => TokenCredential;
  /** Told of every signature by the credential's key (metrics). */
  keySigned?: (backend: string, seconds: number, result: 'success' | 'failure') => void;
}

/** A loaded certificate as material, with the assertion profile its key and the IdP call for. Throws naming the field when they do not fit. */
export function certificateMaterial(certificate: LoadedCertificate, spec: ClientAuthSpec, defaults: AssertionDefaults): ClientAuthMaterial {
  return { kind: 'certificate', certificate, profile: resolveAssertionProfile(spec.assertion!, certificate.keyType, defaults), keyLocation: keyLocation(spec.certificate!) };
}

/**
 * A certificate credential whose certificate is the vault's (keyVault without certFile): read from
 * Key Vault, checked against the IdP's rules as a file would be. Problems name the field.
 */
export async function completeKeyVaultMaterial(spec: ClientAuthSpec, baseDir: string, rules: IdpAssertionRules & { defaults: AssertionDefaults }, credential: TokenCredential, timeoutMs: number): Promise<{ material?: ClientAuthMaterial; problems: ClientAuthProblem[] }> {
  const keyVault = spec.certificate!.keyVault!;
  let certificate: LoadedCertificate;
  try {
    certificate = await readKeyVaultCertificate(keyVault, baseDir, credential, timeoutMs, new Date());
  } catch (err) {
    if (err instanceof CertificateLoadError) return { problems: err.problems.map((p) => ({ path: `certificate.${p.field}`, message: p.message })) };
    return { problems: [{ path: 'certificate.keyVault', message: `the certificate could not be read from Key Vault (${keyVaultKeyName(keyVault.keyId).vaultUrl}/certificates/${keyVaultKeyName(keyVault.keyId).name}): ${keyVaultFailure(err).reason}` }] };
  }
  const keyProblem = rules.keyTypeProblem(certificate.keyType);
  if (keyProblem) return { problems: [{ path: 'certificate.keyVault', message: keyProblem }] };
  try {
    return { material: certificateMaterial(certificate, spec, rules.defaults), problems: [] };
  } catch (err) {
    return { problems: [{ path: 'assertion.algorithm', message: (err as Error).message }] };
  }
}

/** Where the private key is, in words (config check): never the key, the PIN or a token. */
function keyLocation(c: CertificateConfig): string {
  if (c.pkcs11) {
    const token = c.pkcs11.tokenLabel !== undefined ? `token '${c.pkcs11.tokenLabel}'` : `slot ${c.pkcs11.slot}`;
    return `key in PKCS#11 ${token}, ${c.pkcs11.keyLabel !== undefined ? `label '${c.pkcs11.keyLabel}'` : `id ${c.pkcs11.keyId}`}`;
  }
  if (c.keyVault) return c.certFile ? `key in Key Vault ${c.keyVault.keyId}` : `certificate and key in Key Vault ${c.keyVault.keyId}`;
  return c.pfxFile ? 'key in the PFX file' : 'key file';
}

/** Where the certificate's private key is: its file, a PKCS#11 token, or Azure Key Vault. */
function keySignerFor(certificate: CertificateConfig, deps: ClientAuthDeps): KeySigner {
  if (certificate.pkcs11) return new Pkcs11KeySigner(certificate.pkcs11, deps.baseDir, deps.credentialId, deps.logger);
  if (certificate.keyVault) {
    if (!deps.keyVaultCredential) throw new Error('a Key Vault key needs the broker\'s Key Vault credential');
    return new KeyVaultKeySigner(certificate.keyVault, deps.baseDir, deps.credentialId, deps.keyVaultCredential(certificate.keyVault), deps.logger, deps.timeoutMs);
  }
  return new FileKeySigner();
}

export function createClientAuthentication(spec: ClientAuthSpec, material: ClientAuthMaterial, deps: ClientAuthDeps): ClientAuthentication {
  switch (material.kind) {
    case 'certificate': {
      const keyVault = spec.certificate!.keyVault;
      const certificates =
        keyVault && !spec.certificate!.certFile
          ? new KeyVaultCertificateSource(deps.credentialId, keyVault, deps.baseDir, material.certificate, deps.keyVaultCredential!(keyVault), {
              clock: deps.clock,
              logger: deps.logger,
              intervalMs: deps.reloadIntervalMs,
              timeoutMs: deps.timeoutMs,
            })
          : new FileCertificateSource(deps.credentialId, spec.certificate!, deps.baseDir, material.certificate, {
              clock: deps.clock,
              logger: deps.logger,
              intervalMs: deps.reloadIntervalMs,
            });
      return new CertificateAuthentication(certificates, new ClientAssertionSigner(certificates, material.profile, deps.clock, keySignerFor(spec.certificate!, deps), deps.keySigned));
    }
    case 'clientSecret':
      return new ClientSecretAuthentication(spec.clientSecret!, material, {
        credentialId: deps.credentialId,
        baseDir: deps.baseDir,
        clock: deps.clock,
        logger: deps.logger,
        intervalMs: deps.reloadIntervalMs,
      });
    case 'federatedToken':
      return new FederatedTokenAuthentication(material, { credentialId: deps.credentialId, clock: deps.clock, logger: deps.logger });
    case 'publicClient':
      return new PublicClientAuthentication();
  }
}

/** One line of `config check` per credential: what its client authentication loaded (never the material itself). */
export function describeClientAuthMaterial(m: ClientAuthMaterial): string {
  switch (m.kind) {
    case 'certificate':
      return `${m.profile.algorithm} cert ${m.certificate.thumbprints.sha1Hex} valid until ${m.certificate.notAfter.toISOString()}, ${m.keyLocation}`;
    case 'clientSecret':
      return describeClientSecretMaterial(m);
    case 'federatedToken':
      return describeFederatedTokenMaterial(m);
    case 'publicClient':
      return 'public client (no client authentication)';
  }
}
