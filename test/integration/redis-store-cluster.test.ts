// The Redis store on a real Redis Cluster (3 masters, 3 replicas, made by `redis-cli --cluster
// create`): the shared contract, one slot per target (no CROSSSLOT), sharded notifications, the ACL
// user docs/operations.md documents (exactly its rules) with the password from a file, and a master
// failover followed without restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { CachedToken, SharedStore } from '../../src/cache/token-cache.ts';
import { redisSettingsFrom } from '../../src/cache/redis/redis-clients.ts';
import { createRedisStore } from '../../src/cache/redis/redis-store.ts';
import { systemClock } from '../../src/kernel/clock.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { runTokenCacheContract } from '../contract/token-cache-contract.ts';
import { runGrantStoreContract } from '../contract/grant-store-contract.ts';
import { CacheCipher } from '../../src/cache/cache-cipher.ts';
import { randomBytes } from 'node:crypto';
import { tempDir, type TempDir } from '../helpers/credential-files.ts';
import { startTestRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.ts';
import { redisSkipReason } from '../helpers/redis-server.ts';
import { LogCapture } from '../helpers/test-broker.ts';

const skip = redisSkipReason();
const logger = createLogger({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The ACL rules docs/operations.md gives, for any key prefix (the tests use several). */
function documentedAclRules(): string[] {
  const docs = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
  const line = /ACL SETUSER token-broker on >PASSWORD ([^`\n]+)/.exec(docs);
  assert.ok(line, 'docs/operations.md gives the ACL rules');
  return line[1]!.trim().split(/\s+/).map((rule) => rule.replace('token-broker:', ''));
}

let cluster: TestRedisCluster;
let dir: TempDir;
before(async () => {
  if (skip) return;
  dir = tempDir();
  // A node timeout of 3 s: a failover takes longer than the client's retries (about 1.2 s), so the
  // health check sees the dead master before its replica takes over.
  cluster = await startTestRedisCluster({ username: 'broker', password: 'cluster secret', aclRules: documentedAclRules(), nodeTimeoutMs: 3000 });
});
after(async () => {
  await cluster?.close();
  dir?.remove();
});

function clusterStore(prefix: string, log = logger, cipher?: CacheCipher): SharedStore {
  const settings = redisSettingsFrom({ redisCluster: { nodes: cluster.seeds.slice(0, 2), username: 'broker', passwordFile: dir.write('redis-password', 'cluster secret\n') } }, dir.path)!;
  return createRedisStore({ settings, keyPrefix: prefix, clock: systemClock, logger: log, cipher, grants: !!cipher });
}

// Grants on a cluster with replicas: every claim and commit waits for a replica's WAIT, under the documented ACL.
runGrantStoreContract(
  'redis cluster (ACL user, replicas acknowledge)',
  async () => {
    const cipher = CacheCipher.fromKeyFile(dir.write('grant-keys', `${randomBytes(32).toString('base64')}\n`));
    const a = clusterStore('grants:', logger, cipher);
    const b = clusterStore('grants:', logger, cipher);
    await Promise.all([a.ready(30_000), b.ready(30_000)]);
    return {
      store: a.grants!,
      peer: b.grants!,
      pass: (ms) => sleep(ms),
      close: async () => {
        await Promise.all([a.close(), b.close()]);
        for (const node of cluster.nodes) assert.equal(node.cli('ACL', 'LOG'), '', `ACL LOG of ${node.port} is empty: the documented rules cover the grant store`);
      },
    };
  },
  { skip, withoutRaw: true },
);

function token(accessToken: string, lifetimeMs = 60_000): CachedToken {
  const now = Date.now();
  return { accessToken, tokenType: 'Bearer', expiresAt: now + lifetimeMs, refreshAt: now + lifetimeMs / 2, obtainedAt: now };
}

runTokenCacheContract(
  'redis cluster',
  async () => {
    const store = clusterStore('contract:');
    await store.ready(30_000);
    return {
      store,
      peer: async () => {
        const peer = clusterStore('contract:');
        await peer.ready(30_000);
        return peer;
      },
    };
  },
  { skip },
);

describe('redis cluster specifics', { skip }, () => {
  test('targets spread over the masters; each one keeps its token, lock, failure record in one slot', async () => {
    const store = clusterStore('spread:');
    await store.ready(30_000);
    try {
      const keys = Array.from({ length: 24 }, (_, i) => `cdr|fp|scope-${i}`);
      for (const k of keys) {
        // A MULTI (set + del failure + notification) and a script (release) per target: CROSSSLOT would throw.
        const lock = await store.tokens.tryLock(k, 10_000);
        assert.ok(lock, k);
        await store.tokens.recordFailure(k, { kind: 'unavailable', message: 'down' }, 5_000);
        await store.tokens.set(k, token(`t-${k}`));
        await lock.release();
      }
      const masters = new Set(keys.map((k) => cluster.masterFor(`spread:{${k}}:token`).port));
      assert.equal(masters.size, 3, 'targets land on every master');
      for (const k of keys) {
        const slot = cluster.slotOf(`spread:{${k}}:token`);
        assert.equal(cluster.slotOf(`spread:{${k}}:lock`), slot);
        assert.equal(cluster.slotOf(`spread:{${k}}:failure`), slot);
        assert.equal((await store.tokens.get(k))!.accessToken, `t-${k}`);
        assert.equal(await store.tokens.getFailure(k), undefined, 'the stored token cleared the failure record');
      }
      // Braces in a target key cannot end the tag early (two targets sharing a slot by accident).
      await store.tokens.set('cdr|fp|odd}scope{', token('odd'));
      assert.equal((await store.tokens.get('cdr|fp|odd}scope{'))!.accessToken, 'odd');
    } finally {
      await store.close();
    }
  });

  test('a result stored just before another replica starts waiting still ends its wait at once', async () => {
    const a = clusterStore('early:');
    const b = clusterStore('early:');
    await Promise.all([a.ready(30_000), b.ready(30_000)]);
    try {
      const k = 'cdr|fp|early';
      await a.tokens.set(k, token('early'));
      const t0 = Date.now();
      // Its own timeout is 60 s: the sharded subscription made for this wait re-reads once in place.
      await b.tokens.waitForUpdate(k, 60_000);
      assert.ok(Date.now() - t0 < 30_000, `ended by the re-read, not the timeout (${Date.now() - t0} ms)`);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('a master killed: degraded naming the node, the replica promoted, writes to its slots work again without restart', async (t) => {
    const logs = new LogCapture();
    const store = clusterStore('failover:', createLogger({ destination: logs }));
    let recovered = 0;
    store.health.onRecovered(() => recovered++);
    await store.ready(30_000);
    try {
      const k = 'cdr|fp|failover';
      await store.tokens.set(k, token('before'));
      const victim = cluster.masterFor(`failover:{${k}}:token`);
      await victim.kill('SIGKILL');
      // The health check writes to every master: the dead one shows even while the others answer.
      const deadline = Date.now() + 120_000;
      while (store.health.status().state === 'ok') {
        assert.ok(Date.now() < deadline, 'never degraded');
        await sleep(100);
      }
      const detail = store.health.status().detail ?? '';
      t.diagnostic(detail);
      assert.match(detail, /redis (unreachable|slow|writes failing)/);
      assert.ok(detail.includes(String(victim.port)) || /CLUSTERDOWN/.test(detail), `names the node or the cluster state: ${detail}`);
      await cluster.waitUntilHealthy();
      assert.notEqual(cluster.masterFor(`failover:{${k}}:token`).port, victim.port, 'a replica took over');
      while (store.health.status().state !== 'ok') {
        assert.ok(Date.now() < deadline, `never recovered: ${store.health.status().detail}`);
        await sleep(100);
      }
      assert.equal(recovered, 1);
      await store.tokens.set(k, token('after'));
      assert.equal((await store.tokens.get(k))!.accessToken, 'after');
      const lock = await store.tokens.tryLock(k, 10_000);
      assert.ok(lock, 'locks work on the promoted master');
      await lock.release();
      assert.match(logs.text, /serving from memory/);
      assert.match(logs.text, /redis usable again/);
      assert.doesNotMatch(logs.text, /cluster secret/, 'no password in logs');
      for (const node of cluster.nodes.filter((n) => n.alive())) assert.equal(node.cli('ACL', 'LOG'), '', `no command refused by the ACL on ${node.port}`);
    } finally {
      await store.close();
    }
  });
});
