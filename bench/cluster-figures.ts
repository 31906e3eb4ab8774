// The cluster figures of docs/design.md §7, measured on this machine with real processes, on a
// standalone Redis and on a Redis Cluster (3 masters + 3 replicas):
//   - stampede: 300 concurrent cold requests for one target across 3 broker processes sharing one
//     Redis, the IdP answering after 300 ms: how many exchanges reach the IdP (target: exactly 1);
//   - soak: steady load across 3 replicas over several lifetimes of a short-lived token: callers
//     that waited on the IdP after warm-up, tokens served past expiry, exchanges per lifetime.
// The IdP is the strict Entra stand-in of the tests; Redis is redis-server processes of our own.
import jwt from 'jsonwebtoken';
import { startEntraStandIn, type EntraStandIn } from '../test/fakes/entra-stand-in.ts';
import { startBrokerProcess, type BrokerProcess } from '../test/helpers/broker-process.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../test/helpers/credential-files.ts';
import { startTestRedisCluster } from '../test/helpers/redis-cluster.ts';
import { startTestRedis } from '../test/helpers/redis-server.ts';

export type RedisTopologyUnderBench = 'standalone' | 'cluster';

interface BenchRedis {
  cache: Record<string, unknown>;
  close(): Promise<void>;
}

async function startRedis(topology: RedisTopologyUnderBench): Promise<BenchRedis> {
  if (topology === 'cluster') {
    const cluster = await startTestRedisCluster();
    return { cache: { redisCluster: { nodes: cluster.seeds.slice(0, 3) } }, close: () => cluster.close() };
  }
  const redis = await startTestRedis();
  return { cache: { redisUrl: redis.url }, close: () => redis.kill() };
}

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '3f1e2d4c-5b6a-4789-9abc-def012345678';
const KEY = 'bench-cluster-key';
const POWERBI = 'https://analysis.windows.net/powerbi/api/.default';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface StampedeFigures {
  topology: RedisTopologyUnderBench;
  replicas: number;
  requests: number;
  idpLatencyMs: number;
  exchanges: number;
  non200: number;
  distinctTokens: number;
  p50Ms: number;
  p99Ms: number;
}

export interface SoakFigures {
  topology: RedisTopologyUnderBench;
  replicas: number;
  tokenLifetimeSeconds: number;
  refreshAheadRatio: number;
  durationSeconds: number;
  requests: number;
  requestsPerSecond: number;
  /** Requests after warm-up whose answer was not a cache hit (they waited on an exchange). */
  waitedOnIdp: number;
  /** Tokens whose exp was already past when the answer arrived. */
  servedPastExpiry: number;
  non200: number;
  exchanges: number;
  exchangesPerLifetime: number;
  p99Ms: number;
}

interface Cluster {
  dir: TempDir;
  entra: EntraStandIn;
  redis: BenchRedis;
  cert: CredentialFiles;
  brokers: BrokerProcess[];
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function startCluster(prefix: string, topology: RedisTopologyUnderBench, cache: Record<string, unknown> = {}): Promise<Cluster> {
  const dir = tempDir('token-broker-bench-cluster-');
  const cert = await writeCredentialFiles(dir, 'bench');
  const entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, certificates: [cert.cert.certPem] }] });
  const redis = await startRedis(topology);
  const config = {
    server: { logLevel: 'warn' },
    cache: { ...redis.cache, keyPrefix: `${prefix}:`, ...cache },
    credentials: [
      { id: 'powerbi', provider: 'entra', tenantId: TENANT, clientId: CLIENT, authorityHost: entra.url, certificate: { certFile: cert.certFile, keyFile: cert.keyFile }, scopes: [POWERBI] },
    ],
    callers: [{ id: 'bench', apiKeySha256: sha256Hex(KEY), allow: [{ credential: 'powerbi' }], rateLimit: { requestsPerSecond: 100_000, burst: 1_000_000 } }],
  };
  const brokers = await Promise.all([1, 2, 3].map((n) => startBrokerProcess(config, dir.path, `${prefix}-${n}`, { LOG_LEVEL: 'warn' })));
  // Measured once every replica has its Redis connection (readyz ok), as a deployment would be.
  const deadline = Date.now() + 120_000;
  for (const b of brokers) {
    while (((await (await fetch(`${b.url}/readyz`)).json()) as { status: string }).status !== 'ok') {
      if (Date.now() > deadline) throw new Error(`${b.url} never ready on ${topology} Redis`);
      await sleep(100);
    }
  }
  return { dir, entra, redis, cert, brokers };
}

