// Three broker processes on one Redis under steady load across short token lifetimes: refresh-ahead
// by one replica with nobody waiting, and an IdP outage that outlasts a refresh cycle.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER_KEY as KEY, sleep, startBrokerCluster, tokenExp, type BrokerCluster } from '../helpers/broker-cluster.ts';
import { redisSkipReason } from '../helpers/redis-server.ts';

const skip = redisSkipReason();
const LIFETIME_S = 6;

describe('a cluster of three brokers on one Redis: refresh-ahead and IdP outages', { skip }, () => {
  let c: BrokerCluster;
  before(async () => {
    c = await startBrokerCluster('refresh');
  });
  after(() => c.close());

  test('refresh-ahead under steady load: nobody waits, nothing expired, one exchange per refresh cycle', async () => {
    c.entra.setTokenLifetime(LIFETIME_S);
    const brokers = await c.start('refresh', { refreshAheadRatio: 0.5 });
    try {
      assert.equal((await brokers[0]!.token(KEY, { credential: 'powerbi', min_ttl_seconds: 1 })).status, 200);
      const before = c.tokenPosts();
      const started = Date.now();
      const run = c.load({ credential: 'powerbi', min_ttl_seconds: 1 }, 6);
      await sleep(LIFETIME_S * 2 * 1000);
      const results = await run.stop();
      const seconds = (Date.now() - started) / 1000;
      const exchanges = c.tokenPosts() - before;
      assert.ok(results.length >= 30, `steady load (${results.length} requests)`);
      assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
      assert.deepEqual([...new Set(results.map((r) => r.cache))], ['hit'], 'no caller waited on the IdP');
      assert.ok(results.every((r) => r.exp! * 1000 > r.at - 1000), 'no expired token served');
      // A refresh every half lifetime by one replica: at most one exchange per cycle (plus the one in
      // flight at the end), never one per replica; and refreshing did happen across two lifetimes.
      const cycles = seconds / (LIFETIME_S / 2);
      assert.ok(exchanges >= 1 && exchanges <= Math.ceil(cycles) + 1, `${exchanges} exchanges in ${seconds.toFixed(1)} s (${cycles.toFixed(1)} cycles)`);
    } finally {
      c.entra.setTokenLifetime(3599);
      await c.stop();
    }
  });

  test('IdP down past a refresh cycle: valid tokens keep coming, then 503 with Retry-After, then recovery without restart', async () => {
    c.entra.setTokenLifetime(LIFETIME_S);
    const brokers = await c.start('idp-down');
    try {
      const warm = await brokers[0]!.token(KEY, { credential: 'powerbi', min_ttl_seconds: 0 });
      assert.equal(warm.status, 200);
      // The JWT's exp is whole seconds and the broker counts the lifetime from when it asked, so the
      // broker may serve the token up to a second past `exp`: the windows below leave that second out.
      const expMs = tokenExp(((await warm.json()) as { access_token: string }).access_token) * 1000;
      c.entra.inject({ status: 503, times: Infinity });
      const run = c.load({ credential: 'powerbi', min_ttl_seconds: 0 }, 3);
      // Past the refresh point and the expiry of the warm token, plus time for answers after it.
      await c.waitFor('answers after the warm token expired', async () => run.results.filter((r) => r.sentAt > expMs + 1500).length >= 3, 120_000);
      const results = await run.stop();
      // Judged by when each request was sent and answered against the token's own expiry, not by
      // how fast this machine runs the loop.
      const whileValid = results.filter((r) => r.at < expMs - 500);
      assert.ok(whileValid.length >= 5, `requests while the token was valid (${whileValid.length})`);
      assert.deepEqual([...new Set(whileValid.map((r) => r.status))], [200], 'valid tokens keep being served');
      const late = results.filter((r) => r.sentAt > expMs + 1500);
      assert.deepEqual([...new Set(late.map((r) => r.code))], ['idp_unavailable'], 'after expiry: 503 idp_unavailable');
      assert.ok(results.every((r) => (r.status === 200 ? r.exp! * 1000 > r.sentAt - 1000 : r.status === 503)), 'never an expired token');
      const res = await brokers[2]!.token(KEY, { credential: 'powerbi', min_ttl_seconds: 0 });
      assert.equal(res.status, 503);
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      c.entra.clearFaults();
      await c.waitFor('every replica recovers without a restart', async () => {
        const statuses = await Promise.all(brokers.map(async (b) => (await b.token(KEY, { credential: 'powerbi', min_ttl_seconds: 0 })).status));
        return statuses.every((s) => s === 200);
      }, 120_000);
    } finally {
      c.entra.clearFaults();
      c.entra.setTokenLifetime(3599);
      await c.stop();
    }
  });
});
