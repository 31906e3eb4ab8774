// Redis failing under a running broker: frozen (SIGSTOP) and out of memory (maxmemory + noeviction).
// Callers notice nothing (no 429, no 5xx); the operator sees one warning, /readyz degraded and
// token_broker_redis_up 0, then one info and everything back when Redis is.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { redisSkipReason, startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';
import { CALLER_KEY, isDegraded, isHealthy, readiness, redisLog, startOutageFixture, steadyRequests, waitFor, type OutageFixture } from '../helpers/redis-outage.ts';

const skip = redisSkipReason();

describe('Redis failing under a running broker', { skip }, () => {
  let fixture: OutageFixture;
  let redis: TestRedis;
  let tb: TestBroker;
  before(async () => {
    fixture = await startOutageFixture();
  });
  after(() => fixture?.close());

  async function startBroker(): Promise<void> {
    redis = await startTestRedis();
    tb = await startTestBroker(fixture.config(redis.url), fixture.dir.path);
    await waitFor('the broker connected to Redis', () => isHealthy(tb));
    assert.equal((await tb.token(CALLER_KEY, { credential: 'cdr' })).status, 200, 'the target is warm');
  }
  async function stopBroker(): Promise<void> {
    await tb?.close();
    await redis?.kill();
  }

  test('Redis frozen (SIGSTOP): no 429 or 5xx, degraded with one warning, back with one info', async () => {
    await startBroker();
    try {
      redis.pause();
      const statuses = await steadyRequests(tb, 400);
      // A target never asked for before: the exchange works without Redis' lock.
      assert.equal((await tb.token(CALLER_KEY, { credential: 'cdr', scope: 'api.write' })).status, 200, 'a cold exchange works');
      assert.deepEqual(statuses, { 200: 400 }, 'every request served while Redis is frozen');
      await waitFor('/readyz degraded and token_broker_redis_up 0', () => isDegraded(tb));
      const during = await readiness(tb);
      assert.match(during.cache.detail ?? '', /slow/);
      const warns = redisLog(tb, 'warn');
      assert.equal(warns.length, 1, `one warning: ${JSON.stringify(warns)}`);
      assert.equal(warns[0]!.reason, 'slow');
      assert.match(String(warns[0]!.msg), /redis slow: serving from memory/);

      redis.resume();
      await waitFor('/readyz ok and token_broker_redis_up 1', () => isHealthy(tb));
      assert.deepEqual(await steadyRequests(tb, 20), { 200: 20 });
      assert.equal(redisLog(tb, 'warn').length, 1, 'still one warning');
      assert.equal(redisLog(tb, 'info').filter((e) => e.msg === 'redis usable again').length, 1, 'one info on recovery');
    } finally {
      redis.resume();
      await stopBroker();
    }
  });

  test('Redis out of memory (maxmemory + noeviction): no 429 or 5xx, "writes failing: OOM", back once writes work', async () => {
    await startBroker();
    try {
      // Fill first (SETRANGE allocates the whole string), then cap memory below what is used.
      redis.cli('SETRANGE', 'filler', '4000000', 'x');
      redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      redis.cli('CONFIG', 'SET', 'maxmemory', '1mb');
      assert.match(redis.cli('SET', 'probe', 'x'), /OOM/, 'Redis refuses writes');
      const statuses = await steadyRequests(tb, 400);
      assert.equal((await tb.token(CALLER_KEY, { credential: 'cdr', scope: 'api.write' })).status, 200, 'a cold exchange works');
      assert.deepEqual(statuses, { 200: 400 }, 'every request served while Redis refuses writes');
      await waitFor('/readyz degraded and token_broker_redis_up 0', () => isDegraded(tb));
      assert.match((await readiness(tb)).cache.detail ?? '', /writes failing: OOM/);
      const warns = redisLog(tb, 'warn');
      assert.equal(warns.length, 1, `one warning: ${JSON.stringify(warns)}`);
      assert.equal(warns[0]!.reason, 'writes failing: OOM');

      redis.cli('CONFIG', 'SET', 'maxmemory', '0');
      await waitFor('/readyz ok and token_broker_redis_up 1', () => isHealthy(tb));
      assert.deepEqual(await steadyRequests(tb, 20), { 200: 20 });
      assert.equal(redisLog(tb, 'warn').length, 1, 'still one warning');
      assert.equal(redisLog(tb, 'info').filter((e) => e.msg === 'redis usable again').length, 1, 'one info on recovery');
    } finally {
      await stopBroker();
    }
  });
});
