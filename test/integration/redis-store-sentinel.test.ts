// The Redis store on a real Sentinel setup (a master, its replica, 3 sentinels): the shared contract,
// passwords from files for the data nodes and the sentinels, a failover followed without restart,
// and a wrong master name explained.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CachedToken, SharedStore } from '../../src/cache/token-cache.ts';
import { redisSettingsFrom } from '../../src/cache/redis/redis-clients.ts';
import { createRedisStore } from '../../src/cache/redis/redis-store.ts';
import { systemClock } from '../../src/kernel/clock.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { runTokenCacheContract } from '../contract/token-cache-contract.ts';
import { grant, runGrantStoreContract } from '../contract/grant-store-contract.ts';
import { CacheCipher } from '../../src/cache/cache-cipher.ts';
import { randomBytes } from 'node:crypto';
import { tempDir, type TempDir } from '../helpers/credential-files.ts';
import { startTestRedisSentinel, type TestRedisSentinel } from '../helpers/redis-sentinel.ts';
import { redisSkipReason } from '../helpers/redis-server.ts';
import { LogCapture } from '../helpers/test-broker.ts';

const skip = redisSkipReason();
const logger = createLogger({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let sentinel: TestRedisSentinel;
let dir: TempDir;
before(async () => {
  if (skip) return;
  dir = tempDir();
  sentinel = await startTestRedisSentinel({ password: 'data-secret', sentinelPassword: 'sentinel-secret' });
});
after(async () => {
  await sentinel?.close();
  dir?.remove();
});

function sentinelStore(prefix: string, options: { log?: typeof logger; masterName?: string; cipher?: CacheCipher } = {}): SharedStore {
  const settings = redisSettingsFrom(
    {
      redisSentinel: {
        sentinels: sentinel.sentinelAddresses,
        masterName: options.masterName ?? sentinel.masterName,
        passwordFile: dir.write('data-password', 'data-secret\n'),
        sentinelPasswordFile: dir.write('sentinel-password', 'sentinel-secret'),
      },
    },
    dir.path,
  )!;
  return createRedisStore({ settings, keyPrefix: prefix, clock: systemClock, logger: options.log ?? logger, cipher: options.cipher, grants: !!options.cipher });
}

const grantCipher = () => CacheCipher.fromKeyFile(dir.write('grant-keys', `${randomBytes(32).toString('base64')}\n`));

// Grants through Sentinel: the master has a replica, so every claim and commit waits for its acknowledgement.
runGrantStoreContract(
  'redis sentinel (a replica acknowledges)',
  async () => {
    const cipher = grantCipher();
    const a = sentinelStore('grants:', { cipher });
    const b = sentinelStore('grants:', { cipher });
    await Promise.all([a.ready(30_000), b.ready(30_000)]);
    return { store: a.grants!, peer: b.grants!, pass: (ms) => sleep(ms), close: () => Promise.all([a.close(), b.close()]).then(() => undefined) };
  },
  { skip, withoutRaw: true },
);

function token(accessToken: string): CachedToken {
  const now = Date.now();
  return { accessToken, tokenType: 'Bearer', expiresAt: now + 60_000, refreshAt: now + 30_000, obtainedAt: now };
}

runTokenCacheContract(
  'redis sentinel',
  async () => {
    const store = sentinelStore('contract:');
    await store.ready(30_000);
    return {
      store,
      peer: async () => {
        const peer = sentinelStore('contract:');
        await peer.ready(30_000);
        return peer;
      },
    };
  },
  { skip },
);

describe('redis sentinel specifics', { skip }, () => {
  test('a claim no replica acknowledges is withdrawn: the refresh token is not redeemed on a claim a failover could lose', async () => {
    const store = sentinelStore('unacked:', { cipher: grantCipher() });
    await store.ready(30_000);
    const pid = Number(/^process_id:(\d+)/m.exec(sentinel.replica.cli('INFO', 'server'))?.[1]);
    assert.ok(pid > 0);
    try {
      const { version } = await store.grants!.replace('cdr', grant('rt-1'));
      process.kill(pid, 'SIGSTOP');
      assert.equal(await store.grants!.claim('cdr', version, 'a', 30_000), 'unconfirmed');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Withdrawn: another holder may claim it once the replica answers again.
    const deadline = Date.now() + 60_000;
    let outcome = await store.grants!.claim('cdr', (await store.grants!.read('cdr'))!.version, 'b', 30_000);
    while (outcome !== 'claimed' && Date.now() < deadline) {
      await sleep(200);
      outcome = await store.grants!.claim('cdr', (await store.grants!.read('cdr'))!.version, 'b', 30_000);
    }
    assert.equal(outcome, 'claimed');
    await store.close();
  });

  test('a wrong master name: degraded, with the name and the sentinels tried, never a crash', async () => {
    const logs = new LogCapture();
    const store = sentinelStore('wrong:', { log: createLogger({ destination: logs }), masterName: 'no-such-master' });
    try {
      const deadline = Date.now() + 60_000;
      while (!/serving from memory/.test(logs.text)) {
        assert.ok(Date.now() < deadline, `no warning: ${logs.text}`);
        await sleep(100);
      }
      const status = store.health.status();
      assert.equal(status.state, 'degraded');
      assert.match(status.detail ?? '', /no-such-master/);
      assert.match(status.detail ?? '', new RegExp(sentinel.sentinelAddresses[0]!.replace('.', '\\.')));
      await assert.rejects(store.tokens.get('k'));
      assert.doesNotMatch(logs.text, /secret/, 'no password in logs');
    } finally {
      await store.close();
    }
  });

  // Last: it changes which node is master for the rest of the file.
  test('the master killed: the store follows the promoted replica, writes and locks work again', async () => {
    const logs = new LogCapture();
    const store = sentinelStore('failover:', { log: createLogger({ destination: logs }) });
    let recovered = 0;
    store.health.onRecovered(() => recovered++);
    await store.ready(30_000);
    try {
      await store.tokens.set('cdr|fp|a', token('before'));
      const oldMaster = sentinel.currentMasterPort();
      await sentinel.master.kill('SIGKILL');
      await sentinel.waitForFailover(oldMaster);
      const deadline = Date.now() + 120_000;
      // Writable again once the client asked the sentinels for the new master.
      for (;;) {
        try {
          await store.tokens.set('cdr|fp|b', token('after'));
          break;
        } catch {
          assert.ok(Date.now() < deadline, `never writable again: ${store.health.status().detail}`);
          await sleep(100);
        }
      }
      while (store.health.status().state !== 'ok') {
        assert.ok(Date.now() < deadline, `never ok: ${store.health.status().detail}`);
        await sleep(100);
      }
      assert.equal((await store.tokens.get('cdr|fp|b'))!.accessToken, 'after');
      const lock = await store.tokens.tryLock('cdr|fp|b', 10_000);
      assert.ok(lock);
      await lock.release();
      assert.ok(recovered >= 1, 'the outage ended with a recovery');
      assert.match(logs.text, /redis unreachable: serving from memory/);
    } finally {
      await store.close();
    }
  });
});
