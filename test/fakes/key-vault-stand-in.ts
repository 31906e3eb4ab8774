// A strict, in-process stand-in for the Azure Key Vault data plane, for integration tests of the
// broker's "certificate keys in Azure Key Vault" (the real vault cannot be reached from here).
//
// It serves exactly what the Azure SDK for JS sends for that feature: `KeyClient.getKey` /
// `CryptographyClient` (@azure/keyvault-keys 4.10) and `CertificateClient.getCertificate`
// (@azure/keyvault-certificates 4.10), over HTTPS with a throw-away CA the test trusts.
//
// "Strict" means, as in entra-stand-in.ts: every request goes through Key Vault's challenge
// authentication, must carry a recognised `api-version`, and a sign request must carry a 32-byte
// SHA-256 digest for an algorithm that fits the key; answers have Key Vault's JSON shapes and
// `{ error: { code, message } }` error bodies. Where Microsoft's documentation (or public reports)
// leave a behaviour open, the comment says "(guess)" and the stand-in errs on the side of
// rejecting: a false red in a test is cheaper than a false green in production.
//
// Processing order for every request (the first failure wins):
//   1. fault injection ('down' never gets here: the listener is closed);
//   2. authentication (401 + challenge);
//   3. `api-version` (400);
//   4. routing (404 / 405), then the operation's own checks (sign: 400).
//
// References:
//   [auth]   learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses
//   [errors] learn.microsoft.com/azure/key-vault/general/rest-error-codes
//   [objids] learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates
//   [sign]   learn.microsoft.com/rest/api/keyvault/keys/sign/sign
//   [getkey] learn.microsoft.com/rest/api/keyvault/keys/get-key/get-key
//   [getcrt] learn.microsoft.com/rest/api/keyvault/certificates/get-certificate/get-certificate
//   [thrtl]  learn.microsoft.com/azure/key-vault/general/overview-throttling
import 'reflect-metadata'; // before @peculiar/x509 (its dependency injection needs it)
import {
  X509Certificate,
  constants as cryptoConstants,
  createECDH,
  createHash,
  createPrivateKey,
  createPublicKey,
  privateEncrypt,
  randomBytes,
  randomUUID,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';
import { headerValue, isB64url, jsonObjectOf, loopbackServerCertificate, readBody, safeDecode } from './fake-server-parts.ts';

// ───────────────────────────────────────── public API ─────────────────────────────────────────

export type KeyVaultFault = { kind: 'down' } | { kind: 'slow'; ms: number } | { kind: 'throttle'; retryAfterSeconds: number };

export interface KeyVaultRequest {
  method: string;
  /** Path without the query string, as received (the SDK sends `/keys/name/` and `/keys/name//sign` for "latest"). */
  path: string;
  /** HTTP status sent; 0 while unanswered, or when the connection was dropped before an answer. */
  status: number;
  /** Sign requests with a string `value`: how many bytes it decodes to (whatever the outcome). */
  signedBytes?: number;
  /** Sign requests: the `alg` of the body, when it was a string. */
  alg?: string;
  /** Top-level field names of a JSON-object body, in order (sign: `['alg', 'value']`). Absent without one. */
  bodyFields?: string[];
  /** Claims of the accepted bearer token. Absent when the request was not authenticated. */
  caller?: { sub?: string; appid?: string; tid?: string };
}

export interface KeyVaultStandIn {
  /** https://127.0.0.1:PORT (the vault URL). */
  url: string;
  /** The stand-in's CA (PEM): trust it. It issued the TLS server certificate and every key's certificate. */
  caPem: string;
  /** The tenant named in the challenge. */
  tenantId: string;
  /** Adds a key (RSA 2048 or EC P-256) with a certificate for it (issued by the stand-in's CA), as version 1. */
  addCertificate(name: string, keyType: 'rsa' | 'ec'): Promise<{ keyId: string; versionedKeyId: string; certPem: string }>;
  /** A new key + certificate version under the same name (a rotation); becomes the latest. */
  rotate(name: string): Promise<{ versionedKeyId: string; certPem: string }>;
  /** Every request received, in arrival order (`status` is filled in when it is answered). */
  requests: KeyVaultRequest[];
  /**
   * Failure injection: 'down' (connections refused: the listener and every socket are closed, the
   * port is kept for later), 'slow' (answers after `ms`), 'throttle' (429 with Retry-After seconds),
   * or undefined (healthy; listens again on the same port after 'down').
   */
  setFault(fault?: KeyVaultFault): Promise<void>;
  close(): Promise<void>;
}

// ───────────────────────────────────────── constants ──────────────────────────────────────────

// The resource Key Vault names in its challenge and expects as the token audience [auth]. The
// brief for this stand-in accepts the trailing-slash form too; note that Key Vault has been seen
// refusing it ("AKV10022: Invalid audience. Expected https://vault.azure.net, found:
// https://vault.azure.net/.", Azure/go-autorest#525), so a broker should not rely on it.
const VAULT_RESOURCE = 'https://vault.azure.net';
const ACCEPTED_AUDIENCES = new Set([VAULT_RESOURCE, `${VAULT_RESOURCE}/`]);

// What @azure/keyvault-keys 4.10.2 and @azure/keyvault-certificates 4.10.3 send by default
// (LATEST_API_VERSION in their keysModels.js / certificatesModels.js): Key Vault moved from 7.x to
// date versions with this one. The 7.x line stays accepted for clients pinned to `serviceVersion`.
const DATE_API_VERSIONS = new Set(['2025-07-01']);
const LATEST_API_VERSION = '2025-07-01';

// Key Vault object names: 1-127 characters of 0-9, a-z, A-Z and '-'; case-insensitive [objids].
const OBJECT_NAME = /^[0-9A-Za-z-]{1,127}$/;

// Algorithms modelled. Real Key Vault also signs RS384/RS512/PS384/PS512 (RSA) and
// ES256K/ES384/ES512 (other curves) [sign]; the broker uses none of them, so the stand-in refuses
// them (a false red) rather than signing something it has not been checked against.
const ALG_KEY_TYPE: Record<string, 'rsa' | 'ec'> = { RS256: 'rsa', PS256: 'rsa', ES256: 'ec' };
const SHA256_BYTES = 32;

// DER prefix of DigestInfo { sha256, NULL } (RFC 8017 §9.2 note 1): EMSA-PKCS1-v1_5 = this ‖ H.
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

// Order of the P-256 base point (SEC 2 §2.4.2 / FIPS 186-4 D.1.2.3).
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

const NOT_FOUND_HELP =
  'If you recently deleted this {kind} you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182';

const MAX_BODY_BYTES = 1 << 20;

// ─────────────────────────────────────── implementation ───────────────────────────────────────

interface KeyVersion {
  version: string;
  keyType: 'rsa' | 'ec';
  privateKey: KeyObject;
  publicJwk: JsonWebKey;
  certPem: string;
  der: Buffer;
  /** Certificate validity, NumericDate seconds (Key Vault copies it onto the key's nbf/exp). */
  nbf: number;
  exp: number;
  created: number;
}

interface VaultObject {
  /** As first added; Key Vault keeps the original casing in identifiers. */
  name: string;
  /** Oldest first; the last one is the latest. */
  versions: KeyVersion[];
}

interface ResponseCtx {
  res: ServerResponse;
  record: KeyVaultRequest;
  clientRequestId: string | undefined;
}

export async function startKeyVaultStandIn(options: { tenantId?: string } = {}): Promise<KeyVaultStandIn> {
  const tenantId = options.tenantId ?? randomUUID();
  const ca = await createThrowawayCertificate({ isCa: true, commonName: 'key-vault stand-in test CA' });
  const tls = await loopbackServerCertificate(ca);

  const objects = new Map<string, VaultObject>(); // key: lower-case name
  const requests: KeyVaultRequest[] = [];
  let fault: KeyVaultFault | undefined;
  let closed = false;

  const sockets = new Set<Socket>();
  const server = createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A bug in the stand-in must not look like a Key Vault answer.
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(599, { 'content-type': 'text/plain' });
        res.end(`key-vault stand-in internal error: ${String(err)}`);
      }
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  let listening = false;
  const listen = (port: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new Error(`key-vault stand-in: cannot listen on 127.0.0.1:${port}: ${err.message}`));
      server.once('error', onError);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', onError);
        listening = true;
        resolve();
      });
    });
  const stopListening = (): Promise<void> =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
      // Open keep-alive connections would otherwise keep answering: 'down' means nothing answers.
      for (const s of sockets) s.destroy();
    });

  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;

  const keyId = (name: string): string => `${url}/keys/${name}`;
  const versionedKeyId = (name: string, v: KeyVersion): string => `${url}/keys/${name}/${v.version}`;

  async function newVersion(name: string, keyType: 'rsa' | 'ec'): Promise<KeyVersion> {
    // Key Vault creates a key and a secret with each certificate version, all three under the same
    // name and version id [getcrt]; versions are 32 lower-case hex digits.
    const cert = await createThrowawayCertificate({ keyType, issuer: ca, commonName: name });
    const privateKey = createPrivateKey(cert.keyPem);
    const publicJwk = createPublicKey(privateKey).export({ format: 'jwk' });
    const parsed = new X509Certificate(cert.certPem);
    return {
      version: randomBytes(16).toString('hex'),
      keyType,
      privateKey,
      publicJwk,
      certPem: cert.certPem,
      der: cert.der,
      nbf: Math.floor(new Date(parsed.validFrom).getTime() / 1000),
      exp: Math.floor(new Date(parsed.validTo).getTime() / 1000),
      created: Math.floor(Date.now() / 1000),
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    const query = new URLSearchParams(q >= 0 ? rawUrl.slice(q + 1) : '');
    const method = req.method ?? 'GET';
    // Recorded on arrival so `requests` keeps arrival order even when latency is injected.
    const record: KeyVaultRequest = { method, path, status: 0 };
    requests.push(record);
    const ctx: ResponseCtx = { res, record, clientRequestId: headerValue(req, 'x-ms-client-request-id') };
    const activeFault = fault;

    const body = await readBody(req, MAX_BODY_BYTES);
    const json = jsonObjectOf(body);
    if (json) {
      record.bodyFields = Object.keys(json);
      if (SIGN_PATH.test(path)) {
        if (typeof json['alg'] === 'string') record.alg = json['alg'];
        // Lenient decode, for the record only: a test asserting "only 32-byte digests reached the
        // vault" must see whatever was sent, even a request the checks below refuse.
        if (typeof json['value'] === 'string') record.signedBytes = Buffer.from(json['value'], 'base64url').length;
      }
    }

    // 1. Faults.
    if (activeFault?.kind === 'slow') await sleep(activeFault.ms);
    if (activeFault?.kind === 'throttle') {
      // Body as seen in a real 429 (vcsjones/AzureSignTool#219). That response carried no
      // Retry-After, and [thrtl] tells clients to back off exponentially: a broker must not need
      // the header, even though the stand-in sends it.
      sendError(ctx, 429, 'Throttled', 'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached', {
        'retry-after': String(activeFault.retryAfterSeconds),
      });
      return;
    }

    // 2. Authentication [auth]. The SDK sends its first request without a token (and, for a POST,
    // without its body), expects this 401 and retries with a token for `resource` + "/.default".
    const auth = authenticate(headerValue(req, 'authorization'));
    if ('failure' in auth) {
      sendError(ctx, 401, 'Unauthorized', auth.failure, {
        'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${tenantId}", resource="${VAULT_RESOURCE}"`,
      });
      return;
    }
    record.caller = auth.caller;

    // 3. api-version.
    const apiVersion = query.get('api-version');
    if (apiVersion === null || apiVersion === '') {
      sendError(ctx, 400, 'BadParameter', 'The api-version query parameter is required.'); // wording (guess)
      return;
    }
    if (!/^7\.\d+$/.test(apiVersion) && !DATE_API_VERSIONS.has(apiVersion)) {
      // Wording as seen in responses (Azure/azure-sdk-for-python#28595).
      sendError(ctx, 400, 'BadParameter', `The specified version (${apiVersion}) is not recognized. Consider using the latest supported version (${LATEST_API_VERSION}).`);
      return;
    }

    // 4. Routing. An empty version segment means "latest": the SDK sends `/keys/name/` and
    // `/keys/name//sign` when it has no version (Azure/azure-sdk-for-js#25489, sigstore/cosign#3094).
    const sign = SIGN_PATH.exec(path);
    if (sign) {
      if (method !== 'POST') return methodNotAllowed(ctx, method);
      const found = lookup(ctx, 'key', sign[1] ?? '', sign[2] ?? '');
      if (found) signDigest(ctx, found.object, found.version, json, headerValue(req, 'content-type'));
      return;
    }
    const key = KEY_PATH.exec(path);
    if (key) {
      if (method !== 'GET') return methodNotAllowed(ctx, method);
      const found = lookup(ctx, 'key', key[1] ?? '', key[2] ?? '');
      if (found) sendJson(ctx, 200, keyBundle(found.object, found.version));
      return;
    }
    const cert = CERT_PATH.exec(path);
    if (cert) {
      if (method !== 'GET') return methodNotAllowed(ctx, method);
      const found = lookup(ctx, 'certificate', cert[1] ?? '', cert[2] ?? '');
      if (found) sendJson(ctx, 200, certificateBundle(found.object, found.version));
      return;
    }
    // Secrets (the certificate's private key), listing, policies, …: not served. Recorded, so a
    // test can assert the broker never asked. Wording (guess).
    sendError(ctx, 404, 'NotFound', `The key-vault stand-in does not serve ${method} ${path}.`);
  }

  function lookup(ctx: ResponseCtx, kind: 'key' | 'certificate', rawName: string, rawVersion: string): { object: VaultObject; version: KeyVersion } | undefined {
    const name = safeDecode(rawName);
    const wanted = safeDecode(rawVersion).toLowerCase();
    const object = objects.get(name.toLowerCase());
    const version = object && (wanted === '' ? object.versions.at(-1) : object.versions.find((v) => v.version === wanted));
    if (!object || !version) {
      // Wording as seen in responses (sigstore/cosign#3094 for keys; the secret variant in
      // Azure/azure-sdk-for-js#25489); the certificate code "CertificateNotFound" is (guess).
      const id = wanted === '' ? name : `${name}/${wanted}`;
      const article = kind === 'key' ? 'A key' : 'A certificate';
      sendError(ctx, 404, kind === 'key' ? 'KeyNotFound' : 'CertificateNotFound', `${article} with (name/id) ${id} was not found in this key vault. ${NOT_FOUND_HELP.replace('{kind}', kind)}`);
      return undefined;
    }
    return { object, version };
  }

  function keyBundle(object: VaultObject, v: KeyVersion): Record<string, unknown> {
    // Public parts only, as Key Vault returns them [getkey]. key_ops follow the certificate's key
    // usage (digitalSignature → sign, verify), which is what a certificate-backed key gets (guess).
    // `managed: true` marks a key whose lifetime is managed by a certificate [getkey].
    const jwk = v.publicJwk;
    const key =
      v.keyType === 'rsa'
        ? { kid: versionedKeyId(object.name, v), kty: 'RSA', key_ops: ['sign', 'verify'], n: jwk.n, e: jwk.e }
        : { kid: versionedKeyId(object.name, v), kty: 'EC', key_ops: ['sign', 'verify'], crv: 'P-256', x: jwk.x, y: jwk.y };
    return { key, attributes: attributes(v), managed: true };
  }

  function certificateBundle(object: VaultObject, v: KeyVersion): Record<string, unknown> {
    // [getcrt]: `cer` is standard base64 DER (the SDK decodes it as "base64"), `x5t` the base64url
    // SHA-1 thumbprint, `kid`/`sid` the key and secret of the same version.
    const latestPolicy = object.versions.at(-1) ?? v;
    return {
      id: `${url}/certificates/${object.name}/${v.version}`,
      kid: versionedKeyId(object.name, v),
      sid: `${url}/secrets/${object.name}/${v.version}`,
      x5t: createHash('sha1').update(v.der).digest('base64url'),
      cer: v.der.toString('base64'),
      contentType: 'application/x-pem-file',
      attributes: attributes(v),
      policy: certificatePolicy(object, latestPolicy),
    };
  }

  function certificatePolicy(object: VaultObject, v: KeyVersion): Record<string, unknown> {
    // Field names as the SDK's certificatePolicyDeserializer reads them. Issuer "Unknown": the
    // certificates come from an external CA (the stand-in's), not from Key Vault's "Self" issuer.
    return {
      id: `${url}/certificates/${object.name}/policy`,
      key_props:
        v.keyType === 'rsa'
          ? { exportable: false, kty: 'RSA', key_size: 2048, reuse_key: false }
          : { exportable: false, kty: 'EC', crv: 'P-256', reuse_key: false },
      secret_props: { contentType: 'application/x-pem-file' },
      x509_props: { subject: `CN=${object.name}`, ekus: [], key_usage: ['digitalSignature'], validity_months: 1 },
      lifetime_actions: [{ trigger: { lifetime_percentage: 80 }, action: { action_type: 'EmailContacts' } }],
      issuer: { name: 'Unknown' },
      attributes: { enabled: true, created: v.created, updated: v.created },
    };
  }

  function signDigest(ctx: ResponseCtx, object: VaultObject, v: KeyVersion, json: Record<string, unknown> | undefined, contentType: string | undefined): void {
    // Key Vault signs a digest: the caller hashes, the vault never sees the message [sign].
    const mediaType = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
    if (mediaType !== 'application/json' || !json) {
      sendError(ctx, 400, 'BadParameter', 'The request body must be a JSON object with "alg" and "value".'); // wording (guess)
      return;
    }
    const alg = json['alg'];
    const value = json['value'];
    if (typeof alg !== 'string' || ALG_KEY_TYPE[alg] === undefined) {
      sendError(ctx, 400, 'BadParameter', `Invalid or unsupported signature algorithm '${String(alg)}'.`); // wording (guess)
      return;
    }
    if (ALG_KEY_TYPE[alg] !== v.keyType) {
      sendError(ctx, 400, 'BadParameter', `Algorithm ${alg} is not valid for a key of type ${v.keyType === 'rsa' ? 'RSA' : 'EC'}.`); // wording (guess)
      return;
    }
    if (typeof value !== 'string' || !isB64url(value)) {
      sendError(ctx, 400, 'BadParameter', "Property 'value' must be a base64url-encoded string."); // wording (guess)
      return;
    }
    const digest = Buffer.from(value, 'base64url');
    if (digest.length !== SHA256_BYTES) {
      // Wording as seen in responses (Azure/azure-sdk-for-js#12654, Azure/azure-sdk-for-python#4399).
      sendError(ctx, 400, 'BadParameter', `Invalid length of 'value': ${digest.length} bytes. ${alg} requires ${SHA256_BYTES} bytes, encoded with base64url.`);
      return;
    }
    const signature = alg === 'RS256' ? signRs256(v.privateKey, digest) : alg === 'PS256' ? signPs256(v.privateKey, digest) : signEs256(v.privateKey, digest);
    sendJson(ctx, 200, { kid: versionedKeyId(object.name, v), value: signature.toString('base64url') });
  }

  return {
    url,
    caPem: ca.certPem,
    tenantId,
    requests,
    async addCertificate(name, keyType) {
      if (!OBJECT_NAME.test(name)) throw new Error(`key-vault stand-in: '${name}' is not a valid Key Vault object name (1-127 of 0-9, a-z, A-Z, -)`);
      if (keyType !== 'rsa' && keyType !== 'ec') throw new Error(`key-vault stand-in: key type must be 'rsa' or 'ec', not '${String(keyType)}'`);
      if (objects.has(name.toLowerCase())) throw new Error(`key-vault stand-in: '${name}' exists already (names are case-insensitive); use rotate()`);
      const v = await newVersion(name, keyType);
      objects.set(name.toLowerCase(), { name, versions: [v] });
      return { keyId: keyId(name), versionedKeyId: versionedKeyId(name, v), certPem: v.certPem };
    },
    async rotate(name) {
      const object = objects.get(name.toLowerCase());
      const latest = object?.versions.at(-1);
      if (!object || !latest) throw new Error(`key-vault stand-in: no certificate '${name}'`);
      const v = await newVersion(object.name, latest.keyType);
      object.versions.push(v);
      return { versionedKeyId: versionedKeyId(object.name, v), certPem: v.certPem };
    },
    async setFault(next) {
      if (closed) throw new Error('key-vault stand-in: closed');
      if (next?.kind === 'slow' && !(next.ms >= 0)) throw new Error('key-vault stand-in: slow needs ms >= 0');
      if (next?.kind === 'throttle' && !(next.retryAfterSeconds >= 0)) throw new Error('key-vault stand-in: throttle needs retryAfterSeconds >= 0');
      fault = next;
      if (next?.kind === 'down') await stopListening();
      else if (!listening) await listen(port);
    },
    async close() {
      if (closed) return;
      closed = true;
      await stopListening();
    },
  };
}

