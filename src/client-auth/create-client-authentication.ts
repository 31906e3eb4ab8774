// The client-authentication kinds, by the block a credential names: what each reads and checks at
// startup (and in `config check`), and the ClientAuthentication it becomes. A new kind is its module,
// its schema in client-auth-schema.ts, and one case in each switch here.
import type { Clock } from '../kernel/clock.ts';
import type { Logger } from '../observability/logger.ts';
import { CertificateAuthentication } from './certificate/certificate-authentication.ts';
import type { AssertionConfig, CertificateConfig } from './certificate/certificate-schema.ts';
import { CertificateLoadError, loadCertificate, type KeyType, type LoadedCertificate } from './certificate/certificate.ts';
import { FileCertificateSource } from './certificate/certificate-source.ts';
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
  | { kind: 'certificate'; certificate: LoadedCertificate; profile: AssertionProfile }
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
        return { material: { kind, certificate, profile: resolveAssertionProfile(spec.assertion, certificate.keyType, rules.defaults) }, problems: [] };
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
}

export function createClientAuthentication(spec: ClientAuthSpec, material: ClientAuthMaterial, deps: ClientAuthDeps): ClientAuthentication {
  switch (material.kind) {
    case 'certificate': {
      const certificates = new FileCertificateSource(deps.credentialId, spec.certificate!, deps.baseDir, material.certificate, {
        clock: deps.clock,
        logger: deps.logger,
        intervalMs: deps.reloadIntervalMs,
      });
      return new CertificateAuthentication(certificates, new ClientAssertionSigner(certificates, material.profile, deps.clock));
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
      return `${m.profile.algorithm} cert ${m.certificate.thumbprints.sha1Hex} valid until ${m.certificate.notAfter.toISOString()}`;
    case 'clientSecret':
      return describeClientSecretMaterial(m);
    case 'federatedToken':
      return describeFederatedTokenMaterial(m);
    case 'publicClient':
      return 'public client (no client authentication)';
  }
}
