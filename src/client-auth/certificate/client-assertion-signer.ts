// Builds and signs the client assertion of RFC 7523 §3 / OIDC Core §9 private_key_jwt, with the
// header and claims each IdP expects (docs/design.md §6.1, §10, §13).
import { randomUUID } from 'node:crypto';
import type { AssertionConfig, SigningAlgorithm } from './certificate-schema.ts';
import type { Clock } from '../../kernel/clock.ts';
import type { KeyType, LoadedCertificate } from './certificate.ts';
import type { CertificateSource } from './certificate-source.ts';
import type { KeySigner } from './key-signer.ts';

export type ThumbprintHeader = 'x5t' | 'x5t#S256' | 'both' | 'none';

export interface AssertionProfile {
  algorithm: SigningAlgorithm;
  thumbprint: ThumbprintHeader;
  sendX5c: boolean;
  kid?: string;
  lifetimeSeconds: number;
}

export interface AssertionHeader {
  alg: SigningAlgorithm;
  typ: 'JWT';
  x5t?: string;
  'x5t#S256'?: string;
  x5c?: string[];
  kid?: string;
}

export interface AssertionClaims {
  aud: string;
  iss: string;
  sub: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
}

/**
 * What an IdP kind expects of an assertion when the credential does not say (src/idps/*: Entra
 * documents PS256 + x5t#S256 and keeps RS256 + x5t as the fallback, docs/design.md §10.1; generic
 * OIDC servers expect RS256 or ES256; Auth0 refuses assertions living over 5 minutes).
 */
export interface AssertionDefaults {
  /** The algorithm for an RSA key when none is configured. */
  rsaAlgorithm: SigningAlgorithm;
  /** The thumbprint header for an algorithm when none is configured. */
  thumbprintFor(algorithm: SigningAlgorithm): ThumbprintHeader;
  lifetimeSeconds: number;
}

/** Throws with a message naming the field when the algorithm does not fit the key. */
export function resolveAssertionProfile(config: AssertionConfig, keyType: KeyType, defaults: AssertionDefaults): AssertionProfile {
  const algorithm: SigningAlgorithm = config.algorithm ?? (keyType === 'ec' ? 'ES256' : defaults.rsaAlgorithm);
  if (keyType === 'ec' && algorithm !== 'ES256') {
    throw new Error(`algorithm ${algorithm} needs an RSA key, but the certificate has an EC key: use ES256`);
  }
  if (keyType === 'rsa' && algorithm === 'ES256') {
    throw new Error('algorithm ES256 needs an EC P-256 key, but the certificate has an RSA key: use PS256 or RS256');
  }
  const thumbprint: ThumbprintHeader = config.thumbprint ?? defaults.thumbprintFor(algorithm);
  return { algorithm, thumbprint, sendX5c: config.sendX5c, kid: config.kid, lifetimeSeconds: config.lifetimeSeconds ?? defaults.lifetimeSeconds };
}

export class ClientAssertionSigner {
  constructor(
    private readonly certificates: CertificateSource,
    readonly profile: AssertionProfile,
    private readonly clock: Clock,
    /** Where the private key is: a file, an HSM, Key Vault. */
    readonly keySigner: KeySigner,
    /** Told of every signature, its duration and result (metrics). */
    private readonly observe?: (backend: string, seconds: number, result: 'success' | 'failure') => void,
  ) {}

  buildHeader(cert: LoadedCertificate = this.certificates.current()): AssertionHeader {
    const header: AssertionHeader = { alg: this.profile.algorithm, typ: 'JWT' };
    // RFC 7515 §4.1.7–4.1.8: base64url of the binary digest of the DER certificate.
    if (this.profile.thumbprint === 'x5t' || this.profile.thumbprint === 'both') header.x5t = cert.thumbprints.x5t;
    if (this.profile.thumbprint === 'x5t#S256' || this.profile.thumbprint === 'both') header['x5t#S256'] = cert.thumbprints.x5tS256;
    // RFC 7515 §4.1.6: x5c entries are standard base64 (not base64url) DER, leaf first.
    if (this.profile.sendX5c) header.x5c = cert.chain.map((c) => c.raw.toString('base64'));
    if (this.profile.kid) header.kid = this.profile.kid;
    return header;
  }

  buildClaims(audience: string, clientId: string, nowMs: number = this.clock.now()): AssertionClaims {
    // Integer NumericDates from the UTC epoch (RFC 7519 §2); nbf = iat = now as MSAL does.
    const now = Math.floor(nowMs / 1000);
    return {
      aud: audience, // one string, the exact token URL (or the IdP's documented audience); never an array
      iss: clientId,
      sub: clientId,
      // RFC 7523 §3: jti must be unique; strict IdPs refuse a replayed one, so every call signs anew.
      jti: randomUUID(),
      iat: now,
      nbf: now,
      exp: now + this.profile.lifetimeSeconds,
    };
  }

  /**
   * Signs a fresh assertion. Never cached: a new jti and time window on every exchange.
   * `certificate` overrides the current one (the retry with the previous certificate after a rotation).
   * The compact serialisation of RFC 7515 §7.1: base64url(header).base64url(claims).base64url(signature).
   */
  async sign(audience: string, clientId: string, certificate?: LoadedCertificate): Promise<string> {
    const cert = certificate ?? this.certificates.current();
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const signingInput = `${encode(this.buildHeader(cert))}.${encode(this.buildClaims(audience, clientId))}`;
    const started = performance.now();
    let signature: Buffer;
    try {
      signature = await this.keySigner.sign(this.profile.algorithm, Buffer.from(signingInput), cert);
    } catch (err) {
      this.observe?.(this.keySigner.backend, (performance.now() - started) / 1000, 'failure');
      throw err;
    }
    this.observe?.(this.keySigner.backend, (performance.now() - started) / 1000, 'success');
    return `${signingInput}.${signature.toString('base64url')}`;
  }
}
