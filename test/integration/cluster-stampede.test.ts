// Three broker processes on one Redis: one exchange per cluster for a cold stampede, and the IdP's
// Retry-After honoured by every replica.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER_KEY as KEY, OTHER_SCOPE as OTHER, assertOneExchangeForColdStampede, sleep, startBrokerCluster, type BrokerCluster } from '../helpers/broker-cluster.ts';
import { redisSkipReason } from '../helpers/redis-server.ts';

const skip = redisSkipReason();

describe('a cluster of three brokers on one Redis: stampede and throttling', { skip }, () => {
  let c: BrokerCluster;
  before(async () => {
    c = await startBrokerCluster('stampede');
  });
  after(() => c.close());

  test('300 concurrent cold requests across 3 processes make exactly one IdP exchange', async () => {
    await c.start('stampede');
    try {
      await assertOneExchangeForColdStampede(c);
    } finally {
      await c.stop();
    }
  });

  test('a 429 with Retry-After: 5 stops exchanges from every replica for 5 s', async () => {
    const brokers = await c.start('throttle');
    try {
      c.entra.inject({ status: 429, retryAfterSeconds: 5 });
      // The back-off starts when a broker reads the 429, which is after this request was sent: every
      // request answered before sentAt + 5 s falls inside it, however slow the machine is.
      const sentAt = Date.now();
      const first = await brokers[0]!.token(KEY, { credential: 'powerbi' });
      assert.equal(first.status, 503);
      assert.equal(first.headers.get('retry-after'), '5');
      const before = c.tokenPosts();
      const insideUntil = sentAt + 4800;
      let postsInside = before;
      let checked = 0;
      while (Date.now() < sentAt + 3500) {
        for (const b of brokers) {
          const res = await b.token(KEY, { credential: 'powerbi', scope: OTHER });
          if (Date.now() >= insideUntil) break;
          assert.equal(res.status, 503);
          postsInside = c.tokenPosts();
          checked++;
        }
        await sleep(200);
      }
      assert.ok(checked >= 3, `requests inside the back-off (${checked})`);
      assert.equal(postsInside, before, 'no exchange from any replica during Retry-After');
      // The back-off ends 5 s after a broker read the 429, which on a loaded machine can be well after
      // sentAt: exchanges resume then, whenever that is (the cap only stops a hung test).
      await sleep(Math.max(0, sentAt + 5000 - Date.now()));
      await c.waitFor('exchanges resume after the back-off', async () => (await brokers[1]!.token(KEY, { credential: 'powerbi' })).status === 200, 60_000);
    } finally {
      await c.stop();
    }
  });
});
