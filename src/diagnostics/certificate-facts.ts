// What can be said about a certificate without revealing anything secret: names, serial, validity,
// thumbprints in every form IdPs use, key type and size. Never the key, never the PEM.
import { X509Certificate } from 'node:crypto';
import { computeThumbprints } from '../client-auth/certificate/thumbprints.ts';
import type { CheckedCertificate } from './assertion-rule.ts';

export interface CertificateFacts {
  subject: string;
  issuer: string;
  serial: string;
  not_before: string;
  not_after: string;
  days_left: number;
  /** Upper-case hex, as the Azure portal lists it. */
  sha1: string;
  sha256: string;
  x5t: string;
  'x5t#S256': string;
  key_type: string;
  key_bits: number;
  self_signed: boolean;
}

const CURVE_BITS: Record<string, number> = { prime256v1: 256, secp384r1: 384, secp521r1: 521 };

function keyBits(leaf: X509Certificate): number {
  const details = leaf.publicKey.asymmetricKeyDetails ?? {};
  return details.modulusLength ?? CURVE_BITS[details.namedCurve ?? ''] ?? 0;
}

export function certificateFacts(leaf: X509Certificate, nowMs: number): CertificateFacts {
  const t = computeThumbprints(leaf.raw);
  const notAfter = new Date(leaf.validTo);
  return {
    subject: leaf.subject.replace(/\n/g, ', '),
    issuer: leaf.issuer.replace(/\n/g, ', '),
    serial: leaf.serialNumber.toUpperCase(),
    not_before: new Date(leaf.validFrom).toISOString(),
    not_after: notAfter.toISOString(),
    days_left: Math.floor((notAfter.getTime() - nowMs) / 86_400_000),
    sha1: t.sha1Hex,
    sha256: t.sha256Hex,
    x5t: t.x5t,
    'x5t#S256': t.x5tS256,
    key_type: leaf.publicKey.asymmetricKeyType ?? 'unknown',
    key_bits: keyBits(leaf),
    self_signed: leaf.issuer === leaf.subject && leaf.verify(leaf.publicKey),
  };
}

/** The leaf of a PEM (or DER) certificate file, for checking an assertion against it. */
export function checkedCertificateFromFile(content: Buffer): CheckedCertificate {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(content.toString('utf8'))?.[0];
  const leaf = new X509Certificate(pem ?? content);
  return { leaf, thumbprints: computeThumbprints(leaf.raw), keyBits: keyBits(leaf) };
}
