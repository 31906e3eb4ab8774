// Three broker processes on a real Redis Cluster (3 masters + 3 replicas) and on a real Sentinel
// setup: one exchange per target for a cold stampede, and a master killed under load with no warm
// request failing, the brokers following the promoted replica and sharing the cache again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER_KEY as KEY, OTHER_SCOPE as OTHER, assertOneExchangeForColdStampede, sleep, startBrokerCluster, type BrokerCluster, type SharedRedis } from '../helpers/broker-cluster.ts';
import type { BrokerProcess } from '../helpers/broker-process.ts';
import { startTestRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.ts';
import { startTestRedisSentinel, type TestRedisSentinel } from '../helpers/redis-sentinel.ts';
import { redisSkipReason } from '../helpers/redis-server.ts';

const skip = redisSkipReason();
/** Scopes the credential may ask for, so a test can pick a target whose keys live on a given master. */
const EXTRA_SCOPES = Array.from({ length: 24 }, (_, i) => `https://api${i}.example.test/.default`);

type ClusterRedis = TestRedisCluster & SharedRedis;
type SentinelRedis = TestRedisSentinel & SharedRedis;

/** The token keys of a scope in the cluster (each master holds its own). */
function tokenKeys(redis: TestRedisCluster, prefix: string, scope: string): string[] {
  return redis.nodes.filter((n) => n.alive()).flatMap((n) => n.cli('KEYS', `${prefix}:{powerbi|*|${scope}}:token`).split('\n').filter(Boolean));
}

const cacheOf = async (b: BrokerProcess, body: Record<string, unknown>) => {
  const res = await b.token(KEY, body);
  return { status: res.status, cache: ((await res.json()) as { cache?: string }).cache };
};

const allReady = (c: BrokerCluster<SharedRedis>) =>
  c.waitFor('every replica ready (its Redis connected)', async () => (await Promise.all(c.brokers.map(async (b) => (await c.readyz(b)).status))).every((s) => s === 'ok'), 120_000);

async function oneExchangeForNewTarget(c: BrokerCluster<SharedRedis>, scope: string): Promise<void> {
  const before = c.tokenPosts();
  const [first, ...rest] = c.brokers;
  assert.deepEqual(await cacheOf(first!, { credential: 'powerbi', scope }), { status: 200, cache: 'miss' });
  for (const b of rest) assert.deepEqual(await cacheOf(b, { credential: 'powerbi', scope }), { status: 200, cache: 'hit' }, 'shared through Redis');
  assert.equal(c.tokenPosts() - before, 1, 'one exchange for three replicas');
}

describe('three brokers on a Redis Cluster', { skip }, () => {
  let c: BrokerCluster<ClusterRedis>;
  before(async () => {
    c = await startBrokerCluster(
      'redis-cluster',
      async () => {
        // 3 s: a failover takes longer than the client's retries, so the brokers see the dead master.
        const redis = await startTestRedisCluster({ nodeTimeoutMs: 3000 });
        return Object.assign(redis, { cache: { redisCluster: { nodes: redis.seeds.slice(0, 3) } } });
      },
      { scopes: EXTRA_SCOPES },
    );
    for (const scope of EXTRA_SCOPES) c.entra.knownResources.add(scope.slice(0, -'/.default'.length));
    // One set of brokers for both tests (each broker process costs seconds of CPU to start); the
    // tests use different targets.
    await c.start('cluster');
    await allReady(c);
  });
  after(() => c?.close());

  test('300 concurrent cold requests across 3 processes make exactly one IdP exchange', async () => {
    await assertOneExchangeForColdStampede(c);
  });

  test('the master of a warm target killed under load: no failed request, degraded, then shared again and ok', async () => {
    const { brokers } = c;
    assert.equal((await brokers[0]!.token(KEY, { credential: 'powerbi', scope: OTHER })).status, 200);
    await c.waitFor('the warm token stored in the cluster', async () => tokenKeys(c.redis, 'cluster', OTHER).length > 0);
    const [warmKey] = tokenKeys(c.redis, 'cluster', OTHER);
    const victim = c.redis.masterFor(warmKey!);
    const run = c.load({ credential: 'powerbi', scope: OTHER }, 6);
    await sleep(500);
    await victim.kill('SIGKILL');
    await c.waitFor('a replica reports the cache degraded', async () => (await Promise.all(brokers.map((b) => c.readyz(b)))).some((r) => r.status === 'degraded' && r.checks.cache.status !== 'ok'), 120_000);
    await c.redis.waitUntilHealthy();
    await c.waitFor('every replica ready again', async () => (await Promise.all(brokers.map(async (b) => (await c.readyz(b)).status))).every((s) => s === 'ok'), 120_000);
    const results = await run.stop();
    assert.ok(results.length >= 10, `requests across the failover (${results.length})`);
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200], 'no failed warm request');
    // A new target whose keys live on the promoted master: exchanged once, then a hit everywhere.
    const promoted = c.redis.masterFor(warmKey!).port;
    const fingerprint = warmKey!.split('|')[1];
    const scope = EXTRA_SCOPES.find((s) => c.redis.masterFor(`cluster:{powerbi|${fingerprint}|${s}}:token`).port === promoted);
    assert.ok(scope, 'a target on the promoted master');
    await oneExchangeForNewTarget(c, scope);
  });
});

