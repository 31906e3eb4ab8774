// Three `token-broker serve` processes on one Redis of the test's own (a standalone server by
// default, or a Redis Cluster or Sentinel setup), against the strict Entra stand-in: the setup the
// cluster tests share. Each test file starts its own Entra and Redis, so the files can run in
// parallel and a slow machine only makes them slower, never wrong.
import assert from 'node:assert/strict';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { startBrokerProcess, type BrokerProcess } from './broker-process.ts';
import { POWERBI_SCOPE, TEST_CLIENT, TEST_TENANT, entraCredential } from './entra-fixture.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from './credential-files.ts';
import { startTestRedis, type TestRedis } from './redis-server.ts';

export const CLUSTER_KEY = 'cluster-key';
export const OTHER_SCOPE = 'https://analysis.usgovcloudapi.net/powerbi/api/.default';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LoadResult {
  status: number;
  cache?: string;
  /** The served token's `exp` (epoch seconds). */
  exp?: number;
  /** When the request was sent and when its answer was read (epoch ms). */
  sentAt: number;
  at: number;
  code?: string;
}

/** A Redis of the test's own and the cache section that points the brokers at it. */
export interface SharedRedis {
  cache: Record<string, unknown>;
  close(): Promise<void>;
}
export type StandaloneRedis = TestRedis & SharedRedis;

async function standaloneRedis(): Promise<StandaloneRedis> {
  const redis = await startTestRedis();
  return Object.assign(redis, { cache: { redisUrl: redis.url }, close: () => redis.kill() });
}

export interface BrokerCluster<R extends SharedRedis = StandaloneRedis> {
  entra: EntraStandIn;
  redis: R;
  brokers: BrokerProcess[];
  tokenPosts(): number;
  start(prefix: string, extraCache?: Record<string, unknown>): Promise<BrokerProcess[]>;
  /** Stops the load loops still running, then the brokers (also when a test failed half-way). */
  stop(): Promise<(number | null)[]>;
  readyz(b: BrokerProcess): Promise<{ status: string; checks: { cache: { status: string } } }>;
  /** Requests from `concurrency` loops spread over the brokers until `stop()` resolves. */
  load(body: Record<string, unknown>, concurrency: number): { results: LoadResult[]; stop: () => Promise<LoadResult[]> };
  /** Polls `check` every 100 ms until it holds; fails after `capMs` (a cap that only stops a hung test). */
  waitFor(what: string, check: () => Promise<boolean>, capMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * 300 concurrent cold requests for one target spread over the running brokers, the IdP answering
 * after 300 ms: every answer 200, one token for all, exactly one exchange. The stampede tests of
 * every Redis topology assert this.
 */
export async function assertOneExchangeForColdStampede(c: BrokerCluster<SharedRedis>, requests = 300): Promise<void> {
  c.entra.inject({ latencyMs: 300 });
  try {
    const before = c.tokenPosts();
    const responses = await Promise.all(Array.from({ length: requests }, (_, i) => c.brokers[i % c.brokers.length]!.token(CLUSTER_KEY, { credential: 'powerbi' })));
    assert.deepEqual([...new Set(responses.map((r) => r.status))], [200]);
    const tokens = new Set(await Promise.all(responses.map(async (r) => ((await r.json()) as { access_token: string }).access_token)));
    assert.equal(tokens.size, 1, 'everyone got the same token');
    assert.equal(c.tokenPosts() - before, 1, 'exactly one exchange');
  } finally {
    c.entra.clearFaults();
  }
}

export function tokenExp(accessToken: string): number {
  return JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()).exp as number;
}

export async function startBrokerCluster(name: string): Promise<BrokerCluster>;
export async function startBrokerCluster<R extends SharedRedis>(name: string, startRedis: () => Promise<R>, options?: { scopes?: string[] }): Promise<BrokerCluster<R>>;
export async function startBrokerCluster(name: string, startRedis: () => Promise<SharedRedis> = standaloneRedis, options: { scopes?: string[] } = {}): Promise<BrokerCluster<SharedRedis>> {
  const dir: TempDir = tempDir();
  const cert: CredentialFiles = await writeCredentialFiles(dir, name);
  const entra = await startEntraStandIn({ apps: [{ tenantId: TEST_TENANT, clientId: TEST_CLIENT, certificates: [cert.cert.certPem] }] });
  const redis = await startRedis();
  const activeRuns: (() => Promise<unknown>)[] = [];

  const config = (prefix: string, extraCache: Record<string, unknown>) => ({
    server: { certificateReloadSeconds: 60 },
    cache: { ...redis.cache, keyPrefix: `${prefix}:`, ...extraCache },
    credentials: [entraCredential('powerbi', entra.url, cert, { scopes: [POWERBI_SCOPE, OTHER_SCOPE, ...(options.scopes ?? [])], timeoutMs: 3000, retries: 0 })],
    // These tests are about the cache; rate limits have their own tests.
    callers: [{ id: 'jobs', apiKeySha256: sha256Hex(CLUSTER_KEY), allow: [{ credential: 'powerbi' }], rateLimit: { requestsPerSecond: 100_000, burst: 100_000 } }],
  });

  const cluster: BrokerCluster<SharedRedis> = {
    entra,
    redis,
    brokers: [],
    tokenPosts: () => entra.requests.filter((r) => r.path.endsWith('/token')).length,
    async start(prefix, extraCache = {}) {
      const started = await Promise.allSettled([1, 2, 3].map((n) => startBrokerProcess(config(prefix, extraCache), dir.path, `${prefix}-${n}`)));
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) {
        // The ones that did start must not outlive the test (their processes would keep the file running).
        await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value.stop('SIGKILL') : undefined)));
        throw failed.reason;
      }
      cluster.brokers = started.map((r) => (r as PromiseFulfilledResult<BrokerProcess>).value);
      return cluster.brokers;
    },
    async stop() {
      await Promise.all(activeRuns.splice(0).map((stop) => stop()));
      const codes = await Promise.all(cluster.brokers.map((b) => b.stop()));
      cluster.brokers = [];
      return codes;
    },
    async readyz(b) {
      return (await (await fetch(`${b.url}/readyz`)).json()) as { status: string; checks: { cache: { status: string } } };
    },
    load(body, concurrency) {
      const results: LoadResult[] = [];
      let running = true;
      const loops = Array.from({ length: concurrency }, async (_, i) => {
        while (running) {
          const b = cluster.brokers[i % cluster.brokers.length]!;
          const sentAt = Date.now();
          try {
            const res = await b.token(CLUSTER_KEY, body);
            const json = (await res.json()) as Record<string, any>;
            results.push({ status: res.status, cache: json.cache, exp: res.ok ? tokenExp(json.access_token) : undefined, sentAt, at: Date.now(), code: json.code });
          } catch {
            results.push({ status: 0, sentAt, at: Date.now() });
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
    },
    async waitFor(what, check, capMs = 60_000) {
      const deadline = Date.now() + capMs;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`gave up waiting after ${capMs} ms: ${what}`);
        await sleep(100);
      }
    },
    async close() {
      await cluster.stop();
      await entra.close();
      await redis.close();
      dir.remove();
    },
  };
  return cluster;
}
