// Loads a credential's certificate and private key from PEM or PFX files and checks that they can
// sign assertions an IdP will accept. Problems are collected per field, never thrown one at a time.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import type { CertificateConfig } from './certificate-schema.ts';
import { computeThumbprints, type Thumbprints } from './thumbprints.ts';

/** jsonwebtoken refuses RSA keys under 2048 bits and Entra answers AADSTS50032 WeakRsaKey (docs/design.md §10.5). */
export const MIN_RSA_BITS = 2048;

export type KeyType = 'rsa' | 'ec';

export interface LoadedCertificate {
  /** The private key, when it is in a file; absent when an HSM or Key Vault holds it (the key signer signs). */
  privateKey?: KeyObject;
  /** Leaf first, then the rest of the chain as found. */
  chain: X509Certificate[];
  leaf: X509Certificate;
  thumbprints: Thumbprints;
  keyType: KeyType;
  /** RSA modulus length, or the EC curve size. */
  keyBits: number;
  namedCurve?: string;
  notBefore: Date;
  notAfter: Date;
  /** Files the material was read from (absolute), for reload watching. */
  files: string[];
  /** A certificate read from Key Vault: the key version it belongs to (a new certificate version comes with a new key version). */
  keyVaultKeyId?: string;
}

export interface CertificateProblem {
  /** The config field the problem belongs to: certFile, keyFile, pfxFile or passphraseFile. */
  field: string;
  message: string;
}

export class CertificateLoadError extends Error {
  constructor(readonly problems: CertificateProblem[]) {
    super(problems.map((p) => `${p.field}: ${p.message}`).join('; '));
  }
}

function readFile(path: string, field: string, problems: CertificateProblem[]): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push({
      field,
      message: code === 'ENOENT' ? `file not found: ${path}` : code === 'EACCES' ? `file not readable: ${path}` : `cannot read ${path} (${code ?? 'error'})`,
    });
    return undefined;
  }
}

function readPassphrase(path: string | undefined, problems: CertificateProblem[]): string | undefined {
  if (!path) return undefined;
  const raw = readFile(path, 'passphraseFile', problems);
  // Secret files usually end with a newline that is not part of the secret.
  return raw?.toString('utf8').replace(/\r?\n$/, '');
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function parsePemChain(pem: string, field: string, problems: CertificateProblem[]): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    problems.push({ field, message: 'no PEM certificate (-----BEGIN CERTIFICATE-----) found' });
    return [];
  }
  const chain: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      chain.push(new X509Certificate(block));
    } catch {
      problems.push({ field, message: `certificate #${i + 1} in the file is not valid PEM/DER` });
    }
  }
  return chain;
}

function parsePemKey(pem: Buffer, passphrase: string | undefined, problems: CertificateProblem[]): KeyObject | undefined {
  const text = pem.toString('utf8');
  if (!/-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.test(text)) {
    problems.push({ field: 'keyFile', message: 'no PEM private key found (expected PKCS#8, PKCS#1 RSA or SEC1 EC)' });
    return undefined;
  }
  try {
    return createPrivateKey(passphrase === undefined ? { key: text } : { key: text, passphrase });
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    const encrypted = /ENCRYPTED/.test(text) || /Proc-Type: 4,ENCRYPTED/.test(text);
    problems.push({
      field: encrypted ? 'passphraseFile' : 'keyFile',
      message: encrypted
        ? passphrase === undefined
          ? 'the private key is encrypted: set passphraseFile'
          : 'the passphrase does not decrypt the private key'
        : `the private key cannot be parsed (${code || 'unsupported format'})`,
    });
    return undefined;
  }
}