describe('three brokers on a Sentinel-managed Redis', { skip }, () => {
  let c: BrokerCluster<SentinelRedis>;
  before(async () => {
    c = await startBrokerCluster('redis-sentinel', async () => {
      const redis = await startTestRedisSentinel();
      return Object.assign(redis, { cache: { redisSentinel: { sentinels: redis.sentinelAddresses, masterName: redis.masterName } } });
    });
  });
  after(() => c?.close());

  test('the master killed under load: no failed request; the brokers follow the promoted replica; locks and refresh-ahead work after', async () => {
    c.entra.setTokenLifetime(6);
    const brokers = await c.start('failover', { refreshAheadRatio: 0.5 });
    try {
      await allReady(c);
      assert.equal((await brokers[0]!.token(KEY, { credential: 'powerbi', min_ttl_seconds: 1 })).status, 200);
      const run = c.load({ credential: 'powerbi', min_ttl_seconds: 1 }, 6);
      await sleep(500);
      const oldMaster = c.redis.currentMasterPort();
      await c.redis.master.kill('SIGKILL');
      await c.waitFor('a replica reports the cache degraded', async () => (await Promise.all(brokers.map((b) => c.readyz(b)))).some((r) => r.status === 'degraded'), 120_000);
      await c.redis.waitForFailover(oldMaster);
      await c.waitFor('every replica ready again', async () => (await Promise.all(brokers.map(async (b) => (await c.readyz(b)).status))).every((s) => s === 'ok'), 120_000);
      // Refresh-ahead after the failover: across two more lifetimes, one exchange per refresh cycle
      // by one replica (never one per replica), and nobody waiting on the IdP.
      const before = c.tokenPosts();
      const since = Date.now();
      await sleep(12_000);
      const results = await run.stop();
      const seconds = (Date.now() - since) / 1000;
      const exchanges = c.tokenPosts() - before;
      assert.ok(results.length >= 30, `requests across the failover (${results.length})`);
      assert.deepEqual([...new Set(results.map((r) => r.status))], [200], 'no failed warm request');
      const cycles = seconds / 3;
      assert.ok(exchanges >= 1 && exchanges <= Math.ceil(cycles) + 1, `${exchanges} exchanges in ${seconds.toFixed(1)} s (${cycles.toFixed(1)} cycles)`);
      assert.deepEqual([...new Set(results.filter((r) => r.sentAt > since).map((r) => r.cache))], ['hit'], 'no caller waited on the IdP after the failover');
      // Locks on the new master: a new target is exchanged once for three replicas.
      c.entra.setTokenLifetime(3599);
      await oneExchangeForNewTarget(c, 'https://analysis.usgovcloudapi.net/powerbi/api/.default');
    } finally {
      c.entra.setTokenLifetime(3599);
      await c.stop();
    }
  });
});
