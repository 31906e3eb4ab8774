// A replica that took the exchange lock and died (no release) only delays the others until the
// lock expires; then one of them exchanges.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { redisSkipReason, startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startTestBroker, waitUntilReady, type TestBroker } from '../helpers/test-broker.ts';

const skip = redisSkipReason();
let dir: TempDir;
let idp: SandboxIdp;
let redis: TestRedis;
let tb: TestBroker;

before(async () => {
  if (skip) return;
  dir = tempDir();
  const files = await writeCredentialFiles(dir, 'cdr');
  idp = await startSandboxIdp({ clients: [{ clientId: 'cdr', certificatePem: files.cert.certPem }] });
  redis = await startTestRedis();
  tb = await startTestBroker(
    {
      cache: { redisUrl: redis.url, keyPrefix: 'death:' },
      credentials: [{ id: 'cdr', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr', certificate: { certFile: files.certFile, keyFile: files.keyFile }, scopes: ['api.read'] }],
      callers: [{ id: 'jobs', apiKeySha256: sha256Hex('k'), allow: [{ credential: 'cdr' }] }],
    },
    dir.path,
  );
  await waitUntilReady(tb.url);
});
after(async () => {
  if (skip) return;
  await tb.close();
  await idp.close();
  await redis.kill();
  dir.remove();
});

test('a dead lock holder delays the exchange until its lock expires, no longer', { skip }, async () => {
  const service = tb.broker.tokenService;
  const key = service.cacheKey(service.credential('cdr'), 'api.read');
  // Another replica took the lock for 1.5 s and died without releasing it.
  assert.equal(redis.cli('SET', `death:{${key}}:lock`, 'dead-replica', 'PX', '1500', 'NX'), 'OK');
  const started = Date.now();
  const res = await tb.token('k', { credential: 'cdr' });
  const waited = Date.now() - started;
  assert.equal(res.status, 200);
  assert.ok(waited >= 1300, `waited ${waited} ms for the lock to expire`);
  // "No longer" is checked by what happened, not by the clock: one exchange, and no lock left behind.
  // The bound below only catches a waiter that never gives up on a dead holder.
  assert.ok(waited < 30_000, `it does not wait for ever (${waited} ms)`);
  assert.equal(idp.captured.length, 1, 'then exactly one exchange');
  assert.equal(redis.cli('EXISTS', `death:{${key}}:lock`), '0', 'and the lock it took is released');
});
