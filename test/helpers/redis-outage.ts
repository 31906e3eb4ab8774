// What the Redis fault tests share: one credential at a sandbox IdP, a caller with the default rate
// limit, a steady trickle of requests, and what an operator sees (/readyz, the metric, the log).
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from './credential-files.ts';
import type { TestBroker } from './test-broker.ts';

export const CALLER_KEY = 'outage-caller-key';
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface OutageFixture {
  dir: TempDir;
  idp: SandboxIdp;
  /** A broker config on this Redis URL (or cache section): credential `cdr` (scopes api.read, api.write), caller with default limits. */
  config(redis: string | Record<string, unknown>): unknown;
  close(): Promise<void>;
}

export async function startOutageFixture(): Promise<OutageFixture> {
  const dir = tempDir();
  const files = await writeCredentialFiles(dir, 'cdr');
  const idp = await startSandboxIdp({ clients: [{ clientId: 'cdr', certificatePem: files.cert.certPem }] });
  const credentials = [
    { id: 'cdr', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr', certificate: { certFile: files.certFile, keyFile: files.keyFile }, scopes: ['api.read', 'api.write'] },
  ];
  // No rateLimit: the defaults (100/s, burst 200) are what the outage used to break.
  const callers = [{ id: 'app', apiKeySha256: sha256Hex(CALLER_KEY), allow: [{ credential: 'cdr' }] }];
  return {
    dir,
    idp,
    config: (redis) => ({ cache: typeof redis === 'string' ? { redisUrl: redis } : redis, credentials, callers }),
    close: async () => {
      await idp.close();
      dir.remove();
    },
  };
}

/** Polls until the condition holds; the cap only stops a hung test. */
export async function waitFor(what: string, condition: () => Promise<boolean> | boolean, capMs = 30_000): Promise<void> {
  const deadline = Date.now() + capMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for: ${what}`);
}

export interface Readiness {
  httpStatus: number;
  status: string;
  cache: { kind: string; status: string; detail?: string };
}

export async function readiness(tb: TestBroker): Promise<Readiness> {
  const res = await fetch(`${tb.url}/readyz`);
  const body = (await res.json()) as { status: string; checks: { cache: Readiness['cache'] } };
  return { httpStatus: res.status, status: body.status, cache: body.checks.cache };
}

/** The value of token_broker_redis_up on /metrics (undefined when absent). */
export async function redisUp(tb: TestBroker): Promise<number | undefined> {
  const text = await (await fetch(`${tb.url}/metrics`)).text();
  const match = /^token_broker_redis_up (\d+)$/m.exec(text);
  return match ? Number(match[1]) : undefined;
}

export const isDegraded = async (tb: TestBroker) => {
  const [r, up] = await Promise.all([readiness(tb), redisUp(tb)]);
  return r.httpStatus === 200 && r.status === 'degraded' && r.cache.status !== 'ok' && up === 0;
};
export const isHealthy = async (tb: TestBroker) => {
  const [r, up] = await Promise.all([readiness(tb), redisUp(tb)]);
  return r.status === 'ok' && r.cache.status === 'ok' && up === 1;
};

/**
 * `count` token requests one after another with a 25 ms pause (at most 40/s, well inside the default
 * 100/s): more than the default burst of 200, which is where the old limiter started refusing.
 * Returns how many got each status ('error' when the request itself failed). Always stops.
 */
export async function steadyRequests(tb: TestBroker, count: number, body: unknown = { credential: 'cdr' }): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    let key: string;
    try {
      const res = await tb.token(CALLER_KEY, body);
      await res.arrayBuffer();
      key = String(res.status);
    } catch {
      key = 'error';
    }
    statuses[key] = (statuses[key] ?? 0) + 1;
    await sleep(25);
  }
  return statuses;
}

/** The Redis component's log lines at one level, from the captured log. */
export function redisLog(tb: TestBroker, level: 'warn' | 'info'): Record<string, unknown>[] {
  return tb.logs.entries().filter((e) => e.component === 'redis' && e.level === level);
}