async function stopCluster(c: Cluster): Promise<void> {
  await Promise.all(c.brokers.map((b) => b.stop()));
  await c.entra.close();
  await c.redis.close();
  c.dir.remove();
}

const tokenPosts = (entra: EntraStandIn) => entra.requests.filter((r) => r.path.endsWith('/token')).length;

export async function measureStampede(topology: RedisTopologyUnderBench, requests = 300, idpLatencyMs = 300): Promise<StampedeFigures> {
  const c = await startCluster('stampede', topology);
  try {
    c.entra.inject({ latencyMs: idpLatencyMs, times: Infinity });
    const before = tokenPosts(c.entra);
    const results = await Promise.all(
      Array.from({ length: requests }, async (_, i) => {
        const started = performance.now();
        const res = await c.brokers[i % c.brokers.length]!.token(KEY, { credential: 'powerbi' });
        const body = (await res.json()) as { access_token?: string };
        return { status: res.status, token: body.access_token, ms: performance.now() - started };
      }),
    );
    return {
      topology,
      replicas: c.brokers.length,
      requests,
      idpLatencyMs,
      exchanges: tokenPosts(c.entra) - before,
      non200: results.filter((r) => r.status !== 200).length,
      distinctTokens: new Set(results.map((r) => r.token)).size,
      p50Ms: Math.round(percentile(results.map((r) => r.ms), 50)),
      p99Ms: Math.round(percentile(results.map((r) => r.ms), 99)),
    };
  } finally {
    await stopCluster(c);
  }
}

export async function measureSoak(topology: RedisTopologyUnderBench, options: { lifetimeSeconds?: number; lifetimes?: number; concurrency?: number; refreshAheadRatio?: number } = {}): Promise<SoakFigures> {
  const lifetime = options.lifetimeSeconds ?? 8;
  const lifetimes = options.lifetimes ?? 3;
  const ratio = options.refreshAheadRatio ?? 0.5;
  const c = await startCluster('soak', topology, { refreshAheadRatio: ratio });
  try {
    c.entra.setTokenLifetime(lifetime);
    // Warm-up: one request per replica.
    for (const b of c.brokers) await b.token(KEY, { credential: 'powerbi', min_ttl_seconds: 1 });
    const before = tokenPosts(c.entra);
    const started = Date.now();
    const deadline = started + lifetime * lifetimes * 1000;
    const samples: { status: number; cache?: string; expired: boolean; ms: number }[] = [];
    await Promise.all(
      Array.from({ length: options.concurrency ?? 6 }, async (_, i) => {
        while (Date.now() < deadline) {
          const t0 = performance.now();
          const res = await c.brokers[i % c.brokers.length]!.token(KEY, { credential: 'powerbi', min_ttl_seconds: 1 });
          const body = (await res.json()) as { access_token?: string; cache?: string };
          const exp = body.access_token ? (jwt.decode(body.access_token) as jwt.JwtPayload).exp! : 0;
          samples.push({ status: res.status, cache: body.cache, expired: exp * 1000 <= Date.now(), ms: performance.now() - t0 });
          await sleep(10);
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const exchanges = tokenPosts(c.entra) - before;
    return {
      topology,
      replicas: c.brokers.length,
      tokenLifetimeSeconds: lifetime,
      refreshAheadRatio: ratio,
      durationSeconds: Math.round(seconds * 10) / 10,
      requests: samples.length,
      requestsPerSecond: Math.round(samples.length / seconds),
      waitedOnIdp: samples.filter((s) => s.cache !== 'hit').length,
      servedPastExpiry: samples.filter((s) => s.status === 200 && s.expired).length,
      non200: samples.filter((s) => s.status !== 200).length,
      exchanges,
      exchangesPerLifetime: Math.round((exchanges / (seconds / lifetime)) * 100) / 100,
      p99Ms: Math.round(percentile(samples.map((s) => s.ms), 99) * 10) / 10,
    };
  } finally {
    await stopCluster(c);
  }
}

// Run on its own: node --import tsx bench/cluster-figures.ts
if (import.meta.url === `file://${process.argv[1]}`) {
  for (const topology of ['standalone', 'cluster'] as const) {
    console.log(JSON.stringify(await measureStampede(topology), null, 2));
    console.log(JSON.stringify(await measureSoak(topology), null, 2));
  }
}
