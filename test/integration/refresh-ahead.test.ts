// Background refresh for targets in use, none for targets no longer asked for. The broker runs on a
// clock the test moves, so when a refresh is due depends on the test, not on how fast the machine is.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { TEST_CLIENT as CLIENT, TEST_TENANT as TENANT, entraCredential } from '../helpers/entra-fixture.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { manualClock } from '../helpers/manual-clock.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const KEY = 'warm-key';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Half a minute behind the real one: the stand-in stamps `exp` into its tokens by the real clock, and
// the broker refuses a token whose exp has passed by its own clock, so this one must never run ahead.
const clock = manualClock(Date.now() - 30_000);

let dir: TempDir;
let entra: EntraStandIn;
let tb: TestBroker;

const exchanges = () => entra.requests.filter((r) => r.path.endsWith('/token')).length;

/** Waits until the background refresher has made `count` exchanges in all (the cap only stops a hung test). */
async function waitForExchanges(count: number) {
  const deadline = Date.now() + 60_000;
  while (exchanges() < count) {
    assert.ok(Date.now() < deadline, `waited for exchange ${count}; ${exchanges()} so far`);
    await sleep(20);
  }
}

before(async () => {
  dir = tempDir();
  const cert = await writeCredentialFiles(dir, 'warm');
  entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, certificates: [cert.cert.certPem] }] });
  // refresh_in (1 s) well before the lifetime fraction (0.5 × 4 s), so the test tells which one decided.
  entra.setTokenLifetime(4, { refreshInSeconds: 1 });
  tb = await startTestBroker(
    {
      cache: { keepWarmSeconds: 3 },
      credentials: [entraCredential('powerbi', entra.url, cert)],
      callers: [{ id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: [{ credential: 'powerbi' }] }],
    },
    dir.path,
    { clock },
  );
});
after(async () => {
  await tb.close();
  await entra.close();
  dir.remove();
});

test('a target used recently is renewed at refresh_in with no request in flight; an idle one is let expire', async () => {
  const first = await tb.token(KEY, { credential: 'powerbi', min_ttl_seconds: 0 });
  assert.equal(first.status, 200);
  assert.equal(exchanges(), 1);

  // Past refresh_in (1 s) but before the lifetime fraction (2 s): renewed by refresh_in.
  clock.advance(1100);
  await waitForExchanges(2);
  // And again one refresh_in after that one, still within keepWarmSeconds (3 s) of the last use.
  clock.advance(1100);
  await waitForExchanges(3);

  // 3.3 s after the last use: idle. The refresher looks every 250 ms; give it many looks, then check
  // it made no exchange (a slow machine can only make this wait pass, never fail it wrongly).
  clock.advance(1100);
  await sleep(2000);
  assert.equal(exchanges(), 3, 'no refresh once idle for keepWarmSeconds');

  // The last token (obtained at 2.2 s, 4 s of life) has expired by 6.3 s: the idle target was let go.
  clock.advance(3000);
  const later = (await (await tb.token(KEY, { credential: 'powerbi', min_ttl_seconds: 0 })).json()) as { cache: string };
  assert.equal(later.cache, 'miss', 'the idle target expired instead of being kept warm');
  assert.equal(exchanges(), 4);
});
