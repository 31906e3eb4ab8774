// Certificate keys that never leave a PKCS#11 token: a SoftHSM2 token of the test's own holds a
// non-extractable RSA key and an EC P-256 key (generated inside it); a real oidc-provider accepts the
// RS256, PS256 and ES256 assertions the token signs, the strict Entra stand-in the PS256 one; the
// key's private parts cannot be read; a token that goes away and comes back is reopened without a
// restart, with only the signatures in flight failing, and never with an unexplained 500.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, constants, verify } from 'node:crypto';
import { loadCertificate } from '../../src/client-auth/certificate/certificate.ts';
import { Pkcs11KeySigner } from '../../src/client-auth/certificate/pkcs11-key-signer.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { startSoftHsm, type SoftHsm } from '../helpers/softhsm.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const KEY = 'hsm-key';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '3f1e2d4c-5b6a-4789-9abc-def012345678';

let dir: TempDir;
let hsm: SoftHsm;
let idp: SandboxIdp;
let entra: EntraStandIn;
let tb: TestBroker;
let savedConf: string | undefined;
let wrongPinFile: string;

function inToken(key: 'rsa' | 'ec') {
  return { certFile: hsm[key].certFile, pkcs11: { module: hsm.module, tokenLabel: hsm.tokenLabel, keyLabel: hsm[key].label, pinFile: hsm.pinFile } };
}

