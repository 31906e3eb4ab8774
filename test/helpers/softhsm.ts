// A SoftHSM2 token of the test's own, in a temp folder: an RSA and an EC key pair generated inside the
// token (sensitive, never extractable) and a certificate for each, issued by a throw-away CA.
// Needs Debian's softhsm2 (the library and softhsm2-util) and the optional dependency pkcs11js.
// The library reads SOFTHSM2_CONF at C_Initialize: give a broker `env` (or set it in process.env
// before the broker initialises the library in this process).
import 'reflect-metadata'; // before @peculiar/x509 (its dependency injection needs it)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type * as Pkcs11js from 'pkcs11js';
import { createThrowawayCertificate, type ThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';
import { tempDir } from './credential-files.ts';

export interface SoftHsmKey {
  /** CKA_LABEL of the key pair. */
  label: string;
  /** CKA_ID, hex. */
  idHex: string;
  keyType: 'rsa' | 'ec';
  /** PEM certificate for the token's public key, issued by the fixture's CA. */
  certFile: string;
  certPem: string;
}

export interface SoftHsm {
  module: string;
  tokenLabel: string;
  /** The slot id the token got. */
  slot: number;
  /** File with the user PIN (one line). */
  pinFile: string;
  /** env for a process using this token: { SOFTHSM2_CONF } (the library reads it at C_Initialize). */
  env: Record<string, string>;
  /** RSA 2048, generated in the token: CKA_SENSITIVE true, CKA_EXTRACTABLE false, CKA_SIGN. */
  rsa: SoftHsmKey;
  /** EC P-256, same flags. */
  ec: SoftHsmKey;
  caPem: string;
  /** Tries to read the RSA key's CKA_PRIVATE_EXPONENT and the EC key's CKA_VALUE through PKCS#11; returns the error codes (expected CKR_ATTRIBUTE_SENSITIVE). */
  readPrivateParts(): { rsa: string; ec: string };
  /** Makes the token vanish (renames its directory under the token dir) and brings it back. */
  removeToken(): void;
  restoreToken(): void;
  /** Removes the temp dir. */
  close(): void;
}

const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const P256_OID_DER = Buffer.from('06082a8648ce3d030107', 'hex');
const DAY_MS = 86_400_000;

type Pkcs11Module = typeof Pkcs11js;
type Handle = Buffer;

// One loaded instance for the whole process. The library's state (C_Initialize / C_Finalize, logins)
// is process-wide anyway: every PKCS11 instance that loads the same .so shares it.
let loaded: { lib: Pkcs11Module; p11: Pkcs11js.PKCS11 } | undefined;

function pkcs11(): { lib: Pkcs11Module; p11: Pkcs11js.PKCS11 } {
  if (loaded) return loaded;
  if (!existsSync(SOFTHSM_MODULE)) throw new Error(`SoftHSM2 is not installed (${SOFTHSM_MODULE} is missing): apt-get install softhsm2`);
  let lib: Pkcs11Module;
  try {
    lib = createRequire(import.meta.url)('pkcs11js') as Pkcs11Module;
  } catch (err) {
    throw new Error(`pkcs11js (an optional dependency) cannot be loaded: ${(err as Error).message}`);
  }
  const p11 = new lib.PKCS11();
  p11.load(SOFTHSM_MODULE);
  loaded = { lib, p11 };
  return loaded;
}

function ckrName(err: unknown): string {
  if (err instanceof Error && /^CKR_\w+$/.test(err.message)) return err.message;
  return String(err);
}

function slotNumber(handle: Handle): number {
  return handle.length >= 8 ? Number(handle.readBigUInt64LE(0)) : handle.readUInt32LE(0);
}

function bool(value: Buffer | undefined): boolean {
  return value !== undefined && value.length > 0 && value[0] !== 0;
}

function b64url(bytes: Buffer): string {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++; // JWK integers carry no leading zeros
  return bytes.subarray(start).toString('base64url');
}

/** CKA_EC_POINT is a DER OCTET STRING around the uncompressed point 04‖x‖y (some tokens give the bare point). */
function ecPoint(value: Buffer): Buffer {
  const point = value.length === 67 && value[0] === 0x04 && value[1] === 0x41 ? value.subarray(2) : value;
  if (point.length !== 65 || point[0] !== 0x04) throw new Error(`unexpected CKA_EC_POINT (${value.toString('hex')})`);
  return point;
}

interface Session {
  lib: Pkcs11Module;
  p11: Pkcs11js.PKCS11;
  session: Handle;
  slot: Handle;
}

/**
 * Runs `work` in a logged-in session on the token, synchronously: SOFTHSM2_CONF is set only meanwhile.
 * Initialises and finalizes the library unless someone else in this process already had it initialised
 * (then it only closes its session, and logs out only if it was the one that logged in).
 */
function withSession<T>(conf: string, tokenLabel: string, pin: string, rw: boolean, work: (s: Session) => T): T {
  const { lib, p11 } = pkcs11();
  const previousConf = process.env.SOFTHSM2_CONF;
  process.env.SOFTHSM2_CONF = conf;
  let initialisedHere = false;
  let session: Handle | undefined;
  let loggedInHere = false;
  try {
    try {
      p11.C_Initialize();
      initialisedHere = true;
    } catch (err) {
      if (ckrName(err) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw err;
    }
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === tokenLabel);
    if (!slot) {
      throw new Error(
        `SoftHSM token '${tokenLabel}' is not visible` +
          (initialisedHere ? '' : ' (the library was already initialised in this process, maybe with another SOFTHSM2_CONF)'),
      );
    }
    session = p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | (rw ? lib.CKF_RW_SESSION : 0));
    try {
      p11.C_Login(session, lib.CKU_USER, pin);
      loggedInHere = true;
    } catch (err) {
      if (ckrName(err) !== 'CKR_USER_ALREADY_LOGGED_IN') throw err;
    }
    return work({ lib, p11, session, slot });
  } finally {
    try {
      if (session && loggedInHere) p11.C_Logout(session);
      if (session) p11.C_CloseSession(session);
    } finally {
      if (initialisedHere) p11.C_Finalize();
      if (previousConf === undefined) delete process.env.SOFTHSM2_CONF;
      else process.env.SOFTHSM2_CONF = previousConf;
    }
  }
}

