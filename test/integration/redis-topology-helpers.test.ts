// The Redis Cluster and Sentinel helpers start real topologies and really fail over: the broker's
// cluster and sentinel tests rely on both.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { redisSkipReason } from '../helpers/redis-server.ts';
import { startTestRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.ts';
import { startTestRedisSentinel, type TestRedisSentinel } from '../helpers/redis-sentinel.ts';

const skip = redisSkipReason();

describe('startTestRedisCluster', { skip }, () => {
  let cluster: TestRedisCluster;
  before(async () => {
    cluster = await startTestRedisCluster({ password: 'cluster-secret', username: 'broker' });
  });
  after(() => cluster?.close());

  test('serves keys through any node and fails a killed master over to its replica', async () => {
    const key = 'topology:cluster-key';
    assert.equal(cluster.nodes.length, 6);
    assert.equal(cluster.seeds.length, 6);
    assert.equal(cluster.cli('-c', 'SET', key, 'v1'), 'OK');
    assert.equal(cluster.cli('-c', 'GET', key), 'v1');
    assert.equal(cluster.cli('ACL', 'WHOAMI'), 'broker', 'cli calls go through the ACL user');

    const slot = cluster.slotOf(key);
    assert.equal(slot, Number(cluster.nodes[0]!.cli('CLUSTER', 'KEYSLOT', key)));
    const owner = cluster.masterFor(key);
    assert.match(owner.cli('INFO', 'replication'), /role:master/);
    assert.equal(owner.cli('CLUSTER', 'COUNTKEYSINSLOT', String(slot)), '1', 'the key lives on the node masterFor names');

    await owner.kill('SIGKILL');
    assert.equal(owner.alive(), false);
    await cluster.waitUntilHealthy();

    const promoted = cluster.masterFor(key);
    assert.notEqual(promoted.port, owner.port);
    assert.equal(promoted.alive(), true);
    assert.match(promoted.cli('INFO', 'replication'), /role:master/);
    assert.equal(promoted.cli('GET', key), 'v1', 'the promoted replica has the key and serves its slot');
    assert.equal(cluster.cli('-c', 'GET', key), 'v1');
  });
});

describe('startTestRedisSentinel', { skip }, () => {
  let setup: TestRedisSentinel;
  before(async () => {
    setup = await startTestRedisSentinel({ password: 'data-secret', sentinelPassword: 'sentinel-secret' });
  });
  after(() => setup?.close());

  test('the sentinels promote the replica when the master dies', async () => {
    assert.equal(setup.sentinels.length, 3);
    assert.equal(setup.masterName, 'tbmaster');
    assert.equal(setup.currentMasterPort(), setup.master.port);
    assert.equal(setup.master.cli('SET', 'topology:sentinel-key', 'v1'), 'OK');

    const from = setup.master.port;
    await setup.master.kill('SIGKILL');
    await setup.waitForFailover(from);

    assert.equal(setup.currentMasterPort(), setup.replica.port, 'the old replica is master now');
    assert.equal(setup.replica.cli('ROLE').split('\n')[0], 'master');
    assert.equal(setup.replica.cli('SET', 'topology:sentinel-key', 'v2'), 'OK', 'the new master takes writes');
  });
});