const probe = (id: string) => fetch(`${tb.url}/v1/diagnostics/credentials/${id}/probe`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` } });

before(async () => {
  dir = tempDir();
  hsm = await startSoftHsm();
  // SoftHSM reads its configuration when the broker first initialises the library, in this process.
  savedConf = process.env.SOFTHSM2_CONF;
  process.env.SOFTHSM2_CONF = hsm.env.SOFTHSM2_CONF;
  const stranger = await writeCredentialFiles(dir, 'stranger');
  wrongPinFile = dir.write('wrong.pin', '000000\n');
  idp = await startSandboxIdp({
    clients: [
      { clientId: 'rs256', certificatePem: hsm.rsa.certPem },
      { clientId: 'ps256', certificatePem: hsm.rsa.certPem },
      { clientId: 'es256', certificatePem: hsm.ec.certPem },
      { clientId: 'mismatch', certificatePem: stranger.cert.certPem },
    ],
  });
  entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, certificates: [hsm.rsa.certPem] }] });
  tb = await startTestBroker(
    {
      credentials: [
        { id: 'rs256', provider: 'oidc', tokenEndpoint: idp.tokenEndpoint, clientId: 'rs256', certificate: inToken('rsa'), assertion: { algorithm: 'RS256' }, scopes: ['api.read'] },
        { id: 'ps256', provider: 'oidc', tokenEndpoint: idp.tokenEndpoint, clientId: 'ps256', certificate: inToken('rsa'), assertion: { algorithm: 'PS256' }, scopes: ['api.read'] },
        { id: 'es256', provider: 'oidc', tokenEndpoint: idp.tokenEndpoint, clientId: 'es256', certificate: inToken('ec'), scopes: ['api.read'] },
        // The token's RSA key with another key's certificate: the pair check refuses it.
        { id: 'mismatch', provider: 'oidc', tokenEndpoint: idp.tokenEndpoint, clientId: 'mismatch', certificate: { ...inToken('rsa'), certFile: stranger.certFile }, scopes: ['api.read'] },
        // A PIN the token refuses.
        { id: 'wrong-pin', provider: 'oidc', tokenEndpoint: idp.tokenEndpoint, clientId: 'rs256', certificate: { ...inToken('rsa'), pkcs11: { ...inToken('rsa').pkcs11, pinFile: wrongPinFile } }, scopes: ['api.write'] },
        { id: 'powerbi', provider: 'entra', tenantId: TENANT, clientId: CLIENT, authorityHost: entra.url, certificate: inToken('rsa'), scopes: ['https://analysis.windows.net/powerbi/api/.default'] },
      ],
      callers: [{ id: 'jobs', apiKeySha256: sha256Hex(KEY), diagnostics: true, allow: ['rs256', 'ps256', 'es256', 'mismatch', 'powerbi', 'wrong-pin'].map((credential) => ({ credential })) }],
    },
    dir.path,
  );
});

after(async () => {
  await tb?.close();
  await idp?.close();
  await entra?.close();
  hsm?.close();
  dir?.remove();
  if (savedConf === undefined) delete process.env.SOFTHSM2_CONF;
  else process.env.SOFTHSM2_CONF = savedConf;
});

describe('keys in a PKCS#11 token (SoftHSM2)', () => {
  // First: PKCS#11 logs an application in once for all its sessions, so the PIN is checked only by the first login.
  test('a refused PIN is not presented again until its file changes (HSMs lock a PIN after a few failures)', async () => {
    const first = (await (await tb.token(KEY, { credential: 'wrong-pin' })).json()) as { code: string; detail: string };
    assert.equal(first.code, 'idp_unavailable');
    assert.match(first.detail, /cannot open .*: CKR_PIN_INCORRECT/);
    const again = (await (await tb.token(KEY, { credential: 'wrong-pin' })).json()) as { detail: string };
    assert.match(again.detail, /the token refused the PIN in .*wrong\.pin; it is not presented again until that file changes/);
    // The other credentials of the same token are not disturbed.
    assert.equal((await probe('rs256')).status, 200);
    const { readFileSync, writeFileSync } = await import('node:fs');
    writeFileSync(wrongPinFile, readFileSync(hsm.pinFile));
    const res = await tb.token(KEY, { credential: 'wrong-pin' });
    assert.equal(res.status, 200, await res.clone().text());
  });

  for (const alg of ['RS256', 'PS256', 'ES256']) {
    test(`${alg}: oidc-provider accepts the assertion the token signed`, async () => {
      const id = alg.toLowerCase();
      const res = await tb.token(KEY, { credential: id });
      assert.equal(res.status, 200, await res.clone().text());
      const assertion = idp.captured.filter((c) => c.clientId === id).at(-1)!;
      assert.equal(assertion.header.alg, alg);
      assert.equal(assertion.status, 200);
    });
  }

  test('the Entra stand-in accepts the PS256 assertion (x5t#S256 of the token key\'s certificate)', async () => {
    const res = await tb.token(KEY, { credential: 'powerbi' });
    assert.equal(res.status, 200, await res.clone().text());
  });

  test('many signatures at once, over the sessions (2) and the line behind them: all signed and valid (the library locks)', async () => {
    const outcomes = await Promise.all(Array.from({ length: 24 }, (_, i) => probe(['rs256', 'ps256', 'es256'][i % 3]!).then(async (r) => ((await r.json()) as { outcome: string }).outcome)));
    assert.deepEqual([...new Set(outcomes)], ['ok']);
    // Straight at the signer, as fast as it takes them: C_Sign runs on worker threads, two sessions at once.
    const certificate = loadCertificate({ certFile: hsm.rsa.certFile, pkcs11: inToken('rsa').pkcs11 as never }, dir.path);
    const signer = new Pkcs11KeySigner({ ...inToken('rsa').pkcs11, sessions: 2 }, dir.path, 'direct', createLogger({ level: 'silent' }));
    try {
      const input = Buffer.from('the signing input');
      const signatures = await Promise.all(Array.from({ length: 400 }, () => signer.sign('PS256', input, certificate)));
      const key = new X509Certificate(hsm.rsa.certPem).publicKey;
      assert.ok(signatures.every((sig) => verify('sha256', input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig)));
    } finally {
      signer.close();
    }
  });

  test('the token refuses to give out the private parts of either key', () => {
    assert.deepEqual(hsm.readPrivateParts(), { rsa: 'CKR_ATTRIBUTE_SENSITIVE', ec: 'CKR_ATTRIBUTE_SENSITIVE' });
  });

  test('a certificate that is not the token key\'s pair is refused before anything is sent, and explained', async () => {
    const before = idp.captured.filter((c) => c.clientId === 'mismatch').length;
    const res = await tb.token(KEY, { credential: 'mismatch' });
    assert.equal(res.status, 503);
    const body = (await res.json()) as { code: string; detail: string };
    assert.equal(body.code, 'idp_unavailable');
    assert.match(body.detail, /is not the key of the certificate in certFile/);
    assert.equal(idp.captured.filter((c) => c.clientId === 'mismatch').length, before, 'nothing reached the IdP');
  });

  test('where the key lives is shown (module, token, key label), never the PIN; readiness reports the signer', async () => {
    const view = (await (await fetch(`${tb.url}/v1/diagnostics/credentials/rs256`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { client_authentication: { key: Record<string, unknown> } };
    assert.deepEqual(
      { backend: view.client_authentication.key.backend, token: view.client_authentication.key.token_label, key: view.client_authentication.key.key_label },
      { backend: 'pkcs11', token: hsm.tokenLabel, key: hsm.rsa.label },
    );
    const readiness = (await (await fetch(`${tb.url}/readyz`)).json()) as { checks: { client_authentication: { credential: string; key?: string; signer?: string }[] } };
    assert.deepEqual(readiness.checks.client_authentication.find((c) => c.credential === 'rs256'), { ...readiness.checks.client_authentication.find((c) => c.credential === 'rs256'), key: 'pkcs11', signer: 'ok' });
    const pin = (await import('node:fs')).readFileSync(hsm.pinFile, 'utf8').trim();
    assert.ok(!tb.logs.text.includes(pin), 'the PIN is in no log line');
    assert.ok(!JSON.stringify(view).includes(pin));
  });

  test('the token goes away: 503 naming the HSM while it is gone (warm tokens still served); back: reopened, no restart', async () => {
    assert.equal((await probe('ps256')).status, 200);
    hsm.removeToken();
    try {
      const gone = await probe('ps256');
      // The probe is a live exchange: its outcome says what failed and that nothing was sent.
      const body = (await gone.json()) as { outcome?: string; message?: string };
      assert.equal(gone.status, 200);
      assert.equal(body.outcome, 'unavailable');
      assert.match(String(body.message), /the HSM could not sign with key '.+' in token '.+' \(.+libsofthsm2\.so\): CKR_[A-Z_]+; the token is opened again/);
      // The cached token of a warm target is served meanwhile.
      assert.equal((await tb.token(KEY, { credential: 'ps256' })).status, 200);
      const readiness = (await (await fetch(`${tb.url}/readyz`)).json()) as { status: string; checks: { client_authentication: { credential: string; signer?: string }[] } };
      assert.equal(readiness.checks.client_authentication.find((c) => c.credential === 'ps256')?.signer, 'unavailable');
      assert.equal(readiness.status, 'degraded');
    } finally {
      hsm.restoreToken();
    }
    // Opened again at the next signature.
    const back = await probe('ps256');
    assert.equal(back.status, 200, await back.clone().text());
    assert.match(tb.logs.text, /PKCS#11 token opened/);
    // Sign latency and failures, by backend.
    const metrics = await (await fetch(`${tb.url}/metrics`)).text();
    assert.match(metrics, /token_broker_key_sign_duration_seconds_count\{credential="ps256",backend="pkcs11",result="success"\} [1-9]/);
    assert.match(metrics, /token_broker_key_sign_duration_seconds_count\{credential="ps256",backend="pkcs11",result="failure"\} [1-9]/);
  });
});
