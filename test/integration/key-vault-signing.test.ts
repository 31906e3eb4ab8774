// Certificate keys that never leave Azure Key Vault, against a strict local stand-in of the Key
// Vault REST API (test/fakes/key-vault-stand-in.ts) driven by the real @azure/keyvault-keys: the
// broker authenticates to the vault with another of its credentials (the Entra stand-in), only
// 32-byte digests reach the vault, the Entra stand-in and a real oidc-provider accept the
// assertions; the vault away for longer than a refresh cycle costs no warm token, a cold one gets a
// 503 naming the vault key; throttling is explained; a key rotation in the vault is followed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { startKeyVaultStandIn, type KeyVaultStandIn } from '../fakes/key-vault-stand-in.ts';
import { sha256Hex, tempDir, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const KEY = 'kv-key';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const POWERBI_CLIENT = '3f1e2d4c-5b6a-4789-9abc-def012345678';
const VAULT_CLIENT = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const SECRET = 'vault-access-secret-value';

let dir: TempDir;
let kv: KeyVaultStandIn;
let entra: EntraStandIn;
let idp: SandboxIdp;
let tb: TestBroker;
let rsa: { keyId: string; certPem: string };
let ec: { keyId: string; certPem: string };
let powerbiCertFile: string;
let vaultOnly: { keyId: string; certPem: string };
const VAULT_ONLY_CLIENT = '5b6a4789-9abc-4def-8123-3f1e2d4c0a9b';

const probe = async (id: string) =>
  (await (await fetch(`${tb.url}/v1/diagnostics/credentials/${id}/probe`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` } })).json()) as { outcome: string; message?: string; retry_after_seconds?: number };

const x5tS256 = (pem: string) => createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url');

before(async () => {
  dir = tempDir();
  kv = await startKeyVaultStandIn({ tenantId: TENANT });
  rsa = await kv.addCertificate('powerbi', 'rsa');
  ec = await kv.addCertificate('cdr', 'ec');
  vaultOnly = await kv.addCertificate('reports', 'rsa');
  entra = await startEntraStandIn({
    apps: [
      { tenantId: TENANT, clientId: VAULT_CLIENT, secrets: [SECRET] },
      { tenantId: TENANT, clientId: POWERBI_CLIENT, certificates: [rsa.certPem] },
      { tenantId: TENANT, clientId: VAULT_ONLY_CLIENT, certificates: [vaultOnly.certPem] },
    ],
  });
  entra.knownResources.add('https://vault.azure.net');
  idp = await startSandboxIdp({ clients: [{ clientId: 'cdr-es256', certificatePem: ec.certPem }, { clientId: 'cdr-rs256', certificatePem: rsa.certPem }] });
  const caFile = dir.write('vault-ca.pem', kv.caPem);
  powerbiCertFile = dir.write('powerbi.crt', rsa.certPem);
  const inVault = (keyId: string, certFile: string) => ({ certFile, keyVault: { keyId, authentication: { credential: 'vault-access' }, caFile } });
  tb = await startTestBroker(
    {
      server: { certificateReloadSeconds: 0.5 },
      credentials: [
        { id: 'vault-access', provider: 'entra', tenantId: TENANT, clientId: VAULT_CLIENT, authorityHost: entra.url, clientSecret: { file: dir.write('vault-secret', SECRET) }, scopes: ['https://vault.azure.net/.default'] },
        { id: 'powerbi', provider: 'entra', tenantId: TENANT, clientId: POWERBI_CLIENT, authorityHost: entra.url, certificate: inVault(rsa.keyId, powerbiCertFile), scopes: ['https://analysis.windows.net/powerbi/api/.default'] },
        { id: 'cdr-es256', provider: 'oidc', tokenEndpoint: idp.tokenEndpoint, clientId: 'cdr-es256', certificate: inVault(ec.keyId, dir.write('cdr.crt', ec.certPem)), scopes: ['api.read'] },
        // The same app and vault key, for the outage that outlasts a token's life.
        { id: 'short', provider: 'entra', tenantId: TENANT, clientId: POWERBI_CLIENT, authorityHost: entra.url, certificate: inVault(rsa.keyId, dir.write('short.crt', rsa.certPem)), scopes: ['https://analysis.windows.net/powerbi/api/.default'] },
        // No certFile: the certificate is the vault's certificate object of the key's name.
        { id: 'reports', provider: 'entra', tenantId: TENANT, clientId: VAULT_ONLY_CLIENT, authorityHost: entra.url, certificate: { keyVault: { keyId: vaultOnly.keyId, authentication: { credential: 'vault-access' }, caFile } }, scopes: ['https://analysis.windows.net/powerbi/api/.default'] },
        { id: 'cdr-rs256', provider: 'oidc', tokenEndpoint: idp.tokenEndpoint, clientId: 'cdr-rs256', certificate: inVault(rsa.keyId, dir.write('cdr-rsa.crt', rsa.certPem)), assertion: { algorithm: 'RS256' }, scopes: ['api.read'] },
      ],
      callers: [{ id: 'jobs', apiKeySha256: sha256Hex(KEY), diagnostics: true, allow: ['powerbi', 'cdr-es256', 'cdr-rs256', 'reports', 'short'].map((credential) => ({ credential })) }],
    },
    dir.path,
  );
});

after(async () => {
  await tb?.close();
  await kv?.close();
  await entra?.close();
  await idp?.close();
  dir?.remove();
});

describe('keys in Azure Key Vault (a strict stand-in)', () => {
  test('certificate and key both in the vault (no certFile): read at start, the assertion names it, the vault signs it', async () => {
    const res = await tb.token(KEY, { credential: 'reports' });
    assert.equal(res.status, 200, await res.clone().text());
    const view = (await (await fetch(`${tb.url}/v1/diagnostics/credentials/reports`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { assertion: { header: Record<string, unknown> }; certificate: { sha256: string } };
    assert.equal(view.assertion.header['x5t#S256'], x5tS256(vaultOnly.certPem));
    assert.ok(kv.requests.some((r) => r.method === 'GET' && r.path.startsWith('/certificates/reports')), 'read from the vault');
  });

  test('a certificate rotated in the vault is followed without restart: new certificate, signed by its key version', async () => {
    const rotated = await kv.rotate('reports');
    entra.addApp({ tenantId: TENANT, clientId: VAULT_ONLY_CLIENT, certificates: [vaultOnly.certPem, rotated.certPem] });
    const deadline = Date.now() + 60_000;
    let thumbprint: unknown;
    while (Date.now() < deadline) {
      const view = (await (await fetch(`${tb.url}/v1/diagnostics/credentials/reports`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { assertion: { header: Record<string, unknown> } };
      thumbprint = view.assertion.header['x5t#S256'];
      if (thumbprint === x5tS256(rotated.certPem)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(thumbprint, x5tS256(rotated.certPem));
    assert.equal((await probe('reports')).outcome, 'ok', 'the Entra stand-in verifies the new certificate\'s signature');
    const signedWith = kv.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/keys/reports/') && r.status === 200).at(-1)!.path;
    assert.equal(signedWith, `${new URL(rotated.versionedKeyId).pathname}/sign`, 'the certificate\'s own key version signed');
  });

  test('a vault that cannot be read at start stops it, naming the field', async () => {
    await kv.setFault({ kind: 'down' });
    try {
      await assert.rejects(
        startTestBroker(
          {
            credentials: [
              { id: 'vault-access', provider: 'entra', tenantId: TENANT, clientId: VAULT_CLIENT, authorityHost: entra.url, clientSecret: { file: dir.write('vault-secret-2', SECRET) }, scopes: ['https://vault.azure.net/.default'] },
              { id: 'reports', provider: 'entra', tenantId: TENANT, clientId: VAULT_ONLY_CLIENT, authorityHost: entra.url, certificate: { keyVault: { keyId: vaultOnly.keyId, authentication: { credential: 'vault-access' }, caFile: dir.write('vault-ca-2.pem', kv.caPem) } }, scopes: ['https://analysis.windows.net/powerbi/api/.default'] },
            ],
          },
          dir.path,
        ),
        /credentials\[1\]\.certificate\.keyVault: the certificate could not be read from Key Vault .*certificates\/reports.*: Key Vault could not be reached/,
      );
    } finally {
      await kv.setFault(undefined);
    }
  });

  test('PS256 (Entra), ES256 and RS256 (oidc-provider) assertions signed by the vault are accepted; only digests reached it', async () => {
    for (const credential of ['powerbi', 'cdr-es256', 'cdr-rs256']) {
      const res = await tb.token(KEY, { credential });
      assert.equal(res.status, 200, `${credential}: ${await res.clone().text()}`);
    }
    const signs = kv.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/sign') && r.status === 200);
    assert.ok(signs.length >= 3, JSON.stringify(kv.requests));
    assert.deepEqual([...new Set(signs.map((r) => r.signedBytes))], [32], 'nothing but SHA-256 digests left the broker');
    assert.deepEqual([...new Set(signs.map((r) => r.alg))].sort(), ['ES256', 'PS256', 'RS256']);
    assert.deepEqual([...new Set(kv.requests.filter((r) => r.caller).map((r) => r.caller!.appid ?? r.caller!.sub))], [VAULT_CLIENT], 'the broker authenticated as vault-access');
  });

  test('where the key lives is shown, never key material; readiness reports the signer', async () => {
    const view = (await (await fetch(`${tb.url}/v1/diagnostics/credentials/powerbi`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { client_authentication: { key: Record<string, unknown> } };
    assert.equal(view.client_authentication.key.backend, 'keyVault');
    assert.equal(view.client_authentication.key.key_id, rsa.keyId);
    assert.equal(view.client_authentication.key.authentication, 'credential vault-access');
    const readiness = (await (await fetch(`${tb.url}/readyz`)).json()) as { checks: { client_authentication: { credential: string; key?: string; signer?: string }[] } };
    const entry = readiness.checks.client_authentication.find((c) => c.credential === 'powerbi');
    assert.deepEqual([entry?.key, entry?.signer], ['keyVault', 'ok']);
  });

  test('the vault away longer than a refresh cycle: warm tokens still served, a live exchange is a 503-style outcome naming the vault key', async () => {
    await kv.setFault({ kind: 'down' });
    try {
      const outcome = await probe('powerbi');
      assert.equal(outcome.outcome, 'unavailable');
      assert.match(String(outcome.message), new RegExp(`signed by Key Vault key ${rsa.keyId.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: Key Vault could not be reached`));
      for (const credential of ['powerbi', 'cdr-es256', 'cdr-rs256']) assert.equal((await tb.token(KEY, { credential })).status, 200, `${credential} is served from the cache`);
      const readiness = (await (await fetch(`${tb.url}/readyz`)).json()) as { status: string; checks: { client_authentication: { credential: string; signer?: string }[] } };
      assert.equal(readiness.status, 'degraded');
      assert.equal(readiness.checks.client_authentication.find((c) => c.credential === 'powerbi')?.signer, 'unavailable');
    } finally {
      await kv.setFault(undefined);
    }
    assert.equal((await probe('powerbi')).outcome, 'ok');
  });

  test('the vault away for longer than a refresh cycle: the token is served until it expires, then a 503 names the vault key', async () => {
    entra.setTokenLifetime(4);
    let obtainedAt: number;
    try {
      const first = await tb.token(KEY, { credential: 'short', min_ttl_seconds: 0 });
      obtainedAt = Date.now();
      assert.equal(first.status, 200);
    } finally {
      entra.setTokenLifetime(3599);
    }
    await kv.setFault({ kind: 'down' });
    try {
      // Refresh-ahead (at half the lifetime) fails while the vault is away; callers keep the token.
      const answers: { status: number; at: number; body: Record<string, unknown> }[] = [];
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const res = await tb.token(KEY, { credential: 'short', min_ttl_seconds: 0 });
        answers.push({ status: res.status, at: Date.now(), body: (await res.json()) as Record<string, unknown> });
        if (res.status !== 200) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const refused = answers.at(-1)!;
      assert.ok(answers.filter((a) => a.status === 200).some((a) => a.at - obtainedAt! >= 2_500), 'still served after the refresh point');
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body.code, 'idp_unavailable');
      assert.match(String(refused.body.detail), /signed by Key Vault key .*keys\/powerbi: Key Vault could not be reached/);
      assert.ok(refused.at - obtainedAt! >= 3_000, 'refused only once the token had (nearly) expired');
    } finally {
      await kv.setFault(undefined);
    }
    assert.equal((await tb.token(KEY, { credential: 'short' })).status, 200);
  });

  test('throttled by the vault (429): explained, with a Retry-After for the caller', async () => {
    await kv.setFault({ kind: 'throttle', retryAfterSeconds: 1 });
    try {
      const outcome = await probe('cdr-es256');
      assert.equal(outcome.outcome, 'unavailable');
      assert.match(String(outcome.message), /throttled by Key Vault \(429\)/);
      assert.ok((outcome.retry_after_seconds ?? 0) >= 1);
    } finally {
      await kv.setFault(undefined);
    }
  });

  test('a key rotation in the vault is followed: the new version signs, the new certificate is picked up without restart', async () => {
    const rotated = await kv.rotate('powerbi');
    entra.addApp({ tenantId: TENANT, clientId: POWERBI_CLIENT, certificates: [rsa.certPem, rotated.certPem] });
    writeFileSync(powerbiCertFile, rotated.certPem);
    // The certificate file is watched (and re-read every 0.5 s here).
    const deadline = Date.now() + 60_000;
    let thumbprint: unknown;
    while (Date.now() < deadline) {
      const view = (await (await fetch(`${tb.url}/v1/diagnostics/credentials/powerbi`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { assertion: { header: Record<string, unknown> } };
      thumbprint = view.assertion.header['x5t#S256'];
      if (thumbprint === x5tS256(rotated.certPem)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(thumbprint, x5tS256(rotated.certPem));
    assert.equal((await probe('powerbi')).outcome, 'ok', 'the Entra stand-in accepts what the new key version signed');
    const last = kv.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/keys/powerbi') && r.status === 200).at(-1);
    assert.ok(last, 'signed by the vault');
  });
});
