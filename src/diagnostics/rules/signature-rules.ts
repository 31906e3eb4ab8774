// The JWS itself and the certificate it should match: structure, signature (checked only against a
// certificate the engineer names — a configured credential or a PEM file — never one fetched from
// anywhere), thumbprints against that certificate, and the certificate's own fitness.
// Sources: RFC 7515, RFC 7518 §3; docs/design.md §10.1, §10.5, §11.1 (AADSTS700027, 50013, 50032).
import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { MIN_RSA_BITS } from '../../client-auth/certificate/certificate.ts';
import { EXPIRY_WARNING_DAYS as CERTIFICATE_EXPIRY_WARNING_DAYS } from '../../client-auth/certificate/certificate-source.ts';
import { ALL_IDPS, defineRule, memoised, type AssertionRule, type LintContext } from '../assertion-rule.ts';

const DAY_SECONDS = 86_400;

export interface SignatureCheck {
  valid: boolean;
  reason?: string;
}

/** RFC 7518 §3.1: alg → hash and padding. Returns undefined for algs we cannot verify. */
function verifyWith(alg: string, input: Buffer, signature: Buffer, key: KeyObject): boolean | undefined {
  const m = /^(RS|PS|ES)(256|384|512)$/.exec(alg);
  if (alg === 'EdDSA') return cryptoVerify(null, input, key, signature);
  if (!m) return undefined;
  const hash = `sha${m[2]}`;
  if (m[1] === 'RS') return cryptoVerify(hash, input, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
  // RFC 7518 §3.5: PSS with MGF1 and a salt as long as the hash.
  if (m[1] === 'PS') return cryptoVerify(hash, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
  // RFC 7518 §3.4: ECDSA signatures are R || S, not DER.
  return cryptoVerify(hash, input, { key, dsaEncoding: 'ieee-p1363' }, signature);
}

/** The signature checked against the named certificate, or undefined when there is nothing to check. */
export function checkSignature(ctx: LintContext): SignatureCheck | undefined {
  if (!ctx.signed || !ctx.certificate) return undefined;
  return memoised(ctx, 'signature', (): SignatureCheck => {
    const alg = typeof ctx.header.alg === 'string' ? ctx.header.alg : '';
    if (ctx.signed!.signature.length === 0) return { valid: false, reason: 'the signature part is empty' };
    try {
      const ok = verifyWith(alg, ctx.signed!.signingInput, ctx.signed!.signature, ctx.certificate!.leaf.publicKey);
      if (ok === undefined) return { valid: false, reason: `alg ${alg || '(none)'} cannot be verified with a certificate` };
      return ok ? { valid: true } : { valid: false, reason: 'the signature does not verify with the certificate\'s public key' };
    } catch {
      return { valid: false, reason: `alg ${alg} does not fit the certificate's ${ctx.certificate!.leaf.publicKey.asymmetricKeyType} key` };
    }
  });
}

export const jwsMalformed = defineRule({
  id: 'jws.malformed',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS50027', keycloak: 'invalid_client', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'not a compact JWS (three base64url parts, JSON header and claims)',
  fix: 'send the compact serialisation header.payload.signature, each part base64url without padding',
  check: (ctx) => (ctx.malformed ? { message: `not a compact JWS: ${ctx.malformed}` } : undefined),
});

export const signatureMissing = defineRule({
  id: 'signature.missing',
  claim: 'signature',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS50027', keycloak: 'invalid_client', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'the signature part is empty',
  check: (ctx) =>
    ctx.signed && ctx.signed.signature.length === 0 && typeof ctx.header.alg === 'string' && ctx.header.alg.toLowerCase() !== 'none'
      ? { message: 'the third part of the JWS (the signature) is empty' }
      : undefined,
});

export const signatureInvalid = defineRule({
  id: 'signature.invalid',
  claim: 'signature',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS700027', keycloak: 'invalid_client', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'the signature does not verify with the named certificate',
  fix: 'sign with the private key that belongs to the registered certificate (check key and certificate files are a pair)',
  check: (ctx) => {
    const result = checkSignature(ctx);
    if (!result || result.valid || ctx.signed?.signature.length === 0) return undefined;
    return { message: `${result.reason}: signed with another key, or the content was changed after signing` };
  },
});

export const signatureNotChecked = defineRule({
  id: 'signature.not_checked',
  claim: 'signature',
  severity: 'info',
  idps: ALL_IDPS,
  summary: 'no certificate named: the signature was not checked',
  check: (ctx) =>
    ctx.signed && !ctx.certificate && ctx.signed.signature.length > 0
      ? { message: 'the signature was not checked: name a credential (or give --cert to the CLI) to check it against that certificate' }
      : undefined,
});

export const algKeyMismatch = defineRule({
  id: 'alg.key_mismatch',
  claim: 'alg',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS700027', keycloak: 'Invalid signature algorithm', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'alg does not fit the certificate\'s key type (RS/PS need RSA, ES256 needs EC P-256)',
  check: (ctx) => {
    const alg = typeof ctx.header.alg === 'string' ? ctx.header.alg : undefined;
    const type = ctx.certificate?.leaf.publicKey.asymmetricKeyType;
    if (!alg || !type) return undefined;
    const needs = /^(RS|PS)/.test(alg) ? 'rsa' : /^ES/.test(alg) ? 'ec' : alg === 'EdDSA' ? 'ed25519' : undefined;
    if (!needs || needs === type) return undefined;
    return { message: `alg ${alg} needs an ${needs.toUpperCase()} key; the certificate has an ${type.toUpperCase()} key`, actual: alg, expected: type === 'rsa' ? 'PS256 or RS256' : type === 'ec' ? 'ES256' : undefined };
  },
});

export const thumbprintWrongCertificate = defineRule({
  id: 'thumbprint.wrong_certificate',
  claim: 'x5t#S256',
  severity: 'error',
  idps: ALL_IDPS,
  // "The key was not found., Thumbprint of key used by client: '…'" (docs/design.md §11.1).
  idpError: { entra: 'AADSTS700027' },
  summary: 'the thumbprint header names another certificate than the one given',
  fix: 'compute x5t / x5t#S256 from the certificate that signs (token-broker thumbprint CERT)',
  check: (ctx) => {
    const cert = ctx.certificate;
    if (!cert) return undefined;
    const wrong: string[] = [];
    const expected: string[] = [];
    // Only well-formed digests are compared here; malformed ones have their own findings.
    const s256 = ctx.header['x5t#S256'];
    if (typeof s256 === 'string' && Buffer.from(s256, 'base64url').length === 32 && s256 !== cert.thumbprints.x5tS256) {
      wrong.push('x5t#S256');
      expected.push(`x5t#S256 ${cert.thumbprints.x5tS256}`);
    }
    const s1 = ctx.header.x5t;
    if (typeof s1 === 'string' && Buffer.from(s1, 'base64url').length === 20 && s1 !== cert.thumbprints.x5t) {
      wrong.push('x5t');
      expected.push(`x5t ${cert.thumbprints.x5t}`);
    }
    if (wrong.length === 0) return undefined;
    return {
      message: `${wrong.join(' and ')} name${wrong.length === 1 ? 's' : ''} another certificate than the one given (SHA-1 ${cert.thumbprints.sha1Hex})`,
      expected: expected.join(', '),
      actual: wrong.map((w) => `${w} ${String(ctx.header[w])}`).join(', '),
      severity: ctx.target.idp === 'entra' ? 'error' : 'warning',
    };
  },
});

export const certificateExpired = defineRule({
  id: 'certificate.expired',
  claim: 'certificate',
  severity: 'error',
  idps: ALL_IDPS,
  // Entra: the key credential outside its validity → AADSTS700027 (reason expired) / 1000502 (docs/design.md §11.1).
  idpError: { entra: 'AADSTS700027' },
  summary: 'the certificate has expired or is not yet valid',
  fix: 'issue a new certificate, register it at the IdP and mount it for the broker',
  check: (ctx) => {
    const leaf = ctx.certificate?.leaf;
    if (!leaf) return undefined;
    const notAfter = Date.parse(leaf.validTo) / 1000;
    const notBefore = Date.parse(leaf.validFrom) / 1000;
    if (notAfter <= ctx.nowSeconds) return { message: `the certificate expired on ${new Date(notAfter * 1000).toISOString()}`, actual: new Date(notAfter * 1000).toISOString() };
    if (notBefore > ctx.nowSeconds) return { message: `the certificate is not valid before ${new Date(notBefore * 1000).toISOString()}`, actual: new Date(notBefore * 1000).toISOString() };
    return undefined;
  },
});

export const certificateExpiresSoon = defineRule({
  id: 'certificate.expires_soon',
  claim: 'certificate',
  severity: 'warning',
  idps: ALL_IDPS,
  summary: `the certificate expires within ${CERTIFICATE_EXPIRY_WARNING_DAYS} days`,
  fix: 'register the next certificate at the IdP now (both can be registered at once), then swap the files',
  check: (ctx) => {
    const leaf = ctx.certificate?.leaf;
    if (!leaf) return undefined;
    const left = Date.parse(leaf.validTo) / 1000 - ctx.nowSeconds;
    if (left <= 0 || left > CERTIFICATE_EXPIRY_WARNING_DAYS * DAY_SECONDS) return undefined;
    return { message: `the certificate expires in ${Math.floor(left / DAY_SECONDS)} days (${new Date(leaf.validTo).toISOString()})`, actual: new Date(leaf.validTo).toISOString() };
  },
});

export const certificateKeyMismatch = defineRule({
  id: 'certificate.key_mismatch',
  claim: 'certificate',
  severity: 'error',
  idps: ALL_IDPS,
  // "the key is found by thumbprint but the private key doesn't match that cert" (docs/design.md §11.2).
  idpError: { entra: 'AADSTS50013', keycloak: 'invalid_client', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'the private key does not belong to the certificate',
  fix: 'mount the key file that was generated with this certificate',
  check: (ctx) => {
    const c = ctx.certificate;
    if (!c?.privateKey || c.leaf.checkPrivateKey(c.privateKey)) return undefined;
    return { message: 'the private key is not the one of the certificate: every signature will fail verification' };
  },
});

export const keyWeak = defineRule({
  id: 'key.weak',
  claim: 'certificate',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS50032' },
  summary: `RSA key shorter than ${MIN_RSA_BITS} bits`,
  fix: `issue a certificate with an RSA key of ${MIN_RSA_BITS} bits or more`,
  check: (ctx) => {
    const c = ctx.certificate;
    if (!c || c.leaf.publicKey.asymmetricKeyType !== 'rsa') return undefined;
    const bits = c.leaf.publicKey.asymmetricKeyDetails?.modulusLength ?? c.keyBits;
    if (!bits || bits >= MIN_RSA_BITS) return undefined;
    return { message: `the RSA key has ${bits} bits; Entra answers AADSTS50032 WeakRsaKey and jsonwebtoken refuses to sign`, expected: `≥ ${MIN_RSA_BITS} bits`, actual: `${bits} bits` };
  },
});

export const SIGNATURE_RULES: AssertionRule[] = [
  jwsMalformed,
  signatureMissing,
  signatureInvalid,
  algKeyMismatch,
  thumbprintWrongCertificate,
  certificateKeyMismatch,
  certificateExpired,
  keyWeak,
  certificateExpiresSoon,
  signatureNotChecked,
];

