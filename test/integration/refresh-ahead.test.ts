// Background refresh for targets in use, none for targets no longer asked for.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { TEST_CLIENT as CLIENT, TEST_TENANT as TENANT, entraCredential } from '../helpers/entra-fixture.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const KEY = 'warm-key';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: TempDir;
let entra: EntraStandIn;
let tb: TestBroker;

before(async () => {
  dir = tempDir();
  const cert = await writeCredentialFiles(dir, 'warm');
  entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, certificates: [cert.cert.certPem] }] });
  entra.setTokenLifetime(2, { refreshInSeconds: 1 });
  tb = await startTestBroker(
    {
      cache: { keepWarmSeconds: 3 },
      credentials: [entraCredential('powerbi', entra.url, cert)],
      callers: [{ id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: [{ credential: 'powerbi' }] }],
    },
    dir.path,
  );
});
after(async () => {
  await tb.close();
  await entra.close();
  dir.remove();
});

test('a target used recently is renewed at refresh_in with no request in flight; an idle one is let expire', async () => {
  const t0 = Date.now();
  const first = await tb.token(KEY, { credential: 'powerbi', min_ttl_seconds: 0 });
  assert.equal(first.status, 200);
  await sleep(6000);
  const stamps = tb.logs.entries().filter((e) => e.msg === 'token exchanged with the identity provider').map((e) => Date.parse(e.time as string) - t0);
  const background = stamps.slice(1);
  assert.ok(background.length >= 2, `refreshed in the background while warm: ${JSON.stringify(stamps)}`);
  assert.ok(background.every((ms) => ms < 4500), `no refresh once idle for keepWarmSeconds: ${JSON.stringify(stamps)}`);
  // refresh_in (1 s) from the server decides, not the lifetime fraction.
  assert.ok(background[0]! >= 900 && background[0]! < 2000, `first refresh at ${background[0]} ms`);
  const later = (await (await tb.token(KEY, { credential: 'powerbi', min_ttl_seconds: 0 })).json()) as { cache: string };
  assert.equal(later.cache, 'miss', 'the idle target expired instead of being kept warm');
});