// ─────────────────────────────────────── authentication ───────────────────────────────────────

function authenticate(authorization: string | undefined): { caller: NonNullable<KeyVaultRequest['caller']> } | { failure: string } {
  // [errors] "No authentication token attached to the request"; AKV10000 prefix as in current responses.
  // Other schemes (Basic, PoP, …) are treated as no token at all (guess); the scheme name is
  // case-insensitive (RFC 7235 §2.1).
  if (authorization === undefined || !/^Bearer /i.test(authorization)) return { failure: 'AKV10000: Request is missing a Bearer or PoP token.' };
  const m = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/i.exec(authorization);
  const header = m ? decodeJwtPart(m[1] ?? '') : undefined;
  const claims = m ? decodeJwtPart(m[2] ?? '') : undefined;
  // The signature is not checked (the tests' tokens come from the Entra stand-in); aud, exp and
  // nbf are, without leeway.
  if (!header || !claims) return { failure: 'Error validating token: the bearer token is not a readable JWT.' }; // wording (guess)
  const aud = claims['aud'];
  if (typeof aud !== 'string' || !ACCEPTED_AUDIENCES.has(aud)) {
    // Wording as seen in responses (Azure/go-autorest#525, crossplane-contrib/provider-azure#346).
    return { failure: `AKV10022: Invalid audience. Expected ${VAULT_RESOURCE}, found: ${typeof aud === 'string' ? aud : JSON.stringify(aud ?? null)}.` };
  }
  const nowSec = Date.now() / 1000;
  const exp = claims['exp'];
  // Wording as seen in responses (Azure/azure-sdk-for-python#27266); a missing exp counts as expired (guess).
  if (typeof exp !== 'number' || !Number.isFinite(exp) || exp <= nowSec) return { failure: "[TokenExpired] Error validating token: 'S2S12086'." };
  const nbf = claims['nbf'];
  // "Token not yet valid" as reported for Managed HSM (Azure/azure-sdk-for-java#26624).
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > nowSec)) return { failure: 'Token not yet valid' };
  const caller: NonNullable<KeyVaultRequest['caller']> = {};
  for (const k of ['sub', 'appid', 'tid'] as const) {
    const c = claims[k];
    if (typeof c === 'string') caller[k] = c;
  }
  return { caller };
}

