// Certificates replaced on disk while the broker runs: the next exchanges sign with the new pair,
// nobody sees a failure, a broken pair is never used, and Entra's lag after a rotation is absorbed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { createThrowawayCertificate, type ThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';
import { computeThumbprints } from '../../src/client-auth/certificate/thumbprints.ts';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { TEST_CLIENT as CLIENT, TEST_TENANT as TENANT, entraCredential } from '../helpers/entra-fixture.ts';
import { sha256Hex, tempDir, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const KEY = 'rotation-key';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const x5tS256 = (c: ThrowawayCertificate) => computeThumbprints(new X509Certificate(c.certPem).raw).x5tS256;
const sha1Hex = (c: ThrowawayCertificate) => computeThumbprints(new X509Certificate(c.certPem).raw).sha1Hex;

/** Polls /readyz until its first certificate check satisfies `check` (the cap only stops a hung test). */
async function waitForReadyz(tb: TestBroker, what: string, check: (ready: any) => boolean) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = (await (await fetch(`${tb.url}/readyz`)).json()) as any;
    if (check(ready)) return ready;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}: ${JSON.stringify(ready.checks.certificates)}`);
    await sleep(50);
  }
}
const waitForCertificate = (tb: TestBroker, cert: ThrowawayCertificate) =>
  waitForReadyz(tb, 'the new certificate to be loaded', (r) => r.checks.certificates[0].thumbprint === sha1Hex(cert));

let dir: TempDir;
let entra: EntraStandIn;
let certs: ThrowawayCertificate[];

/** A Kubernetes Secret volume: files are links into a timestamped folder behind a `..data` link swapped atomically. */
function writeSecretVolume(volume: string, cert: ThrowawayCertificate, generation: number) {
  const data = join(volume, `..${generation}`);
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'tls.crt'), cert.certPem);
  writeFileSync(join(data, 'tls.key'), cert.keyPem);
  symlinkSync(`..${generation}`, join(volume, '..data_tmp'));
  renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
  for (const f of ['tls.crt', 'tls.key']) {
    try {
      symlinkSync(`..data/${f}`, join(volume, f));
    } catch {
      // already linked
    }
  }
}

function brokerConfig(volume: string) {
  return {
    server: { certificateReloadSeconds: 0.2 },
    credentials: [entraCredential('powerbi', entra.url, { certFile: join(volume, 'tls.crt'), keyFile: join(volume, 'tls.key') })],
    callers: [{ id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: [{ credential: 'powerbi' }] }],
  };
}

before(async () => {
  dir = tempDir();
  certs = await Promise.all([1, 2, 3].map((n) => createThrowawayCertificate({ commonName: `generation ${n}` })));
  entra = await startEntraStandIn();
});
after(async () => {
  await entra.close();
  dir.remove();
});

describe('certificate rotation without restart', () => {
  let tb: TestBroker;
  const volume = () => join(dir.path, 'secret');

  before(async () => {
    entra.addApp({ tenantId: TENANT, clientId: CLIENT, certificates: certs.map((c) => c.certPem) });
    writeSecretVolume(volume(), certs[0]!, 1);
    tb = await startTestBroker(brokerConfig(volume()), dir.path);
  });
  after(async () => {
    await tb.close();
    entra.removeApp(CLIENT);
  });

  test('a Secret volume swap under load: the next exchanges sign with the new certificate, zero failures', async () => {
    const statuses: number[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        statuses.push((await tb.token(KEY, { credential: 'powerbi' })).status);
        await sleep(10);
      }
    })();
    try {
      while (statuses.length < 5) await sleep(50);
      assert.equal(entra.requests.at(-1)!.header!['x5t#S256'], x5tS256(certs[0]!));
      writeSecretVolume(volume(), certs[1]!, 2);
      await waitForCertificate(tb, certs[1]!);
      const loaded = statuses.length;
      while (statuses.length < loaded + 5) await sleep(50);
    } finally {
      running = false;
      await loop;
    }
    assert.ok(statuses.length >= 10);
    assert.deepEqual([...new Set(statuses)], [200]);
    // The new certificate changes the credential's cache key: the next exchange used it.
    assert.equal(entra.requests.at(-1)!.header!['x5t#S256'], x5tS256(certs[1]!));
    const ready = (await (await fetch(`${tb.url}/readyz`)).json()) as any;
    assert.equal(ready.checks.certificates[0].thumbprint, computeThumbprints(new X509Certificate(certs[1]!.certPem).raw).sha1Hex);
    assert.match(tb.logs.text, /certificate reloaded/);
  });

  test('a mismatched key/cert pair on disk keeps the old pair in use and shows in /readyz', async () => {
    // Overwrite only the certificate: the key on disk no longer matches it.
    rmSync(join(volume(), 'tls.crt'));
    writeFileSync(join(volume(), 'tls.crt'), certs[2]!.certPem);
    const ready = await waitForReadyz(tb, 'the reload problem', (r) => !!r.checks.certificates[0].reload_problem);
    assert.equal(ready.status, 'degraded');
    assert.match(ready.checks.certificates[0].reload_problem, /does not match/);
    const res = await tb.token(KEY, { credential: 'powerbi', min_ttl_seconds: 86_400 });
    assert.equal(res.status, 200);
    assert.equal(entra.requests.at(-1)!.header!['x5t#S256'], x5tS256(certs[1]!), 'still signing with the last good pair');
    // Fixing the files clears the problem.
    rmSync(join(volume(), 'tls.crt'));
    writeFileSync(join(volume(), 'tls.crt'), certs[1]!.certPem);
    await waitForReadyz(tb, 'the problem to clear', (r) => r.status === 'ok');
  });
});

describe('Entra has not caught up with a rotation yet', () => {
  test('AADSTS700027 right after a rotation: retried once with the previous certificate', async () => {
    // Only the old certificate is registered: the new one is refused until the portal is updated.
    entra.addApp({ tenantId: TENANT, clientId: CLIENT, certificates: [certs[0]!.certPem] });
    const volume = join(dir.path, 'lagging');
    writeSecretVolume(volume, certs[0]!, 1);
    const tb = await startTestBroker(brokerConfig(volume), dir.path);
    try {
      assert.equal((await tb.token(KEY, { credential: 'powerbi' })).status, 200);
      writeSecretVolume(volume, certs[1]!, 2);
      await waitForCertificate(tb, certs[1]!);
      const before = entra.requests.length;
      const res = await tb.token(KEY, { credential: 'powerbi' });
      assert.equal(res.status, 200, await res.clone().text());
      const attempts = entra.requests.slice(before);
      assert.deepEqual(
        attempts.map((r) => [r.header!['x5t#S256'], r.aadsts ?? r.outcome]),
        [
          [x5tS256(certs[1]!), 700027],
          [x5tS256(certs[0]!), 200],
        ],
      );
      assert.match(tb.logs.text, /retrying once with the previous certificate/);
    } finally {
      await tb.close();
      entra.removeApp(CLIENT);
    }
  });
});

describe('the IdP fails right after a rotation', () => {
  test('the token obtained with the previous certificate keeps being served until it expires', async () => {
    entra.addApp({ tenantId: TENANT, clientId: CLIENT, certificates: certs.map((c) => c.certPem) });
    const volume = join(dir.path, 'outage');
    writeSecretVolume(volume, certs[0]!, 1);
    const tb = await startTestBroker(brokerConfig(volume), dir.path);
    try {
      const first = (await (await tb.token(KEY, { credential: 'powerbi' })).json()) as { access_token: string };
      writeSecretVolume(volume, certs[1]!, 2);
      await waitForCertificate(tb, certs[1]!);
      entra.inject({ status: 503, times: Infinity });
      const res = await tb.token(KEY, { credential: 'powerbi' });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(((await res.json()) as { access_token: string }).access_token, first.access_token);
      assert.match(tb.logs.text, /serving the still-valid token/);
    } finally {
      entra.clearFaults();
      await tb.close();
      entra.removeApp(CLIENT);
    }
  });
});
