// A broker whose Redis never connects: a wrong password, a port nobody listens on. Callers notice
// nothing (no 429, no 5xx); the operator gets a warning at start naming the URL (never the
// password) and the reason, /readyz degraded and token_broker_redis_up 0, and one info once fixed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, redisSkipReason, startTestRedis } from '../helpers/redis-server.ts';
import { startTestBroker } from '../helpers/test-broker.ts';
import { isDegraded, isHealthy, readiness, redisLog, startOutageFixture, steadyRequests, waitFor, type OutageFixture } from '../helpers/redis-outage.ts';

const skip = redisSkipReason();

describe('a Redis that never connects', { skip }, () => {
  let fixture: OutageFixture;
  before(async () => {
    fixture = await startOutageFixture();
  });
  after(() => fixture?.close());

  test('wrong password at start: a warning naming the redacted URL, degraded, no 429 or 5xx; fixed: one info', async () => {
    const redis = await startTestRedis({ password: 'right-password' });
    const url = redis.url.replace('right-password', 'wrong-password');
    const tb = await startTestBroker(fixture.config(url), fixture.dir.path);
    try {
      await waitFor('a warning from the Redis component', () => redisLog(tb, 'warn').length > 0);
      const [warning] = redisLog(tb, 'warn');
      assert.equal(warning!.reason, 'authentication failed');
      assert.equal(warning!.redis, `redis://127.0.0.1:${redis.port}/0`);
      assert.match(String(warning!.error), /WRONGPASS/);
      assert.ok(await isDegraded(tb), '/readyz degraded and token_broker_redis_up 0');
      assert.match((await readiness(tb)).cache.detail ?? '', /authentication failed/);

      assert.deepEqual(await steadyRequests(tb, 400), { 200: 400 }, 'every request served without Redis');
      assert.equal(redisLog(tb, 'warn').length, 1, 'one warning, not one per reconnect attempt');

      // The operator fixes Redis' side: the broker's next reconnect authenticates.
      redis.cli('CONFIG', 'SET', 'requirepass', 'wrong-password');
      await waitFor('/readyz ok and token_broker_redis_up 1', () => isHealthy(tb));
      assert.equal(redisLog(tb, 'info').filter((e) => e.msg === 'redis usable again').length, 1, 'one info on recovery');
      assert.equal(redisLog(tb, 'warn').length, 1);
      assert.doesNotMatch(tb.logs.text, /wrong-password|right-password/, 'no password in the log');
    } finally {
      await tb.close();
      await redis.kill();
    }
  });

  test('wrong port at start: a warning "unreachable", degraded, requests served', async () => {
    const port = await freePort();
    const tb = await startTestBroker(fixture.config(`redis://127.0.0.1:${port}/0`), fixture.dir.path);
    try {
      await waitFor('a warning from the Redis component', () => redisLog(tb, 'warn').length > 0);
      const [warning] = redisLog(tb, 'warn');
      assert.equal(warning!.reason, 'unreachable');
      assert.equal(warning!.redis, `redis://127.0.0.1:${port}/0`);
      assert.match(String(warning!.error), /ECONNREFUSED/);
      assert.ok(await isDegraded(tb), '/readyz degraded and token_broker_redis_up 0');
      assert.deepEqual(await steadyRequests(tb, 40), { 200: 40 });
      assert.equal(redisLog(tb, 'warn').length, 1, 'one warning, not one per reconnect attempt');
    } finally {
      await tb.close();
    }
  });

  test('a cluster whose seed nodes all refuse: a warning naming the seeds tried and the field, degraded, requests served', async () => {
    const ports = [await freePort(), await freePort()];
    const tb = await startTestBroker(fixture.config({ redisCluster: { nodes: ports.map((p) => `redis://127.0.0.1:${p}`) } }), fixture.dir.path);
    try {
      await waitFor('a warning from the Redis component', () => redisLog(tb, 'warn').length > 0);
      const [warning] = redisLog(tb, 'warn');
      assert.equal(warning!.reason, 'unreachable');
      assert.equal(warning!.redis, `redis cluster 127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}`);
      assert.match(String(warning!.error), /cache\.redisCluster\.nodes/);
      assert.ok(await isDegraded(tb), '/readyz degraded and token_broker_redis_up 0');
      assert.match((await readiness(tb)).cache.detail ?? '', new RegExp(`127\\.0\\.0\\.1:${ports[0]}`));
      assert.deepEqual(await steadyRequests(tb, 40), { 200: 40 });
      assert.equal(redisLog(tb, 'warn').length, 1, 'one warning, not one per reconnect attempt');
    } finally {
      await tb.close();
    }
  });
});