// ─────────────────────────────────────────── routes ───────────────────────────────────────────

const SIGN_PATH = /^\/keys\/([^/]+)\/([^/]*)\/sign$/;
const KEY_PATH = /^\/keys\/([^/]+)(?:\/([^/]*))?$/;
const CERT_PATH = /^\/certificates\/([^/]+)(?:\/([^/]*))?$/;

// ─────────────────────────────────────────── signing ──────────────────────────────────────────
//
// node:crypto has no "sign this precomputed digest" for RSA or ECDSA: `crypto.sign(null, …)` hashes
// its input with SHA-256 first (checked on Node 20 / OpenSSL 3), which would sign SHA-256(digest).
// So each algorithm applies the RFC's encoding to the digest itself and uses only the raw private-key
// operation from node:crypto. All three verify with `crypto.verify('sha256', message, …)`.

/** RS256: RSASSA-PKCS1-v1_5 (RFC 8017 §8.2.1): EMSA-PKCS1-v1_5 is type-1 padding over DigestInfo ‖ H, which privateEncrypt applies. */
function signRs256(key: KeyObject, digest: Buffer): Buffer {
  return privateEncrypt({ key, padding: cryptoConstants.RSA_PKCS1_PADDING }, Buffer.concat([SHA256_DIGEST_INFO, digest]));
}

