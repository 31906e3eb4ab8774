// Three broker processes on one Redis that is killed under load and started again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER_KEY as KEY, OTHER_SCOPE as OTHER, sleep, startBrokerCluster, type BrokerCluster } from '../helpers/broker-cluster.ts';
import { redisSkipReason } from '../helpers/redis-server.ts';

const skip = redisSkipReason();

describe('a cluster of three brokers on one Redis: Redis killed', { skip }, () => {
  let c: BrokerCluster;
  before(async () => {
    c = await startBrokerCluster('redis-kill');
  });
  after(() => c.close());

  test('Redis killed under load: zero failed requests; restarted: ready again and the cache is shared again', async () => {
    const brokers = await c.start('outage');
    try {
      assert.equal((await brokers[0]!.token(KEY, { credential: 'powerbi' })).status, 200);
      const run = c.load({ credential: 'powerbi' }, 6);
      await sleep(500);
      await c.redis.kill('SIGKILL');
      await c.waitFor('a replica reports the cache degraded', async () => {
        const r = await c.readyz(brokers[1]!);
        return r.status === 'degraded' && r.checks.cache.status !== 'ok';
      });
      await c.redis.start();
      await c.waitFor('every replica ready again', async () => (await Promise.all(brokers.map(async (b) => (await c.readyz(b)).status))).every((s) => s === 'ok'));
      const results = await run.stop();
      assert.ok(results.length >= 10, `requests across the outage (${results.length})`);
      assert.deepEqual([...new Set(results.map((r) => r.status))], [200], 'no failed request');
      // Shared again: a new target fetched by one replica is a hit on the others.
      const before = c.tokenPosts();
      assert.equal(((await (await brokers[0]!.token(KEY, { credential: 'powerbi', scope: OTHER })).json()) as { cache: string }).cache, 'miss');
      for (const b of brokers.slice(1)) {
        assert.equal(((await (await b.token(KEY, { credential: 'powerbi', scope: OTHER })).json()) as { cache: string }).cache, 'hit');
      }
      assert.equal(c.tokenPosts() - before, 1);
    } finally {
      await c.stop();
    }
  });
});