function findPrivateKey({ lib, p11, session }: Session, label: string, id: Buffer): Handle {
  p11.C_FindObjectsInit(session, [
    { type: lib.CKA_CLASS, value: lib.CKO_PRIVATE_KEY },
    { type: lib.CKA_LABEL, value: label },
    { type: lib.CKA_ID, value: id },
  ]);
  try {
    const found = p11.C_FindObjects(session, 2);
    if (found.length !== 1 || !found[0]) throw new Error(`expected one private key '${label}' in the token, found ${found.length}`);
    return found[0];
  } finally {
    p11.C_FindObjectsFinal(session);
  }
}

interface GeneratedKey {
  label: string;
  id: Buffer;
  keyType: 'rsa' | 'ec';
  jwk: JsonWebKey;
}

function generateKeyPair(s: Session, keyType: 'rsa' | 'ec', label: string): GeneratedKey {
  const { lib, p11, session } = s;
  const id = randomBytes(8);
  const common = [
    { type: lib.CKA_TOKEN, value: true },
    { type: lib.CKA_LABEL, value: label },
    { type: lib.CKA_ID, value: id },
  ];
  const publicTemplate = [
    ...common,
    { type: lib.CKA_CLASS, value: lib.CKO_PUBLIC_KEY },
    { type: lib.CKA_PRIVATE, value: false },
    { type: lib.CKA_VERIFY, value: true },
    ...(keyType === 'rsa'
      ? [
          { type: lib.CKA_KEY_TYPE, value: lib.CKK_RSA },
          { type: lib.CKA_MODULUS_BITS, value: 2048 },
          { type: lib.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        ]
      : [
          { type: lib.CKA_KEY_TYPE, value: lib.CKK_EC },
          { type: lib.CKA_EC_PARAMS, value: P256_OID_DER },
        ]),
  ];
  const privateTemplate = [
    ...common,
    { type: lib.CKA_CLASS, value: lib.CKO_PRIVATE_KEY },
    { type: lib.CKA_KEY_TYPE, value: keyType === 'rsa' ? lib.CKK_RSA : lib.CKK_EC },
    { type: lib.CKA_PRIVATE, value: true },
    { type: lib.CKA_SENSITIVE, value: true },
    { type: lib.CKA_EXTRACTABLE, value: false },
    { type: lib.CKA_SIGN, value: true },
  ];
  const mechanism = { mechanism: keyType === 'rsa' ? lib.CKM_RSA_PKCS_KEY_PAIR_GEN : lib.CKM_EC_KEY_PAIR_GEN };
  const keys = p11.C_GenerateKeyPair(session, mechanism, publicTemplate, privateTemplate);

  // What the token says it made, not what was asked for.
  const [sensitive, extractable, sign, token] = p11.C_GetAttributeValue(session, keys.privateKey, [
    { type: lib.CKA_SENSITIVE },
    { type: lib.CKA_EXTRACTABLE },
    { type: lib.CKA_SIGN },
    { type: lib.CKA_TOKEN },
  ]);
  if (!bool(sensitive?.value) || bool(extractable?.value) || !bool(sign?.value) || !bool(token?.value)) {
    throw new Error(`SoftHSM made the ${keyType} key '${label}' without CKA_SENSITIVE/!CKA_EXTRACTABLE/CKA_SIGN/CKA_TOKEN`);
  }

  if (keyType === 'rsa') {
    const [modulus, exponent] = p11.C_GetAttributeValue(session, keys.publicKey, [{ type: lib.CKA_MODULUS }, { type: lib.CKA_PUBLIC_EXPONENT }]);
    if (!modulus?.value || !exponent?.value) throw new Error(`no CKA_MODULUS/CKA_PUBLIC_EXPONENT on '${label}'`);
    return { label, id, keyType, jwk: { kty: 'RSA', n: b64url(modulus.value), e: b64url(exponent.value) } };
  }
  const [point] = p11.C_GetAttributeValue(session, keys.publicKey, [{ type: lib.CKA_EC_POINT }]);
  if (!point?.value) throw new Error(`no CKA_EC_POINT on '${label}'`);
  const xy = ecPoint(point.value);
  return {
    label,
    id,
    keyType,
    jwk: { kty: 'EC', crv: 'P-256', x: xy.subarray(1, 33).toString('base64url'), y: xy.subarray(33).toString('base64url') },
  };
}

async function issueCertificate(ca: ThrowawayCertificate, key: GeneratedKey): Promise<string> {
  const algorithm = key.keyType === 'rsa' ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'ECDSA', namedCurve: 'P-256' };
  const publicKey = await webcrypto.subtle.importKey('jwk', key.jwk, algorithm, true, ['verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'),
    subject: `CN=${key.label}`,
    issuer: new x509.X509Certificate(new Uint8Array(ca.der)).subject,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 30 * DAY_MS),
    publicKey: publicKey as CryptoKey,
    signingKey: ca.cryptoKeys.privateKey,
    signingAlgorithm: ca.algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    ],
  });
  return cert.toString('pem') + '\n';
}