function parsePfx(der: Buffer, passphrase: string | undefined, problems: CertificateProblem[]): { key?: KeyObject; chain: X509Certificate[] } {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, passphrase ?? '');
  } catch (err) {
    const message = (err as Error).message ?? '';
    problems.push(
      /password|mac|decrypt/i.test(message)
        ? { field: 'passphraseFile', message: passphrase === undefined ? 'the PFX is protected: set passphraseFile' : 'the passphrase does not open the PFX' }
        : { field: 'pfxFile', message: 'not a PKCS#12 / PFX file' },
    );
    return { chain: [] };
  }
  const chain: X509Certificate[] = [];
  let key: KeyObject | undefined;
  for (const bag of p12.safeContents.flatMap((sc) => sc.safeBags)) {
    // node-forge only models RSA; for EC it hands back the raw ASN.1, which Node parses.
    const raw = bag as forge.pkcs12.Bag & { asn1?: forge.asn1.Asn1 };
    if (bag.type === forge.pki.oids.certBag) {
      const asn1 = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : raw.asn1;
      if (asn1) chain.push(new X509Certificate(Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary')));
    } else if (bag.type === forge.pki.oids.pkcs8ShroudedKeyBag || bag.type === forge.pki.oids.keyBag) {
      const info = bag.key
        ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(bag.key as forge.pki.rsa.PrivateKey))
        : raw.asn1;
      if (info && !key) {
        key = createPrivateKey({ key: Buffer.from(forge.asn1.toDer(info).getBytes(), 'binary'), format: 'der', type: 'pkcs8' });
      }
    }
  }
  if (!key) problems.push({ field: 'pfxFile', message: 'the PFX holds no private key' });
  if (chain.length === 0) problems.push({ field: 'pfxFile', message: 'the PFX holds no certificate' });
  return { key, chain };
}

/**
 * A certificate whose key is held elsewhere (Key Vault's certificate object): its public facts, as
 * loadCertificate gives them for a certificate file. Throws CertificateLoadError (field `keyVault`)
 * when it cannot sign assertions an IdP accepts.
 */
export function certificateFromDer(der: Buffer, source: string, now: Date, keyVaultKeyId?: string): LoadedCertificate {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(der);
  } catch {
    throw new CertificateLoadError([{ field: 'keyVault', message: `${source} did not return a DER certificate` }]);
  }
  const details = leaf.publicKey.asymmetricKeyDetails ?? {};
  const type = leaf.publicKey.asymmetricKeyType;
  const problems: CertificateProblem[] = [];
  if (type !== 'rsa' && !(type === 'ec' && details.namedCurve === 'prime256v1')) problems.push({ field: 'keyVault', message: `the certificate's key is ${type} ${details.namedCurve ?? ''}: use RSA (2048+ bits) or EC P-256` });
  if (type === 'rsa' && (details.modulusLength ?? 0) < MIN_RSA_BITS) problems.push({ field: 'keyVault', message: `RSA key of ${details.modulusLength} bits: at least ${MIN_RSA_BITS} are required` });
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now.getTime()) problems.push({ field: 'keyVault', message: `the certificate from ${source} expired on ${notAfter.toISOString()}` });
  if (problems.length > 0) throw new CertificateLoadError(problems);
  return {
    chain: [leaf],
    leaf,
    thumbprints: computeThumbprints(leaf.raw),
    keyType: type === 'ec' ? 'ec' : 'rsa',
    keyBits: type === 'ec' ? 256 : (details.modulusLength ?? 0),
    namedCurve: details.namedCurve,
    notBefore,
    notAfter,
    files: [],
    keyVaultKeyId,
  };
}

/**
 * Reads and checks a certificate + key. Throws CertificateLoadError listing every problem found.
 * Relative paths resolve against `baseDir` (the config file's folder).
 */