/** PS256: RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (RFC 7518 §3.5; RFC 8017 §8.1.1), raw RSA over EMSA-PSS-ENCODE. */
function signPs256(key: KeyObject, digest: Buffer): Buffer {
  const n = Buffer.from(key.export({ format: 'jwk' }).n ?? '', 'base64url');
  const modBits = bitLength(n);
  const k = Math.ceil(modBits / 8);
  const em = emsaPssEncode(digest, modBits - 1, SHA256_BYTES);
  // EM has emLen = ceil((modBits-1)/8) bytes, one fewer than k when modBits ≡ 1 (mod 8): left-pad (I2OSP).
  const block = Buffer.concat([Buffer.alloc(k - em.length), em]);
  return privateEncrypt({ key, padding: cryptoConstants.RSA_NO_PADDING }, block);
}

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1), Hash = MGF hash = SHA-256, over an already computed mHash. */
function emsaPssEncode(mHash: Buffer, emBits: number, sLen: number): Buffer {
  const hLen = SHA256_BYTES;
  const emLen = Math.ceil(emBits / 8);
  if (mHash.length !== hLen || emLen < hLen + sLen + 2) throw new Error('key-vault stand-in: PSS encoding error');
  const salt = randomBytes(sLen);
  const h = createHash('sha256').update(Buffer.concat([Buffer.alloc(8), mHash, salt])).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - sLen - hLen - 2), Buffer.from([0x01]), salt]);
  const mask = mgf1Sha256(h, emLen - hLen - 1);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] ?? 0) ^ (mask[i] ?? 0);
  db[0] = (db[0] ?? 0) & (0xff >> (8 * emLen - emBits));
  return Buffer.concat([db, h, Buffer.from([0xbc])]);
}

