// Several broker processes on one Redis, against the strict Entra stand-in: one exchange per
// cluster, refresh-ahead without waiting, Redis and IdP outages without failed requests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { startBrokerProcess, type BrokerProcess } from '../helpers/broker-process.ts';
import { POWERBI_SCOPE as POWERBI, TEST_CLIENT as CLIENT, TEST_TENANT as TENANT, entraCredential } from '../helpers/entra-fixture.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { redisSkipReason, startTestRedis, type TestRedis } from '../helpers/redis-server.ts';

const skip = redisSkipReason();
const KEY = 'cluster-key';
const OTHER = 'https://analysis.usgovcloudapi.net/powerbi/api/.default';

let dir: TempDir;
let cert: CredentialFiles;
let entra: EntraStandIn;
let redis: TestRedis;
let brokers: BrokerProcess[] = [];

const tokenPosts = () => entra.requests.filter((r) => r.path.endsWith('/token'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function config(prefix: string, extraCache: Record<string, unknown> = {}) {
  return {
    server: { certificateReloadSeconds: 60 },
    cache: { redisUrl: redis.url, keyPrefix: `${prefix}:`, ...extraCache },
    credentials: [entraCredential('powerbi', entra.url, cert, { scopes: [POWERBI, OTHER], timeoutMs: 3000, retries: 0 })],
    // These tests are about the cache; rate limits have their own tests.
    callers: [{ id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: [{ credential: 'powerbi' }], rateLimit: { requestsPerSecond: 100_000, burst: 100_000 } }],
  };
}

async function startCluster(prefix: string, extraCache: Record<string, unknown> = {}) {
  brokers = await Promise.all([1, 2, 3].map((n) => startBrokerProcess(config(prefix, extraCache), dir.path, `${prefix}-${n}`)));
}

/** Load loops still running (stopped before the brokers, even when a test failed half-way). */
const activeRuns: (() => Promise<unknown>)[] = [];

async function stopCluster() {
  await Promise.all(activeRuns.splice(0).map((stop) => stop()));
  const codes = await Promise.all(brokers.map((b) => b.stop()));
  brokers = [];
  return codes;
}

async function readyz(b: BrokerProcess) {
  return (await (await fetch(`${b.url}/readyz`)).json()) as { status: string; checks: { cache: { status: string } } };
}

/** Requests from `concurrency` loops spread over the brokers until `stop()` resolves. */
function load(body: Record<string, unknown>, concurrency: number) {
  const results: { status: number; cache?: string; exp?: number; at: number; code?: string }[] = [];
  let running = true;
  const loops = Array.from({ length: concurrency }, async (_, i) => {
    while (running) {
      const b = brokers[i % brokers.length]!;
      try {
        const res = await b.token(KEY, body);
        const json = (await res.json()) as Record<string, any>;
        const exp = res.ok ? (JSON.parse(Buffer.from(json.access_token.split('.')[1], 'base64url').toString()).exp as number) : undefined;
        results.push({ status: res.status, cache: json.cache, exp, at: Date.now(), code: json.code });
      } catch {
        results.push({ status: 0, at: Date.now() });
      }
      await sleep(20);
    }
  });
  const stop = async () => {
    running = false;
    await Promise.all(loops);
    return results;
  };
  activeRuns.push(stop);
  return { results, stop };
}

describe('a cluster of three brokers on one Redis', { skip }, () => {
  before(async () => {
    dir = tempDir();
    cert = await writeCredentialFiles(dir, 'cluster');
    entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, certificates: [cert.cert.certPem] }] });
    redis = await startTestRedis();
  });
  after(async () => {
    await stopCluster();
    await entra.close();
    await redis.kill();
    dir.remove();
  });

  test('300 concurrent cold requests across 3 processes make exactly one IdP exchange', async () => {
    await startCluster('stampede');
    try {
      entra.inject({ latencyMs: 300 });
      const before = tokenPosts().length;
      const responses = await Promise.all(Array.from({ length: 300 }, (_, i) => brokers[i % 3]!.token(KEY, { credential: 'powerbi' })));
      assert.deepEqual([...new Set(responses.map((r) => r.status))], [200]);
      const tokens = new Set(await Promise.all(responses.map(async (r) => ((await r.json()) as { access_token: string }).access_token)));
      assert.equal(tokens.size, 1, 'everyone got the same token');
      assert.equal(tokenPosts().length - before, 1, 'exactly one exchange');
    } finally {
      await stopCluster();
    }
  });

  test('refresh-ahead under steady load: nobody waits, nothing expired, one exchange per refresh cycle', async () => {
    entra.setTokenLifetime(4);
    await startCluster('refresh', { refreshAheadRatio: 0.5 });
    try {
      assert.equal((await brokers[0]!.token(KEY, { credential: 'powerbi', min_ttl_seconds: 1 })).status, 200);
      const before = tokenPosts().length;
      const started = Date.now();
      const run = load({ credential: 'powerbi', min_ttl_seconds: 1 }, 6);
      await sleep(10_000);
      const results = await run.stop();
      const seconds = (Date.now() - started) / 1000;
      const exchanges = tokenPosts().length - before;
      assert.ok(results.length > 300, `steady load (${results.length} requests)`);
      assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
      assert.deepEqual([...new Set(results.map((r) => r.cache))], ['hit'], 'no caller waited on the IdP');
      assert.ok(results.every((r) => r.exp! * 1000 > r.at - 1000), 'no expired token served');
      // A refresh every 2 s (half of 4 s): about seconds/2 exchanges, never one per replica.
      const cycles = seconds / 2;
      assert.ok(exchanges >= Math.floor(cycles) - 1 && exchanges <= Math.ceil(cycles) + 1, `${exchanges} exchanges in ${seconds.toFixed(1)} s`);
    } finally {
      entra.setTokenLifetime(3599);
      await stopCluster();
    }
  });

  test('Redis killed under load: zero failed requests; restarted: ready again and the cache is shared again', async () => {
    await startCluster('outage');
    try {
      assert.equal((await brokers[0]!.token(KEY, { credential: 'powerbi' })).status, 200);
      const run = load({ credential: 'powerbi' }, 6);
      await sleep(500);
      await redis.kill('SIGKILL');
      await sleep(1500);
      const degraded = await readyz(brokers[1]!);
      assert.equal(degraded.status, 'degraded');
      assert.equal(degraded.checks.cache.status, 'degraded');
      await redis.start();
      let states: string[] = [];
      for (let i = 0; i < 100; i++) {
        states = await Promise.all(brokers.map(async (b) => (await readyz(b)).status));
        if (states.every((s) => s === 'ok')) break;
        await sleep(100);
      }
      const results = await run.stop();
      assert.deepEqual(states, ['ok', 'ok', 'ok']);
      assert.ok(results.length > 50);
      assert.deepEqual([...new Set(results.map((r) => r.status))], [200], 'no failed request');
      // Shared again: a new target fetched by one replica is a hit on the others.
      const before = tokenPosts().length;
      assert.equal(((await (await brokers[0]!.token(KEY, { credential: 'powerbi', scope: OTHER })).json()) as { cache: string }).cache, 'miss');
      for (const b of brokers.slice(1)) {
        assert.equal(((await (await b.token(KEY, { credential: 'powerbi', scope: OTHER })).json()) as { cache: string }).cache, 'hit');
      }
      assert.equal(tokenPosts().length - before, 1);
    } finally {
      await stopCluster();
    }
  });

  test('IdP down past a refresh cycle: valid tokens keep coming, then 503 with Retry-After, then recovery without restart', async () => {
    entra.setTokenLifetime(4);
    await startCluster('idp-down');
    try {
      assert.equal((await brokers[0]!.token(KEY, { credential: 'powerbi', min_ttl_seconds: 0 })).status, 200);
      const warmAt = Date.now();
      entra.inject({ status: 503, times: Infinity });
      const run = load({ credential: 'powerbi', min_ttl_seconds: 0 }, 3);
      await sleep(3000); // past the refresh point (2 s), before expiry (4 s)
      const whileValid = [...run.results];
      await sleep(3000); // past expiry
      const results = await run.stop();
      assert.ok(whileValid.length > 20);
      assert.deepEqual([...new Set(whileValid.map((r) => r.status))], [200], 'valid tokens keep being served');
      const late = results.filter((r) => r.at > warmAt + 4500);
      assert.ok(late.length > 5);
      assert.deepEqual([...new Set(late.map((r) => r.code))], ['idp_unavailable'], 'after expiry: 503 idp_unavailable');
      assert.ok(results.every((r) => r.status === 200 ? r.exp! * 1000 > r.at - 1000 : r.status === 503), 'never an expired token');
      const res = await brokers[2]!.token(KEY, { credential: 'powerbi', min_ttl_seconds: 0 });
      assert.equal(res.status, 503);
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      entra.clearFaults();
      let recovered = false;
      for (let i = 0; i < 200 && !recovered; i++) {
        const statuses = await Promise.all(brokers.map(async (b) => (await b.token(KEY, { credential: 'powerbi', min_ttl_seconds: 0 })).status));
        recovered = statuses.every((s) => s === 200);
        if (!recovered) await sleep(250);
      }
      assert.ok(recovered, 'every replica recovers without a restart');
    } finally {
      entra.clearFaults();
      entra.setTokenLifetime(3599);
      await stopCluster();
    }
  });

  test('a 429 with Retry-After: 5 stops exchanges from every replica for 5 s', async () => {
    await startCluster('throttle');
    try {
      entra.inject({ status: 429, retryAfterSeconds: 5 });
      const first = await brokers[0]!.token(KEY, { credential: 'powerbi' });
      const throttledAt = Date.now();
      assert.equal(first.status, 503);
      assert.equal(first.headers.get('retry-after'), '5');
      const before = tokenPosts().length;
      while (Date.now() - throttledAt < 4000) {
        for (const b of brokers) {
          const res = await b.token(KEY, { credential: 'powerbi', scope: OTHER });
          assert.equal(res.status, 503);
        }
        await sleep(200);
      }
      assert.equal(tokenPosts().length, before, 'no exchange from any replica during Retry-After');
      await sleep(Math.max(0, 5200 - (Date.now() - throttledAt)));
      assert.equal((await brokers[1]!.token(KEY, { credential: 'powerbi' })).status, 200);
    } finally {
      await stopCluster();
    }
  });
});
