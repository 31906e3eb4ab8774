// The grant store in memory, in the encrypted state file (the embedded default across a restart)
// and on a standalone Redis: the shared contract, then what each adds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { CacheCipher } from '../../src/cache/cache-cipher.ts';
import { MemoryGrantStore } from '../../src/cache/memory-grant-store.ts';
import { redisSettingsFrom } from '../../src/cache/redis/redis-clients.ts';
import { createRedisStore } from '../../src/cache/redis/redis-store.ts';
import type { SharedStore } from '../../src/cache/token-cache.ts';
import { systemClock } from '../../src/kernel/clock.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { grant, runGrantStoreContract } from '../contract/grant-store-contract.ts';
import { tempDir, type TempDir } from '../helpers/credential-files.ts';
import { manualClock } from '../helpers/manual-clock.ts';
import { redisSkipReason, startTestRedis } from '../helpers/redis-server.ts';
import { LogCapture, startTestBroker, waitUntilReady } from '../helpers/test-broker.ts';

const logger = createLogger({ level: 'silent' });
const skip = redisSkipReason();
let dir: TempDir;
let cipher: CacheCipher;
before(() => {
  dir = tempDir();
  cipher = CacheCipher.fromKeyFile(dir.write('keys', `${randomBytes(32).toString('base64')}\n`));
});
after(() => dir.remove());

runGrantStoreContract(
  'memory',
  async () => {
    const clock = manualClock();
    return { store: new MemoryGrantStore(clock), pass: async (ms) => clock.advance(ms), close: async () => undefined };
  },
  { withoutRaw: true },
);

runGrantStoreContract('state file', async () => {
  const clock = manualClock();
  const path = join(dir.path, 'contract-state.enc');
  const store = new MemoryGrantStore(clock, { path, cipher, logger });
  return { store, raw: async () => readFileSync(path, 'utf8'), pass: async (ms) => clock.advance(ms), close: async () => undefined };
});

describe('the state file', () => {
  test('a restart reads back every grant; the file is replaced whole, never left half-written', async () => {
    const path = join(dir.path, 'restart-state.enc');
    const first = new MemoryGrantStore(systemClock, { path, cipher, logger });
    const stored = await first.replace('cdr', grant('rt-1'));
    await first.claim('cdr', stored.version, 'a', 30_000);
    await first.commit('cdr', stored.version, 'a', grant('rt-2', { rotations: 1 }));
    const second = new MemoryGrantStore(systemClock, { path, cipher, logger });
    const read = await second.read('cdr');
    assert.equal(read?.refreshToken, 'rt-2');
    assert.equal(read?.version, stored.version + 1);
    assert.deepEqual(readdirSync(dir.path).filter((f) => f.includes('.tmp')), [], 'no temporary file left');
  });

  test('a file no key opens is kept aside, not overwritten, and the error says how to recover', async () => {
    const path = join(dir.path, 'foreign-state.enc');
    const other = CacheCipher.fromKeyFile(dir.write('other-keys', `${randomBytes(32).toString('base64')}\n`));
    await new MemoryGrantStore(systemClock, { path, cipher: other, logger }).replace('cdr', grant('rt-1'));
    const sealed = readFileSync(path, 'utf8');
    const logs = new LogCapture();
    const store = new MemoryGrantStore(systemClock, { path, cipher, logger: createLogger({ destination: logs }) });
    assert.equal(await store.read('cdr'), undefined);
    assert.match(logs.text, /cannot be opened with any key in cache.encryptionKeyFile/);
    const kept = readdirSync(dir.path).find((f) => f.startsWith('foreign-state.enc.unreadable-'));
    assert.ok(kept, 'kept aside');
    assert.equal(readFileSync(join(dir.path, kept), 'utf8'), sealed);
    assert.equal(existsSync(path), false);
  });

  test('a tampered file is not believed', async () => {
    const path = join(dir.path, 'tampered-state.enc');
    await new MemoryGrantStore(systemClock, { path, cipher, logger }).replace('cdr', grant('rt-1'));
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace(/\.([A-Za-z0-9_-])([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]+)\n?$/, (_m, a: string, b: string, tag: string) => `.${a === 'A' ? 'B' : 'A'}${b}.${tag}`));
    const store = new MemoryGrantStore(systemClock, { path, cipher, logger });
    assert.equal(await store.read('cdr'), undefined);
  });
});

function standaloneStore(prefix: string, log = logger): SharedStore {
  const settings = redisSettingsFrom({ redisUrl: 'redis://127.0.0.1:6379' }, dir.path)!;
  return createRedisStore({ settings, keyPrefix: prefix, clock: systemClock, logger: log, cipher, grants: true });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

runGrantStoreContract(
  'redis standalone',
  async () => {
    const prefix = `tb-grants-${process.pid}-${Date.now()}:`;
    const a = standaloneStore(prefix);
    const b = standaloneStore(prefix);
    await Promise.all([a.ready(30_000), b.ready(30_000)]);
    const raw = new Redis('redis://127.0.0.1:6379');
    return {
      store: a.grants!,
      peer: b.grants!,
      raw: async () => {
        const keys = await raw.keys(`${prefix}*`);
        const values = await Promise.all(keys.map(async (k) => ((await raw.type(k)) === 'hash' ? JSON.stringify(await raw.hgetall(k)) : String(await raw.get(k)))));
        return values.join('\n');
      },
      pass: (ms) => sleep(ms),
      close: async () => {
        const keys = await raw.keys(`${prefix}*`);
        if (keys.length) await raw.del(...keys);
        raw.disconnect();
        await Promise.all([a.close(), b.close()]);
      },
    };
  },
  { skip },
);

describe('a broker with delegated credentials on Redis', { skip }, () => {
  const delegatedConfig = (redisUrl: string) => ({
    cache: { redisUrl, encryptionKeyFile: join(dir.path, 'keys') },
    credentials: [{ id: 'cdr-user', provider: 'oidc', issuer: 'http://127.0.0.1:9/realms/ehr', clientId: 'connector', publicClient: true, signIn: { flow: 'device_code' }, scopes: ['openehr'] }],
    callers: [{ id: 'admins', apiKeySha256: 'b'.repeat(64), signIn: true }],
  });

  for (const [what, args, warned] of [
    ['without AOF warns at start that a Redis restart loses sign-ins', [], true],
    ['with AOF (appendonly yes) does not', ['--appendonly', 'yes'], false],
  ] as const) {
    test(what, async () => {
      const redis = await startTestRedis({ extraArgs: [...args] });
      const tb = await startTestBroker(delegatedConfig(redis.url), dir.path, { grantWatchMs: 100 });
      try {
        await waitUntilReady(tb.url);
        // The watcher's first read that succeeds checks the store's durability once.
        const deadline = Date.now() + 30_000;
        while (!tb.logs.entries().some((e) => /grants are (not durable|kept in)/.test(String(e.msg))) && Date.now() < deadline) await sleep(100);
        const warnings = tb.logs.entries().filter((e) => /grants are not durable/.test(String(e.msg)));
        assert.equal(warnings.length, warned ? 1 : 0, tb.logs.text);
        if (warned) assert.match(String(warnings[0]!.msg), /appendonly yes/);
        else assert.ok(tb.logs.entries().some((e) => /grants are kept in: Redis AOF is on/.test(String(e.msg))), tb.logs.text);
      } finally {
        await tb.close();
        await redis.kill();
      }
    });
  }
});
