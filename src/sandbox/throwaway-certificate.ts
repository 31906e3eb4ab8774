// Throw-away self-signed certificates for the demo and the tests. Never used for a real credential:
// the key is generated in memory and only written where the caller asks.
import 'reflect-metadata'; // required by @peculiar/x509's dependency injection
import { webcrypto, createPrivateKey, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export type ThrowawayKeyType = 'rsa' | 'ec';
export type PrivateKeyPemFormat = 'pkcs8' | 'pkcs1' | 'sec1';

export interface ThrowawayCertificateOptions {
  keyType?: ThrowawayKeyType;
  /** RSA modulus length in bits (default 2048). */
  rsaBits?: number;
  commonName?: string;
  /** Validity window; defaults to one hour ago .. 30 days from now. */
  notBefore?: Date;
  notAfter?: Date;
  /** Sign with this issuer instead of self-signing (to build a chain). */
  issuer?: ThrowawayCertificate;
  /** PEM encoding of the private key (default pkcs8; pkcs1 only for RSA, sec1 only for EC). */
  keyFormat?: PrivateKeyPemFormat;
  isCa?: boolean;
}

export interface ThrowawayCertificate {
  certPem: string;
  keyPem: string;
  /** DER of the certificate. */
  der: Buffer;
  /** Kept for signing child certificates. */
  readonly cryptoKeys: CryptoKeyPair;
  readonly algorithm: RsaHashedKeyGenParams | EcKeyGenParams;
}

const DAY_MS = 86_400_000;

export async function createThrowawayCertificate(
  options: ThrowawayCertificateOptions = {},
): Promise<ThrowawayCertificate> {
  const keyType = options.keyType ?? 'rsa';
  const algorithm: RsaHashedKeyGenParams | EcKeyGenParams =
    keyType === 'rsa'
      ? {
          name: 'RSASSA-PKCS1-v1_5',
          hash: 'SHA-256',
          publicExponent: new Uint8Array([1, 0, 1]),
          modulusLength: options.rsaBits ?? 2048,
        }
      : { name: 'ECDSA', namedCurve: 'P-256' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const name = `CN=${options.commonName ?? 'token-broker throw-away'}`;
  const signingAlgorithm = keyType === 'rsa' ? algorithm : { name: 'ECDSA', hash: 'SHA-256' };
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(options.isCa ?? false, undefined, true),
    new x509.KeyUsagesExtension(
      options.isCa ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature : x509.KeyUsageFlags.digitalSignature,
      true,
    ),
  ];
  const common = {
    serialNumber: randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'),
    notBefore: options.notBefore ?? new Date(now - 3_600_000),
    notAfter: options.notAfter ?? new Date(now + 30 * DAY_MS),
    extensions,
  };
  const cert = options.issuer
    ? await x509.X509CertificateGenerator.create({
        ...common,
        subject: name,
        issuer: new x509.X509Certificate(new Uint8Array(options.issuer.der)).subject,
        publicKey: keys.publicKey,
        signingKey: options.issuer.cryptoKeys.privateKey,
        signingAlgorithm: options.issuer.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : options.issuer.algorithm,
      })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name, keys, signingAlgorithm });

  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyObject = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const keyFormat = options.keyFormat ?? 'pkcs8';
  const keyPem = keyObject.export({ format: 'pem', type: keyFormat }) as string;
  return {
    certPem: cert.toString('pem') + '\n',
    keyPem,
    der: Buffer.from(cert.rawData),
    cryptoKeys: keys,
    algorithm,
  };
}
