// Per-caller rate limits: a burst above the limit gets 429 with Retry-After, other callers are
// unaffected, and with Redis the limit holds across replicas.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { redisSkipReason, startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startTestBroker, waitUntilReady, type TestBroker } from '../helpers/test-broker.ts';
import { manualClock } from '../helpers/manual-clock.ts';

const skipRedis = redisSkipReason();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: TempDir;
let idp: SandboxIdp;
let credentials: unknown[];

const callers = [
  { id: 'noisy', apiKeySha256: sha256Hex('noisy-key'), allow: [{ credential: 'cdr' }], rateLimit: { requestsPerSecond: 1, burst: 4 } },
  { id: 'quiet', apiKeySha256: sha256Hex('quiet-key'), allow: [{ credential: 'cdr' }] },
];

before(async () => {
  dir = tempDir();
  const files = await writeCredentialFiles(dir, 'cdr');
  idp = await startSandboxIdp({ clients: [{ clientId: 'cdr', certificatePem: files.cert.certPem }] });
  credentials = [{ id: 'cdr', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr', certificate: { certFile: files.certFile, keyFile: files.keyFile }, scopes: ['api.read'] }];
});
after(async () => {
  await idp.close();
  dir.remove();
});

describe('one replica', () => {
  let tb: TestBroker;
  // Buckets refill by the broker's clock, which moves only when the test says: a slow machine cannot
  // refill one between two requests.
  const clock = manualClock();
  before(async () => {
    tb = await startTestBroker({ credentials, callers }, dir.path, { clock });
  });
  after(() => tb.close());

  test('a burst above the limit gets 429 rate_limited with Retry-After; other callers are unaffected', async () => {
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 8; i++) {
      const res = await tb.token('noisy-key', { credential: 'cdr' });
      statuses.push(res.status);
      if (res.status === 429) limited ??= res;
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);
    assert.ok(Number(limited!.headers.get('retry-after')) >= 1);
    assert.equal(((await limited!.json()) as { code: string }).code, 'rate_limited');
    for (let i = 0; i < 20; i++) assert.equal((await tb.token('quiet-key', { credential: 'cdr' })).status, 200);
    clock.advance(1100);
    assert.equal((await tb.token('noisy-key', { credential: 'cdr' })).status, 200, 'the bucket refills');
  });

  test('the managed-identity endpoint and bad requests count too', async () => {
    clock.advance(4100);
    for (let i = 0; i < 4; i++) await tb.token('noisy-key', { bogus: true });
    assert.equal((await tb.token('noisy-key', { credential: 'cdr' })).status, 429);
  });
});

describe('replicas sharing Redis', { skip: skipRedis }, () => {
  let redis: TestRedis;
  let a: TestBroker;
  let b: TestBroker;
  // Both replicas on one clock that stays inside one rate-limit window for the whole test.
  const clock = manualClock();
  before(async () => {
    redis = await startTestRedis();
    const config = { cache: { redisUrl: redis.url }, credentials, callers };
    [a, b] = await Promise.all([startTestBroker(config, dir.path, { clock }), startTestBroker(config, dir.path, { clock })]);
    await Promise.all([waitUntilReady(a.url), waitUntilReady(b.url)]);
  });
  after(async () => {
    await a.close();
    await b.close();
    await redis.kill();
  });

  test('a caller that used its budget on one replica is refused by the other in the same window', async () => {
    clock.toNextSecond(20); // just after a window boundary
    // b has seen the caller in this window, so it follows the caller's cluster total from now on.
    assert.equal((await b.token('noisy-key', { credential: 'cdr' })).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await a.token('noisy-key', { credential: 'cdr' })).status, 200);
    // Replicas sync every 200 ms: wait until a has written its count, then for b to read it (the
    // window cannot end meanwhile: the clock stands still).
    const window = Math.floor(clock.now() / 1000);
    const deadline = Date.now() + 60_000;
    while (redis.cli('GET', `token-broker:counter:rate:noisy:${window}`) !== '4') {
      assert.ok(Date.now() < deadline, 'replica a never wrote its count');
      await sleep(50);
    }
    await sleep(1000);
    const res = await b.token('noisy-key', { credential: 'cdr' });
    assert.equal(res.status, 429, 'the other replica knows the budget is spent');
    assert.match(((await res.json()) as { detail: string }).detail, /across the cluster/);
    assert.equal((await b.token('quiet-key', { credential: 'cdr' })).status, 200);
  });
});

describe('an idle broker', { skip: skipRedis }, () => {
  let redis: TestRedis;
  let tb: TestBroker;
  const many = Array.from({ length: 50 }, (_, i) => ({ id: `caller-${i}`, apiKeySha256: sha256Hex(`key-${i}`), allow: [{ credential: 'cdr' }] }));
  before(async () => {
    redis = await startTestRedis();
    tb = await startTestBroker({ cache: { redisUrl: redis.url }, credentials, callers: many }, dir.path);
    await waitUntilReady(tb.url);
  });
  after(async () => {
    await tb?.close();
    await redis?.kill();
  });

  /** Calls per command since the last CONFIG RESETSTAT (INFO commandstats: cmdstat_incrby:calls=3,…). */
  const commandCalls = () =>
    Object.fromEntries([...redis.cli('INFO', 'commandstats').matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));

  test('sends Redis no rate-limit traffic over 10 s with 50 callers configured; one request starts it for that caller only', async () => {
    redis.cli('CONFIG', 'RESETSTAT');
    await sleep(10_000);
    const idle = commandCalls();
    for (const command of ['incrby', 'pexpire', 'multi', 'exec']) assert.equal(idle[command] ?? 0, 0, `${command} while idle: ${JSON.stringify(idle)}`);
    assert.ok((idle.set ?? 0) > 0, `the health check still runs: ${JSON.stringify(idle)}`);
    // The counting is real: one caller's request is synchronised, and only that caller's counter exists.
    assert.equal((await tb.token('key-7', { credential: 'cdr' })).status, 200);
    const deadline = Date.now() + 60_000;
    while (!((commandCalls().incrby ?? 0) > 0)) {
      assert.ok(Date.now() < deadline, 'the active caller was never synchronised');
      await sleep(100);
    }
    const counters = redis.cli('KEYS', 'token-broker:counter:*').split('\n').filter(Boolean);
    assert.ok(counters.length > 0 && counters.every((k) => k.startsWith('token-broker:counter:rate:caller-7:')), counters.join(' '));
  });
});
