// Per-caller rate limits: a burst above the limit gets 429 with Retry-After, other callers are
// unaffected, and with Redis the limit holds across replicas.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { redisSkipReason, startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

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
  before(async () => {
    tb = await startTestBroker({ credentials, callers }, dir.path);
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
    await sleep(1100);
    assert.equal((await tb.token('noisy-key', { credential: 'cdr' })).status, 200, 'the bucket refills');
  });

  test('the managed-identity endpoint and bad requests count too', async () => {
    await sleep(4100);
    for (let i = 0; i < 4; i++) await tb.token('noisy-key', { bogus: true });
    assert.equal((await tb.token('noisy-key', { credential: 'cdr' })).status, 429);
  });
});

describe('replicas sharing Redis', { skip: skipRedis }, () => {
  let redis: TestRedis;
  let a: TestBroker;
  let b: TestBroker;
  before(async () => {
    redis = await startTestRedis();
    const config = { cache: { redisUrl: redis.url }, credentials, callers };
    [a, b] = await Promise.all([startTestBroker(config, dir.path), startTestBroker(config, dir.path)]);
  });
  after(async () => {
    await a.close();
    await b.close();
    await redis.kill();
  });

  test('a caller that used its budget on one replica is refused by the other in the same window', async () => {
    await sleep(1000 - (Date.now() % 1000) + 20); // start just after a window boundary
    for (let i = 0; i < 4; i++) assert.equal((await a.token('noisy-key', { credential: 'cdr' })).status, 200);
    await sleep(450); // both replicas sync (every 200 ms)
    const res = await b.token('noisy-key', { credential: 'cdr' });
    assert.equal(res.status, 429, 'the other replica knows the budget is spent');
    assert.match(((await res.json()) as { detail: string }).detail, /across the cluster/);
    assert.equal((await b.token('quiet-key', { credential: 'cdr' })).status, 200);
  });
});