export async function startSoftHsm(options: { tokenLabel?: string; pin?: string } = {}): Promise<SoftHsm> {
  pkcs11(); // fails early and clearly without softhsm2 or pkcs11js
  const tokenLabel = options.tokenLabel ?? `tb-${randomBytes(4).toString('hex')}`;
  if (Buffer.byteLength(tokenLabel) > 32) throw new Error(`token label '${tokenLabel}' is longer than 32 bytes`);
  const pin = options.pin ?? randomBytes(8).toString('hex');
  const dir = tempDir('token-broker-softhsm-');
  try {
    const tokenDir = join(dir.path, 'tokens');
    // Outside the token dir: SoftHSM takes every folder in there for a token.
    const removedDir = join(dir.path, 'removed-token');
    mkdirSync(tokenDir, { mode: 0o700 });
    const conf = dir.write('softhsm2.conf', `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    const env = { SOFTHSM2_CONF: conf };

    const init = spawnSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', tokenLabel, '--pin', pin, '--so-pin', randomBytes(8).toString('hex')],
      { env: { ...process.env, ...env }, encoding: 'utf8' },
    );
    if (init.error) throw new Error(`softhsm2-util cannot run (${init.error.message}): apt-get install softhsm2`);
    const assigned = /reassigned to slot (\d+)/.exec(init.stdout);
    if (init.status !== 0 || !assigned?.[1]) throw new Error(`softhsm2-util --init-token failed (${init.status}): ${init.stdout}${init.stderr}`);
    const slot = Number(assigned[1]);

    // All PKCS#11 work in one synchronous stretch (SOFTHSM2_CONF is swapped only meanwhile), then
    // logged out, session closed and the library finalized before anything else runs.
    const [rsaKey, ecKey] = withSession(conf, tokenLabel, pin, true, (s) => {
      if (slotNumber(s.slot) !== slot) throw new Error(`token '${tokenLabel}' is in slot ${slotNumber(s.slot)}, softhsm2-util said ${slot}`);
      return [generateKeyPair(s, 'rsa', `${tokenLabel}-rsa`), generateKeyPair(s, 'ec', `${tokenLabel}-ec`)] as const;
    });

    const ca = await createThrowawayCertificate({ isCa: true, commonName: `${tokenLabel} CA` });
    const key = async (generated: GeneratedKey): Promise<SoftHsmKey> => {
      const certPem = await issueCertificate(ca, generated);
      return {
        label: generated.label,
        idHex: generated.id.toString('hex'),
        keyType: generated.keyType,
        certFile: dir.write(`${generated.label}.crt`, certPem),
        certPem,
      };
    };
    const rsa = await key(rsaKey);
    const ec = await key(ecKey);

    const tokenFolder = () => {
      const folders = readdirSync(tokenDir, { withFileTypes: true }).filter((e) => e.isDirectory());
      if (folders.length !== 1 || !folders[0]) throw new Error(`expected one token folder in ${tokenDir}, found ${folders.length}`);
      return join(tokenDir, folders[0].name);
    };
    let removedFrom: string | undefined;

    return {
      module: SOFTHSM_MODULE,
      tokenLabel,
      slot,
      pinFile: dir.write('user.pin', `${pin}\n`),
      env,
      rsa,
      ec,
      caPem: ca.certPem,
      readPrivateParts: () =>
        withSession(conf, tokenLabel, pin, false, (s) => {
          const attempt = (k: GeneratedKey, attribute: number) => {
            try {
              s.p11.C_GetAttributeValue(s.session, findPrivateKey(s, k.label, k.id), [{ type: attribute }]);
              return 'CKR_OK';
            } catch (err) {
              return ckrName(err);
            }
          };
          return { rsa: attempt(rsaKey, s.lib.CKA_PRIVATE_EXPONENT), ec: attempt(ecKey, s.lib.CKA_VALUE) };
        }),
      removeToken: () => {
        if (removedFrom) return;
        const folder = tokenFolder();
        renameSync(folder, removedDir);
        removedFrom = folder;
      },
      restoreToken: () => {
        if (!removedFrom) return;
        renameSync(removedDir, removedFrom);
        removedFrom = undefined;
      },
      close: () => dir.remove(),
    };
  } catch (err) {
    dir.remove();
    throw err;
  }
}
