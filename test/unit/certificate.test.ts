// Certificate loading: PEM chains, every key encoding, PFX, thumbprints as IdPs compute them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import forge from 'node-forge';
import { CertificateLoadError, loadCertificate } from '../../src/client-auth/certificate/certificate.ts';
import { computeThumbprints } from '../../src/client-auth/certificate/thumbprints.ts';
import { createThrowawayCertificate, type ThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';
import { tempDir, type TempDir } from '../helpers/credential-files.ts';

let dir: TempDir;
let ca: ThrowawayCertificate;
let leaf: ThrowawayCertificate;
let ec: ThrowawayCertificate;

function rsaPfx(cert: ThrowawayCertificate, chain: ThrowawayCertificate[], passphrase: string): Buffer {
  const p12 = forge.pkcs12.toPkcs12Asn1(
    forge.pki.privateKeyFromPem(createPrivateKey(cert.keyPem).export({ type: 'pkcs1', format: 'pem' }) as string),
    [cert, ...chain].map((c) => forge.pki.certificateFromPem(c.certPem)),
    passphrase,
    { algorithm: '3des' },
  );
  return Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary');
}

function loadError(fn: () => unknown): CertificateLoadError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CertificateLoadError, String(err));
    return err;
  }
  assert.fail('expected a CertificateLoadError');
}

before(async () => {
  dir = tempDir();
  ca = await createThrowawayCertificate({ isCa: true, commonName: 'test ca' });
  leaf = await createThrowawayCertificate({ issuer: ca, commonName: 'leaf', keyFormat: 'pkcs1' });
  ec = await createThrowawayCertificate({ keyType: 'ec', keyFormat: 'sec1' });
});

after(() => dir.remove());

describe('thumbprints', () => {
  test('match the SHA-1 / SHA-256 fingerprints Node computes, and are base64url of the binary digest', () => {
    const cert = new X509Certificate(leaf.certPem);
    const t = computeThumbprints(cert.raw);
    assert.equal(t.sha1Hex, cert.fingerprint.replace(/:/g, ''));
    assert.equal(t.sha256Hex, cert.fingerprint256.replace(/:/g, ''));
    assert.equal(Buffer.from(t.x5t, 'base64url').toString('hex').toUpperCase(), t.sha1Hex);
    assert.equal(Buffer.from(t.x5tS256, 'base64url').length, 32);
    assert.match(t.x5t, /^[A-Za-z0-9_-]{27}$/, 'base64url without padding');
    // The well-known mistake: base64 of the hex string is 56 characters, not 27.
    assert.notEqual(t.x5t, Buffer.from(t.sha1Hex).toString('base64url'));
  });
});

