// The Redis store on a standalone redis-server: the shared contract, the key layout, encryption at
// rest with key rotation, AUTH, TLS, and failing fast while Redis is away.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { CacheCipher } from '../../src/cache/cache-cipher.ts';
import { createRedisStore, type RedisStoreOptions } from '../../src/cache/redis/redis-store.ts';
import { systemClock } from '../../src/kernel/clock.ts';
import { CacheUnavailable } from '../../src/kernel/errors.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { runTokenCacheContract } from '../contract/token-cache-contract.ts';
import { tempDir, type TempDir } from '../helpers/credential-files.ts';
import { freePort, redisSkipReason, startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { LogCapture } from '../helpers/test-broker.ts';

const skip = redisSkipReason();
const logger = createLogger({ level: 'silent' });

function redisCache(url: string, extra: Partial<RedisStoreOptions> & { tlsCa?: Buffer } = {}) {
  const { tlsCa, ...rest } = extra;
  const store = createRedisStore({ settings: { topology: 'standalone', url, tlsCa }, keyPrefix: 'contract:', clock: systemClock, logger, ...rest });
  // The token operations, the store's health and lifecycle, as one handle for these tests.
  return Object.assign(Object.create(store.tokens) as typeof store.tokens, {
    ready: store.ready,
    close: store.close,
    status: () => store.health.status(),
    onRecovered: (listener: () => void) => store.health.onRecovered(listener),
  });
}

let redis: TestRedis;
let dir: TempDir;
before(async () => {
  if (skip) return;
  redis = await startTestRedis();
  dir = tempDir();
});
after(async () => {
  await redis?.kill();
  dir?.remove();
});

runTokenCacheContract(
  'redis',
  async () => {
    const store = createRedisStore({ settings: { topology: 'standalone', url: redis.url }, keyPrefix: 'contract:', clock: systemClock, logger });
    await store.ready();
    return {
      store,
      peer: async () => {
        const peer = createRedisStore({ settings: { topology: 'standalone', url: redis.url }, keyPrefix: 'contract:', clock: systemClock, logger });
        await peer.ready();
        return peer;
      },
    };
  },
  { skip },
);

describe('redis cache specifics', { skip }, () => {
  const token = (accessToken: string) => ({ accessToken, tokenType: 'Bearer', expiresAt: Date.now() + 60_000, refreshAt: Date.now() + 30_000, obtainedAt: Date.now() });

  test('with encryption the raw value holds no token plaintext; rotating the key keeps old values readable', async () => {
    const oldKey = randomBytes(32).toString('base64');
    const newKey = randomBytes(32).toString('hex');
    const before = redisCache(redis.url, { keyPrefix: 'enc:', cipher: CacheCipher.fromKeyFile(dir.write('k1', `${oldKey}\n`)) });
    await before.ready();
    const secret = `eyJsecret.${randomBytes(24).toString('base64url')}.sig`;
    await before.set('cdr|fp|api.read', token(secret));
    const raw = redis.cli('GET', 'enc:{cdr|fp|api.read}:token');
    assert.match(raw, /^e1\./);
    assert.ok(!raw.includes(secret) && !raw.includes('eyJsecret') && !raw.includes('accessToken'));
    // Rotation: the new key first (encrypts), the old one still listed (decrypts).
    const rotated = redisCache(redis.url, { keyPrefix: 'enc:', cipher: CacheCipher.fromKeyFile(dir.write('k2', `# rotated\n${newKey}\n${oldKey}\n`)) });
    await rotated.ready();
    assert.equal((await rotated.get('cdr|fp|api.read'))!.accessToken, secret);
    await rotated.set('cdr|fp|api.write', token('new-value'));
    assert.notEqual(redis.cli('GET', 'enc:{cdr|fp|api.write}:token').split('.')[1], raw.split('.')[1], 'written with the new key id');
    // Without the key, or with only an unrelated key, the value is unreadable (a miss, not garbage).
    const stranger = redisCache(redis.url, { keyPrefix: 'enc:', cipher: CacheCipher.fromKeyFile(dir.write('k3', randomBytes(32).toString('base64'))) });
    await stranger.ready();
    assert.equal(await stranger.get('cdr|fp|api.read'), undefined);
    // A value moved to another key fails authentication (the key is bound as associated data).
    redis.cli('SET', 'enc:{cdr|fp|moved}:token', raw);
    assert.equal(await rotated.get('cdr|fp|moved'), undefined);
    // With encryption on, a plaintext value is not trusted.
    redis.cli('SET', 'enc:{cdr|fp|plain}:token', JSON.stringify(token('planted')));
    assert.equal(await rotated.get('cdr|fp|plain'), undefined);
    // Failure records are sealed too: a planted one is ignored, a real one round-trips.
    await rotated.recordFailure('cdr|fp|api.read', { kind: 'unavailable', message: 'down', retryAfterSeconds: 2 }, 5000);
    assert.match(redis.cli('GET', 'enc:{cdr|fp|api.read}:failure'), /^e1\./);
    assert.equal((await rotated.getFailure('cdr|fp|api.read'))!.message, 'down');
    redis.cli('SET', 'enc:{cdr|fp|planted}:failure', JSON.stringify({ kind: 'rejected', message: 'call 555-FAKE' }));
    assert.equal(await rotated.getFailure('cdr|fp|planted'), undefined);
    await Promise.all([before.close(), rotated.close(), stranger.close()]);
  });

  test('bad key files are refused with the line named', () => {
    assert.throws(() => CacheCipher.fromKeyFile(dir.write('short', 'c2hvcnQ=\n')), /line 1: each key must be 32 random bytes/);
    assert.throws(() => CacheCipher.fromKeyFile(dir.write('empty', '# nothing\n')), /holds no key/);
  });

  test('Redis AUTH: the password in the URL is used', async () => {
    const secured = await startTestRedis({ password: 'p@ss word' });
    try {
      const cache = redisCache(secured.url);
      await cache.ready();
      await cache.set('k', token('a'));
      assert.equal((await cache.get('k'))!.accessToken, 'a');
      await cache.close();
      const wrong = redisCache(secured.url.replace(encodeURIComponent('p@ss word'), 'nope'));
      await assert.rejects(wrong.ready(1000), CacheUnavailable);
      await wrong.close();
    } finally {
      await secured.kill();
    }
  });

  test('rediss:// with a private CA (cache.tlsCaFile)', async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir.path}/tls.key`, '-out', `${dir.path}/tls.crt`, '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { stdio: 'ignore' });
    const port = await freePort();
    const server = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--tls-cert-file', `${dir.path}/tls.crt`, '--tls-key-file', `${dir.path}/tls.key`, '--tls-auth-clients', 'no'], { stdio: 'ignore' });
    try {
      const cache = redisCache(`rediss://127.0.0.1:${port}/0`, { tlsCa: readFileSync(`${dir.path}/tls.crt`) });
      await cache.ready(5000);
      await cache.set('k', token('over-tls'));
      assert.equal((await cache.get('k'))!.accessToken, 'over-tls');
      await cache.close();
    } finally {
      server.kill('SIGKILL');
    }
  });

  test('while Redis is away commands fail fast, status is degraded, and it recovers by itself', async () => {
    const own = await startTestRedis();
    const logs = new LogCapture();
    const cache = redisCache(own.url, { logger: createLogger({ destination: logs }) });
    let recovered = 0;
    cache.onRecovered(() => recovered++);
    await cache.ready();
    await own.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await assert.rejects(cache.get('k'), CacheUnavailable);
    // Redis is started again only below: a get that waited for it would never settle here, so this
    // generous bound tells "failed fast" from "queued until Redis returns" on any machine.
    assert.ok(Date.now() - t0 < 10_000, 'no waiting on a dead Redis');
    assert.equal(cache.status().state, 'degraded');
    await own.start();
    await cache.ready(10_000);
    assert.equal(cache.status().state, 'ok');
    assert.equal(recovered, 1);
    assert.match(logs.text, /redis unreachable: serving from memory/);
    assert.doesNotMatch(logs.text, /redis:\/\/:[^@]+@/, 'no password in logs');
    await cache.close();
    await own.kill();
  });
});
