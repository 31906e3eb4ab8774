// What the strict fakes (the Entra and Key Vault stand-ins, the misbehaving IdP) share: reading a
// request, and a TLS server certificate for loopback issued by a test CA.
import 'reflect-metadata'; // before @peculiar/x509 (its dependency injection needs it)
import type { IncomingMessage } from 'node:http';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { ThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';

/** Requests past this are cut short: a fake never needs more, and a test that sends more has a bug. */
export const MAX_FAKE_BODY_BYTES = 1 << 20;

export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A path segment decoded, or as it is when it is not valid percent-encoding. */
export function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export async function readBody(req: IncomingMessage, maxBytes = MAX_FAKE_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > maxBytes) break;
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** base64url without padding (RFC 7515 §2), as JWTs and the Azure SDKs encode. */
export function isB64url(s: string): boolean {
  return /^[A-Za-z0-9_-]*$/.test(s) && s.length % 4 !== 1;
}

/** The JSON object these bytes hold, or undefined for anything else (empty, not JSON, an array, a string). */
export function jsonObjectOf(bytes: Buffer): Record<string, unknown> | undefined {
  if (bytes.length === 0) return undefined;
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A server certificate for 127.0.0.1 and localhost, issued by `ca` (a CA from createThrowawayCertificate). */
export async function loopbackServerCertificate(ca: ThrowawayCertificate): Promise<{ certPem: string; keyPem: string }> {
  const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `1${randomBytes(8).toString('hex')}`,
    subject: 'CN=127.0.0.1',
    issuer: new x509.X509Certificate(new Uint8Array(ca.der)).subject,
    notBefore: new Date(Date.now() - 3_600_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: keys.publicKey,
    signingKey: ca.cryptoKeys.privateKey,
    signingAlgorithm: ca.algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'ip', value: '127.0.0.1' },
        { type: 'dns', value: 'localhost' },
      ]),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
  return { certPem: cert.toString('pem'), keyPem };
}
