// The assertion header and claims per IdP (docs/design.md §6.1), verified with the certificate.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { StaticCertificateSource } from '../../src/client-auth/certificate/certificate-source.ts';
import { loadCertificate, type LoadedCertificate } from '../../src/client-auth/certificate/certificate.ts';
import { FileKeySigner } from '../../src/client-auth/certificate/file-key-signer.ts';
import { Pkcs11KeySigner, loadPkcs11Binding } from '../../src/client-auth/certificate/pkcs11-key-signer.ts';
import { CredentialUnavailable } from '../../src/kernel/errors.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ClientAssertionSigner, resolveAssertionProfile } from '../../src/client-auth/certificate/client-assertion-signer.ts';
import { entraIdp } from '../../src/idps/entra/entra-idp.ts';
import { oidcIdp } from '../../src/idps/oidc/oidc-idp.ts';
import { createThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';
import { tempDir } from '../helpers/credential-files.ts';

const AUD = 'https://login.microsoftonline.com/00000000-0000-0000-0000-0000000000aa/oauth2/v2.0/token';
const CLIENT = '11111111-1111-1111-1111-1111111111bb';
let rsa: LoadedCertificate;
let ec: LoadedCertificate;

function decode(token: string) {
  const [h, p, s] = token.split('.');
  return { header: JSON.parse(Buffer.from(h!, 'base64url').toString()), claims: JSON.parse(Buffer.from(p!, 'base64url').toString()), signature: s! };
}

const defaultsOf = (provider: 'entra' | 'oidc') => (provider === 'entra' ? entraIdp : oidcIdp).assertionDefaults({ preset: 'generic' } as never);

function signer(cert: LoadedCertificate, provider: 'entra' | 'oidc', assertion: Record<string, unknown> = {}, now = () => Date.now()) {
  const profile = resolveAssertionProfile({ lifetimeSeconds: 600, sendX5c: false, ...assertion }, cert.keyType, defaultsOf(provider));
  return new ClientAssertionSigner(new StaticCertificateSource(cert), profile, { now }, new FileKeySigner());
}

before(async () => {
  const dir = tempDir();
  const ca = await createThrowawayCertificate({ isCa: true, commonName: 'ca' });
  const leaf = await createThrowawayCertificate({ issuer: ca });
  rsa = loadCertificate({ certFile: dir.write('r.crt', leaf.certPem + ca.certPem), keyFile: dir.write('r.key', leaf.keyPem) }, dir.path);
  const e = await createThrowawayCertificate({ keyType: 'ec' });
  ec = loadCertificate({ certFile: dir.write('e.crt', e.certPem), keyFile: dir.write('e.key', e.keyPem) }, dir.path);
  dir.remove();
});

describe('client assertion signer', () => {
  test('Entra default: PS256 + x5t#S256, claims as Entra documents them, verifiable with the certificate', async () => {
    const fixedNow = Date.UTC(2026, 10, 22, 12, 0, 0, 700);
    const token = await signer(rsa, 'entra', {}, () => fixedNow).sign(AUD, CLIENT);
    const { header, claims } = decode(token);
    assert.deepEqual(header, { alg: 'PS256', typ: 'JWT', 'x5t#S256': rsa.thumbprints.x5tS256 });
    const now = Math.floor(fixedNow / 1000);
    assert.deepEqual({ ...claims, jti: 'x' }, { aud: AUD, iss: CLIENT, sub: CLIENT, jti: 'x', iat: now, nbf: now, exp: now + 600 });
    assert.match(claims.jti, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(typeof claims.aud, 'string', 'aud is one string, never an array');
    const verified = jwt.verify(token, rsa.leaf.publicKey, { algorithms: ['PS256'], clockTimestamp: now + 1 });
    assert.ok(verified);
  });

  test('RS256 on Entra falls back to x5t (SHA-1)', async () => {
    const { header } = decode(await signer(rsa, 'entra', { algorithm: 'RS256' }).sign(AUD, CLIENT));
    assert.deepEqual(header, { alg: 'RS256', typ: 'JWT', x5t: rsa.thumbprints.x5t });
  });

  test('OIDC default is RS256 for RSA and ES256 for EC; both verify', async () => {
    const r = await signer(rsa, 'oidc').sign('https://idp/token', 'client');
    assert.equal(decode(r).header.alg, 'RS256');
    jwt.verify(r, rsa.leaf.publicKey, { algorithms: ['RS256'] });
    const e = await signer(ec, 'oidc').sign('https://idp/token', 'client');
    assert.equal(decode(e).header.alg, 'ES256');
    jwt.verify(e, ec.leaf.publicKey, { algorithms: ['ES256'] });
  });

  test('x5c carries the chain as standard base64 DER, leaf first; kid and both thumbprints on request', async () => {
    const { header } = decode(await signer(rsa, 'oidc', { sendX5c: true, kid: 'key-1', thumbprint: 'both' }).sign('https://idp/token', 'c'));
    assert.equal(header.x5c.length, 2);
    assert.equal(new X509Certificate(Buffer.from(header.x5c[0], 'base64')).fingerprint256, rsa.leaf.fingerprint256);
    assert.equal(header.kid, 'key-1');
    assert.equal(header.x5t, rsa.thumbprints.x5t);
    assert.equal(header['x5t#S256'], rsa.thumbprints.x5tS256);
  });

  test('no thumbprint header when asked for none', async () => {
    const { header } = decode(await signer(rsa, 'oidc', { thumbprint: 'none' }).sign('https://idp/token', 'c'));
    assert.deepEqual(Object.keys(header).sort(), ['alg', 'typ']);
  });

  test('every call signs a new assertion with a fresh jti', async () => {
    const s = signer(rsa, 'entra');
    const jtis = new Set((await Promise.all(Array.from({ length: 50 }, () => s.sign(AUD, CLIENT)))).map((t) => decode(t).claims.jti));
    assert.equal(jtis.size, 50);
  });

  test('lifetime follows the config', async () => {
    const { claims } = decode(await signer(rsa, 'entra', { lifetimeSeconds: 120 }).sign(AUD, CLIENT));
    assert.equal(claims.exp - claims.iat, 120);
  });

  test('algorithm and key type must agree', async () => {
    assert.throws(() => resolveAssertionProfile({ algorithm: 'ES256', lifetimeSeconds: 600, sendX5c: false }, 'rsa', defaultsOf('oidc')), /ES256 needs an EC P-256 key/);
    assert.throws(() => resolveAssertionProfile({ algorithm: 'RS256', lifetimeSeconds: 600, sendX5c: false }, 'ec', defaultsOf('oidc')), /needs an RSA key/);
  });
});

describe('where the key is', () => {
  test('without the optional PKCS#11 binding, a pkcs11 credential says what the image lacks (503, nothing sent), and nothing else changes', async () => {
    assert.throws(() => loadPkcs11Binding('pkcs11js-not-installed'), /the PKCS#11 binding \(the optional dependency pkcs11js\) is not installed: build the image with a C\+\+ toolchain/);
    const signer = new Pkcs11KeySigner({ module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 't', keyLabel: 'k', pinFile: '/nonexistent', sessions: 2 }, '/', 'cdr', createLogger({ level: 'silent' }), () =>
      loadPkcs11Binding('pkcs11js-not-installed'),
    );
    await assert.rejects(signer.sign('RS256', Buffer.from('x'), rsa), (err: unknown) => err instanceof CredentialUnavailable && /pkcs11js\) is not installed/.test(err.message));
    // A key file signs as before.
    assert.equal((await new FileKeySigner().sign('RS256', Buffer.from('x'), rsa)).length, 256);
  });
});
