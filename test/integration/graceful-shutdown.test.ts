// SIGTERM under load: readiness fails at once, requests in flight and the ones sent during the grace
// period all succeed, nothing is reset, and the process exits 0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { startBrokerProcess } from '../helpers/broker-process.ts';
import { POWERBI_SCOPE, TEST_CLIENT as CLIENT, TEST_TENANT as TENANT, entraCredential } from '../helpers/entra-fixture.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';

const KEY = 'drain-key';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: TempDir;
let entra: EntraStandIn;
let cert: CredentialFiles;

before(async () => {
  dir = tempDir();
  cert = await writeCredentialFiles(dir, 'drain');
  entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, certificates: [cert.cert.certPem] }] });
});
after(async () => {
  await entra.close();
  dir.remove();
});

test('SIGTERM under load: no failed or reset request, readiness false at once, exit 0', async () => {
  const broker = await startBrokerProcess(
    {
      server: { shutdownDelaySeconds: 1.5 },
      credentials: [entraCredential('powerbi', entra.url, cert, { scopes: [POWERBI_SCOPE, 'https://analysis.usgovcloudapi.net/powerbi/api/.default'] })],
      callers: [{ id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: [{ credential: 'powerbi' }], rateLimit: { requestsPerSecond: 100_000, burst: 100_000 } }],
    },
    dir.path,
    'drain',
  );
  assert.equal((await broker.token(KEY, { credential: 'powerbi' })).status, 200);

  // Load, as a load balancer would send it: until it sees /readyz fail.
  const results: (number | string)[] = [];
  let ready = true;
  const loops = Array.from({ length: 4 }, async () => {
    while (ready) {
      try {
        results.push((await broker.token(KEY, { credential: 'powerbi' })).status);
      } catch (err) {
        results.push(String((err as Error).cause ?? err));
      }
      await sleep(5);
    }
  });
  const poller = (async () => {
    while (ready) {
      const res = await fetch(`${broker.url}/readyz`).catch(() => undefined);
      if (res?.status === 503) ready = false;
      await sleep(50);
    }
  })();
  await sleep(500);

  // One slow exchange in flight across the close: the IdP answers after 2.5 s.
  entra.inject({ latencyMs: 2500 });
  const slow = broker.token(KEY, { credential: 'powerbi', scope: 'https://analysis.usgovcloudapi.net/powerbi/api/.default' });
  await sleep(100);
  const signalledAt = Date.now();
  const exited = broker.stop('SIGTERM');
  await poller;
  const notReadyAfter = Date.now() - signalledAt;
  await Promise.all(loops);
  const slowStatus = (await slow).status;
  const code = await exited;

  assert.ok(notReadyAfter < 500, `readiness failed ${notReadyAfter} ms after SIGTERM`);
  assert.ok(results.length > 20, `${results.length} requests`);
  assert.deepEqual([...new Set(results)], [200], 'no failed or reset request');
  assert.equal(slowStatus, 200, 'the request in flight during the close completed');
  assert.equal(code, 0);
  assert.ok(broker.lines.some((l) => l.includes('"msg":"stopped"')));
});