export function loadCertificate(spec: CertificateConfig, baseDir: string, now: Date = new Date()): LoadedCertificate {
  const problems: CertificateProblem[] = [];
  const passphrase = readPassphrase(spec.passphraseFile && resolve(baseDir, spec.passphraseFile), problems);
  let key: KeyObject | undefined;
  let chain: X509Certificate[] = [];
  const files: string[] = [];
  let mainField = 'certFile';
  if (spec.pfxFile) {
    mainField = 'pfxFile';
    const path = resolve(baseDir, spec.pfxFile);
    files.push(path);
    const der = readFile(path, 'pfxFile', problems);
    if (der && problems.length === 0) ({ key, chain } = parsePfx(der, passphrase, problems));
  } else {
    // The schema guarantees certFile, and keyFile unless an HSM or Key Vault holds the key.
    const certPath = resolve(baseDir, spec.certFile!);
    files.push(certPath);
    const certPem = readFile(certPath, 'certFile', problems);
    if (certPem) chain = parsePemChain(certPem.toString('utf8'), 'certFile', problems);
    if (spec.keyFile) {
      const keyPath = resolve(baseDir, spec.keyFile);
      files.push(keyPath);
      const keyPem = readFile(keyPath, 'keyFile', problems);
      if (keyPem) key = parsePemKey(keyPem, passphrase, problems);
    }
  }
  const keyElsewhere = !spec.pfxFile && !spec.keyFile;
  // The HSM's library and PIN are read when the token opens; here only that they are there.
  for (const [field, file] of [['pkcs11.module', spec.pkcs11?.module], ['pkcs11.pinFile', spec.pkcs11?.pinFile]] as const) {
    if (file) readFile(resolve(baseDir, file), field, problems);
  }
  if ((!key && !keyElsewhere) || chain.length === 0 || problems.length > 0) throw new CertificateLoadError(problems);

  // The leaf is the certificate whose public key matches the private key, wherever it sits in the
  // file; with the key in an HSM or a vault, the first one (the key signer checks the pair when it opens).
  const leafIndex = key ? chain.findIndex((c) => c.checkPrivateKey(key)) : 0;
  if (leafIndex < 0) {
    problems.push({
      field: mainField === 'pfxFile' ? 'pfxFile' : 'keyFile',
      message: 'the private key does not match the certificate (no certificate in the file has its public key)',
    });
    throw new CertificateLoadError(problems);
  }
  const leaf = chain[leafIndex]!;
  chain = [leaf, ...chain.filter((_, i) => i !== leafIndex)];

  const publicOrPrivate = key ?? leaf.publicKey;
  const details = publicOrPrivate.asymmetricKeyDetails ?? {};
  const type = publicOrPrivate.asymmetricKeyType;
  let keyType: KeyType;
  let keyBits = 0;
  if (type === 'rsa') {
    keyType = 'rsa';
    keyBits = details.modulusLength ?? 0;
    if (keyBits < MIN_RSA_BITS) {
      problems.push({ field: mainField === 'pfxFile' ? 'pfxFile' : keyElsewhere ? 'certFile' : 'keyFile', message: `RSA key of ${keyBits} bits: at least ${MIN_RSA_BITS} are required (Entra AADSTS50032 WeakRsaKey)` });
    }
  } else if (type === 'ec') {
    keyType = 'ec';
    keyBits = details.namedCurve === 'prime256v1' ? 256 : details.namedCurve === 'secp384r1' ? 384 : details.namedCurve === 'secp521r1' ? 521 : 0;
  } else {
    problems.push({ field: mainField === 'pfxFile' ? 'pfxFile' : keyElsewhere ? 'certFile' : 'keyFile', message: `unsupported key type '${type}': use RSA (2048+ bits) or EC P-256` });
    throw new CertificateLoadError(problems);
  }

  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now.getTime()) {
    problems.push({ field: mainField, message: `certificate expired on ${notAfter.toISOString()} (subject ${leaf.subject.replace(/\n/g, ', ')})` });
  } else if (notBefore.getTime() > now.getTime()) {
    problems.push({ field: mainField, message: `certificate is not valid before ${notBefore.toISOString()}` });
  }
  if (problems.length > 0) throw new CertificateLoadError(problems);

  return {
    privateKey: key,
    chain,
    leaf,
    thumbprints: computeThumbprints(leaf.raw),
    keyType,
    keyBits,
    namedCurve: details.namedCurve,
    notBefore,
    notAfter,
    files,
  };
}