describe('PEM', () => {
  test('a chain with the leaf not first: the leaf is found by its key, the chain kept', () => {
    const certFile = dir.write('chain.crt', ca.certPem + leaf.certPem);
    const keyFile = dir.write('chain.key', leaf.keyPem);
    const loaded = loadCertificate({ certFile, keyFile }, dir.path);
    assert.equal(loaded.leaf.subject, 'CN=leaf');
    assert.equal(loaded.chain.length, 2);
    assert.equal(loaded.chain[1]!.subject, 'CN=test ca');
    assert.equal(loaded.keyType, 'rsa');
    assert.equal(loaded.keyBits, 2048);
    assert.equal(loaded.thumbprints.sha1Hex, new X509Certificate(leaf.certPem).fingerprint.replace(/:/g, ''));
  });

  for (const format of ['pkcs8', 'pkcs1'] as const) {
    test(`RSA key in ${format}`, () => {
      const keyFile = dir.write(`rsa-${format}.key`, createPrivateKey(leaf.keyPem).export({ type: format, format: 'pem' }) as string);
      const certFile = dir.write('leaf.crt', leaf.certPem);
      assert.equal(loadCertificate({ certFile, keyFile }, dir.path).keyType, 'rsa');
    });
  }

  test('EC key in SEC1 and PKCS#8', () => {
    const certFile = dir.write('ec.crt', ec.certPem);
    const sec1 = loadCertificate({ certFile, keyFile: dir.write('ec-sec1.key', ec.keyPem) }, dir.path);
    assert.equal(sec1.keyType, 'ec');
    assert.equal(sec1.namedCurve, 'prime256v1');
    const pkcs8 = createPrivateKey(ec.keyPem).export({ type: 'pkcs8', format: 'pem' }) as string;
    assert.equal(loadCertificate({ certFile, keyFile: dir.write('ec-pkcs8.key', pkcs8) }, dir.path).keyType, 'ec');
  });

  test('an encrypted PKCS#8 key needs its passphrase file', () => {
    const encrypted = createPrivateKey(leaf.keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 's3cret' }) as string;
    const certFile = dir.write('leaf.crt', leaf.certPem);
    const keyFile = dir.write('enc.key', encrypted);
    assert.equal(loadCertificate({ certFile, keyFile, passphraseFile: dir.write('pass', 's3cret\n') }, dir.path).keyType, 'rsa');
    assert.match(loadError(() => loadCertificate({ certFile, keyFile }, dir.path)).problems[0]!.message, /encrypted: set passphraseFile/);
    const wrong = loadError(() => loadCertificate({ certFile, keyFile, passphraseFile: dir.write('wrong', 'nope') }, dir.path));
    assert.deepEqual(wrong.problems[0], { field: 'passphraseFile', message: 'the passphrase does not decrypt the private key' });
  });

  test('a file with no certificate, and a certificate that is not PEM, are named', () => {
    const keyFile = dir.write('leaf.key', leaf.keyPem);
    const none = loadError(() => loadCertificate({ certFile: dir.write('none.crt', 'hello'), keyFile }, dir.path));
    assert.equal(none.problems[0]!.field, 'certFile');
    assert.match(none.problems[0]!.message, /no PEM certificate/);
    const broken = loadError(() => loadCertificate({ certFile: dir.write('broken.crt', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), keyFile }, dir.path));
    assert.match(broken.problems[0]!.message, /not valid PEM/);
  });

  test('a not-yet-valid certificate is refused', async () => {
    const future = await createThrowawayCertificate({ notBefore: new Date(Date.now() + 86_400_000), notAfter: new Date(Date.now() + 10 * 86_400_000) });
    const e = loadError(() => loadCertificate({ certFile: dir.write('f.crt', future.certPem), keyFile: dir.write('f.key', future.keyPem) }, dir.path));
    assert.match(e.problems[0]!.message, /not valid before/);
  });

  test('error messages never contain key material', () => {
    const keyFile = dir.write('mismatch.key', ec.keyPem);
    const e = loadError(() => loadCertificate({ certFile: dir.write('leaf.crt', leaf.certPem), keyFile }, dir.path));
    const body = ec.keyPem.split('\n')[1]!;
    assert.ok(!e.message.includes(body.slice(0, 20)));
    assert.ok(!e.message.includes('PRIVATE KEY'));
  });
});

describe('PFX / PKCS#12', () => {
  test('RSA PFX with chain and passphrase (node-forge, 3DES)', () => {
    const pfxFile = dir.write('rsa.pfx', rsaPfx(leaf, [ca], 'pfx-pass'));
    const loaded = loadCertificate({ pfxFile, passphraseFile: dir.write('pfx-pass', 'pfx-pass\n') }, dir.path);
    assert.equal(loaded.leaf.subject, 'CN=leaf');
    assert.equal(loaded.chain.length, 2);
    assert.ok(loaded.leaf.checkPrivateKey(loaded.privateKey!));
  });

  test('EC PFX made by openssl (AES-256 + PBKDF2, as OpenSSL 3 writes them)', () => {
    const certFile = dir.write('ec.crt', ec.certPem);
    const keyFile = dir.write('ec.key', ec.keyPem);
    const pfxFile = `${dir.path}/ec.pfx`;
    execFileSync('openssl', ['pkcs12', '-export', '-in', certFile, '-inkey', keyFile, '-out', pfxFile, '-passout', 'pass:ec-pass']);
    const loaded = loadCertificate({ pfxFile, passphraseFile: dir.write('ec-pass', 'ec-pass') }, dir.path);
    assert.equal(loaded.keyType, 'ec');
    assert.equal(loaded.thumbprints.sha256Hex, createHash('sha256').update(new X509Certificate(ec.certPem).raw).digest('hex').toUpperCase());
  });

  test('a wrong passphrase and a non-PFX file are named', () => {
    const pfxFile = dir.write('rsa2.pfx', rsaPfx(leaf, [], 'right'));
    const wrong = loadError(() => loadCertificate({ pfxFile, passphraseFile: dir.write('wrong-pfx', 'wrong') }, dir.path));
    assert.equal(wrong.problems[0]!.field, 'passphraseFile');
    const garbage = loadError(() => loadCertificate({ pfxFile: dir.write('garbage.pfx', 'not a pfx') }, dir.path));
    assert.deepEqual(garbage.problems[0], { field: 'pfxFile', message: 'not a PKCS#12 / PFX file' });
  });
});