/** MGF1 (RFC 8017 appendix B.2.1) with SHA-256. */
function mgf1Sha256(seed: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  for (let counter = 0; out.length * SHA256_BYTES < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    out.push(createHash('sha256').update(seed).update(c).digest());
  }
  return Buffer.concat(out).subarray(0, length);
}

/**
 * ES256: ECDSA over P-256 (SEC 1 §4.1.3) on the given digest, answered as r ‖ s, 32 bytes each
 * (RFC 7518 §3.4, which is what Key Vault returns). k·G comes from node's ECDH (the public key of
 * the private scalar k); the rest is modular arithmetic mod n. The digest is 256 bits, the size of
 * n, so e = the digest as an integer, without truncation.
 */
function signEs256(key: KeyObject, digest: Buffer): Buffer {
  const d = toBigInt(Buffer.from(key.export({ format: 'jwk' }).d ?? '', 'base64url'));
  const e = toBigInt(digest);
  for (;;) {
    const kScalar = toBigInt(randomBytes(32));
    if (kScalar === 0n || kScalar >= P256_N) continue;
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(toBytes32(kScalar));
    const point = ecdh.getPublicKey(); // 0x04 ‖ x ‖ y
    const r = toBigInt(point.subarray(1, 33)) % P256_N;
    if (r === 0n) continue;
    const s = (modPow(kScalar, P256_N - 2n, P256_N) * ((e + r * d) % P256_N)) % P256_N;
    if (s === 0n) continue;
    return Buffer.concat([toBytes32(r), toBytes32(s)]);
  }
}

function toBigInt(buf: Buffer): bigint {
  return buf.length === 0 ? 0n : BigInt(`0x${buf.toString('hex')}`);
}

function toBytes32(v: bigint): Buffer {
  return Buffer.from(v.toString(16).padStart(64, '0'), 'hex');
}

/** b^e mod m by square-and-multiply; with m prime, b^(m-2) is b's inverse (Fermat). */
function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
    e >>= 1n;
  }
  return result;
}

function bitLength(bigEndian: Buffer): number {
  let i = 0;
  while (i < bigEndian.length && bigEndian[i] === 0) i++;
  if (i === bigEndian.length) return 0;
  return (bigEndian.length - i - 1) * 8 + ((bigEndian[i] ?? 0).toString(2).length);
}

// ────────────────────────────────────────── helpers ───────────────────────────────────────────


function attributes(v: KeyVersion): Record<string, unknown> {
  return { enabled: true, nbf: v.nbf, exp: v.exp, created: v.created, updated: v.created, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 };
}

function sendJson(ctx: ResponseCtx, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (ctx.res.destroyed || ctx.res.headersSent) return; // dropped ('down' during a 'slow' answer): status stays 0
  ctx.record.status = status;
  const payload = JSON.stringify(body);
  ctx.res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-cache',
    'x-ms-request-id': randomUUID(),
    ...(ctx.clientRequestId ? { 'x-ms-client-request-id': ctx.clientRequestId } : {}),
    ...headers,
    'content-length': String(Buffer.byteLength(payload)),
  });
  ctx.res.end(payload);
}

/** Key Vault's error body [errors]: `{ error: { code, message } }`. */
function sendError(ctx: ResponseCtx, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(ctx, status, { error: { code, message } }, headers);
}

function methodNotAllowed(ctx: ResponseCtx, method: string): void {
  sendError(ctx, 405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`); // wording (guess)
}

function decodeJwtPart(part: string): Record<string, unknown> | undefined {
  return isB64url(part) ? jsonObjectOf(Buffer.from(part, 'base64url')) : undefined;
}





