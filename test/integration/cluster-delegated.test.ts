// Delegated credentials on three `token-broker serve` processes sharing one Redis (standalone, and
// Sentinel-managed): a person signs in once in a real Chromium against a real OpenID Provider
// (oidc-provider: PKCE required, refresh tokens rotating on every use, a replayed one revoking the
// whole grant), and every replica then serves that person's access tokens, redeeming the rotating
// refresh token through the claim + compare-and-swap in Redis. Any double redemption shows at the
// IdP as reuse (and ends the grant), so "zero reuse, zero invalid_grant, every request 200" is the
// property under test, through steady load, restarts of every replica, a Redis failover, and a
// grant revoked at the IdP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Browser } from 'playwright-core';
import { startBrokerProcess, type BrokerProcess } from '../helpers/broker-process.ts';
import { launchBrowser, signInInBrowser } from '../helpers/browser-sign-in.ts';
import { sha256Hex, tempDir, type TempDir } from '../helpers/credential-files.ts';
import { startDelegatedIdp, type DelegatedIdp } from '../helpers/delegated-idp.ts';
import { startTestRedisSentinel, type TestRedisSentinel } from '../helpers/redis-sentinel.ts';
import { freePort, redisSkipReason, startTestRedis, type TestRedis } from '../helpers/redis-server.ts';

const skip = redisSkipReason();

const ADMIN_KEY = 'delegated-cluster-admin-key';
const KEY = 'delegated-cluster-gateway-key';
const CREDENTIAL = 'cdr-user';
/** Steady load lasts this many access-token lifetimes. */
const LOAD_LIFETIMES = 8;
/** A cap that only stops a hung test, never an expectation. */
const CAP_MS = 120_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => Promise<boolean>, capMs = CAP_MS): Promise<void> {
  const deadline = Date.now() + capMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting after ${capMs} ms: ${what}`);
    await sleep(200);
  }
}

/** One POST /v1/token as the load sees it. */
interface TokenAnswer {
  broker: number;
  status: number;
  code?: string;
  detail?: string;
  accessToken?: string;
  at: number;
}

interface SignInStatus {
  state: 'signed_in' | 'sign_in_required' | 'pending';
  subject?: string;
  last_refresh_at?: string;
  refreshes?: number;
  rotations?: number;
  reason?: string;
}

/** The Redis the brokers share, as the tests need it. */
interface SharedRedis {
  cache: Record<string, unknown>;
  /** The port of the data node that is master now (where the dump is read). */
  masterPort(): number;
  close(): Promise<void>;
}

/** Every key under the prefix with what GET / HGETALL (or the type's read) returns. */
async function dumpKeys(port: number, prefix: string): Promise<{ key: string; type: string; values: string[] }[]> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    const dump = [];
    for (const key of keys) {
      const type = await client.type(key);
      let values: string[] = [];
      if (type === 'string') values = [(await client.get(key)) ?? ''];
      else if (type === 'hash') values = Object.entries(await client.hgetall(key)).flat();
      else if (type === 'list') values = await client.lrange(key, 0, -1);
      else if (type === 'set') values = await client.smembers(key);
      else if (type === 'zset') values = await client.zrange(key, '0', '-1');
      dump.push({ key, type, values });
    }
    return dump;
  } finally {
    client.disconnect();
  }
}

/** base64url runs of 43 characters or more: what a 32-byte opaque token (oidc-provider's) looks like. */
const LONG_BASE64URL_RUN = /[A-Za-z0-9_-]{43,}/;

interface DelegatedCluster {
  idp: DelegatedIdp;
  redis: SharedRedis;
  browser: Browser;
  brokers: BrokerProcess[];
  keyPrefix: string;
  /** Every access token a response carried. */
  seenTokens: Set<string>;
  /** The log lines of every broker process started so far (restarted ones included). */
  allLogLines(): string[];
  startBrokers(): Promise<void>;
  stopBrokers(): Promise<void>;
  /** POST /v1/credentials/cdr-user/sign-in on broker `via`, then the person signs in in Chromium. */
  signIn(via: number): Promise<void>;
  status(i: number): Promise<SignInStatus>;
  token(i: number): Promise<TokenAnswer>;
  /** `perBroker` concurrent POST /v1/token on each broker, then ~100 ms pause, until stop(). */
  load(perBroker?: number): { stop(): Promise<TokenAnswer[]> };
  /** The IdP's RFC 7662 introspection of the token, as the public client (oidc-provider lets it introspect its own tokens). */
  introspect(accessToken: string): Promise<{ status: number; body: string }>;
  metrics(i: number): Promise<string>;
  readyz(i: number): Promise<{ status: string; checks: { cache: { status: string } } }>;
  close(): Promise<void>;
}

async function startDelegatedCluster(name: string, startRedis: () => Promise<SharedRedis>, accessTokenTtlSeconds: number): Promise<DelegatedCluster> {
  const dir: TempDir = tempDir(`token-broker-${name}-`);
  const ports = [await freePort(), await freePort(), await freePort()];
  const redirectUri = `http://127.0.0.1:${ports[0]}/v1/sign-in/callback`;
  const idp = await startDelegatedIdp({ redirectUris: [redirectUri], accessTokenTtlSeconds });
  const redis = await startRedis();
  const browser = await launchBrowser();
  const keyPrefix = `tb-deleg-${randomBytes(6).toString('hex')}:`;
  const encryptionKeyFile = dir.write('cache.key', `${randomBytes(32).toString('base64')}\n`);
  const config = {
    cache: { ...redis.cache, keyPrefix, encryptionKeyFile },
    credentials: [
      {
        id: CREDENTIAL,
        provider: 'oidc',
        issuer: idp.issuer,
        clientId: idp.publicClientId,
        publicClient: true,
        signIn: { flow: 'authorization_code', redirectUri, scopes: ['openid', 'offline_access', 'openehr'] },
        scopes: ['openehr'],
      },
    ],
    callers: [
      { id: 'admins', apiKeySha256: sha256Hex(ADMIN_KEY), signIn: true },
      { id: 'gateway', apiKeySha256: sha256Hex(KEY), allow: [{ credential: CREDENTIAL }] },
    ],
  };
  const everStarted: BrokerProcess[] = [];
  const seenTokens = new Set<string>();
  const admin = { authorization: `Bearer ${ADMIN_KEY}` };

  const cluster: DelegatedCluster = {
    idp,
    redis,
    browser,
    brokers: [],
    keyPrefix,
    seenTokens,
    allLogLines: () => everStarted.flatMap((b) => b.lines),
    async startBrokers() {
      const started = await Promise.allSettled(ports.map((port, i) => startBrokerProcess(config, dir.path, `${name}-${i + 1}`, { PORT: String(port) })));
      for (const r of started) if (r.status === 'fulfilled') everStarted.push(r.value);
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) {
        await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value.stop('SIGKILL') : undefined)));
        throw failed.reason;
      }
      cluster.brokers = started.map((r) => (r as PromiseFulfilledResult<BrokerProcess>).value);
      // Up is not ready: the grant store answers once the broker has reached Redis (via the sentinels).
      for (let i = 0; i < cluster.brokers.length; i++) {
        await waitFor(`broker ${i + 1} ready (its Redis connected)`, async () => (await cluster.readyz(i)).checks.cache.status === 'ok');
      }
    },
    async stopBrokers() {
      await Promise.all(cluster.brokers.map((b) => b.stop()));
      cluster.brokers = [];
    },
    async signIn(via) {
      const res = await fetch(`${cluster.brokers[via]!.url}/v1/credentials/${CREDENTIAL}/sign-in`, { method: 'POST', headers: admin });
      const started = (await res.json()) as { flow: string; sign_in_url: string; expires_at: string };
      assert.equal(res.status, 200, JSON.stringify(started));
      assert.equal(started.flow, 'authorization_code');
      // The link is on the redirect URI's origin (broker 1), not on the broker that started the sign-in.
      assert.ok(started.sign_in_url.startsWith(`${cluster.brokers[0]!.url}/`), started.sign_in_url);
      assert.equal((await cluster.status(via === 2 ? 1 : 2)).state, 'pending', 'the pending sign-in is seen by another replica');
      const page = await signInInBrowser(browser, started.sign_in_url, 'alice', idp.issuer);
      assert.ok(page.url.startsWith(redirectUri), `the callback landed on broker 1: ${page.url}`);
      assert.equal(page.status, 200, page.text);
      assert.match(page.text, /Signed in as alice/);
    },
    async status(i) {
      const res = await fetch(`${cluster.brokers[i]!.url}/v1/credentials/${CREDENTIAL}/sign-in`, { headers: admin });
      const body = (await res.json()) as SignInStatus;
      assert.equal(res.status, 200, `GET sign-in status on broker ${i + 1}: ${JSON.stringify(body)}`);
      return body;
    },
    async token(i) {
      const at = Date.now();
      try {
        const res = await cluster.brokers[i]!.token(KEY, { credential: CREDENTIAL });
        const json = (await res.json()) as Record<string, any>;
        if (typeof json.access_token === 'string') seenTokens.add(json.access_token);
        return { broker: i, status: res.status, code: json.code, detail: json.detail, accessToken: json.access_token, at };
      } catch (err) {
        return { broker: i, status: 0, detail: (err as Error).message, at };
      }
    },
    load(perBroker = 2) {
      const results: TokenAnswer[] = [];
      let running = true;
      const loops = cluster.brokers.map(async (_, i) => {
        while (running) {
          results.push(...(await Promise.all(Array.from({ length: perBroker }, () => cluster.token(i)))));
          await sleep(100);
        }
      });
      return {
        stop: async () => {
          running = false;
          await Promise.all(loops);
          return results;
        },
      };
    },
    async introspect(accessToken) {
      const form = new URLSearchParams({ token: accessToken, client_id: idp.publicClientId });
      const res = await fetch(`${idp.issuer}/token/introspection`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
      return { status: res.status, body: await res.text() };
    },
    async metrics(i) {
      return (await fetch(`${cluster.brokers[i]!.url}/metrics`)).text();
    },
    async readyz(i) {
      return (await (await fetch(`${cluster.brokers[i]!.url}/readyz`)).json()) as { status: string; checks: { cache: { status: string } } };
    },
    async close() {
      await cluster.stopBrokers().catch(() => undefined);
      await browser.close().catch(() => undefined);
      await idp.close();
      await redis.close();
      dir.remove();
    },
  };
  try {
    await cluster.startBrokers();
  } catch (err) {
    // `after` has no cluster to close then: the IdP, the browser and Redis must not outlive the file.
    await cluster.close();
    throw err;
  }
  return cluster;
}

// ── assertions shared by both topologies ─────────────────────────────────────────────────────────

function describeFailures(results: TokenAnswer[]): string {
  const failed = results.filter((r) => r.status !== 200);
  if (failed.length === 0) return `all ${results.length} answered 200`;
  const byKind = new Map<string, number>();
  for (const r of failed) byKind.set(`${r.status} ${r.code ?? ''}`.trim(), (byKind.get(`${r.status} ${r.code ?? ''}`.trim()) ?? 0) + 1);
  const sample = failed.slice(0, 5).map((r) => `broker ${r.broker + 1} at +${r.at - (results[0]?.at ?? r.at)} ms: ${r.status} ${r.code ?? ''} ${r.detail ?? ''}`);
  return `${failed.length} of ${results.length} not 200 (${[...byKind].map(([k, n]) => `${n}× ${k}`).join(', ')}); first: ${sample.join(' | ')}`;
}

/**
 * The token is alice's and valid, as the IdP says. Not by userinfo (GET {issuer}/me): oidc-provider
 * answers it only for tokens with the openid scope (lib/actions/userinfo.js), and the broker redeems
 * the refresh token for the credential's scopes ('openehr'), so userinfo refuses its tokens with 403
 * insufficient_scope. Introspection (RFC 7662) says the same: active, whose, for which client.
 */
async function assertAlicesToken(c: DelegatedCluster, accessToken: string | undefined): Promise<void> {
  assert.ok(accessToken, 'an access token');
  const answer = await c.introspect(accessToken);
  assert.equal(answer.status, 200, `introspection answered ${answer.status}: ${answer.body}`);
  const claims = JSON.parse(answer.body) as { active?: boolean; sub?: string; client_id?: string; scope?: string };
  assert.equal(claims.active, true, `the token is active: ${answer.body}`);
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.client_id, c.idp.publicClientId);
}

function assertNoReuse(c: DelegatedCluster): void {
  assert.equal(c.idp.stats.refreshReuse, 0, 'no refresh token was redeemed twice');
  assert.equal(c.idp.stats.invalidGrant, 0, 'the IdP refused no grant');
}

/** Steady load for LOAD_LIFETIMES token lifetimes: every answer 200, rotations happened, no reuse. */
async function assertSteadyLoad(c: DelegatedCluster, ttlSeconds: number, t: { diagnostic(message: string): void }): Promise<void> {
  const redemptionsBefore = c.idp.stats.refreshRedemptions;
  const run = c.load();
  await sleep(LOAD_LIFETIMES * ttlSeconds * 1000 + 3000);
  const results = await run.stop();
  assert.ok(results.length >= 100, `requests made (${results.length})`);
  assert.deepEqual(results.filter((r) => r.status !== 200), [], describeFailures(results));
  assertNoReuse(c);
  const redemptions = c.idp.stats.refreshRedemptions - redemptionsBefore;
  assert.ok(redemptions >= 5, `refresh tokens redeemed during the load: ${redemptions}`);
  const status = await c.status(2);
  t.diagnostic(`${describeFailures(results)}; ${redemptions} refresh-token redemptions; status: refreshes ${status.refreshes}, rotations ${status.rotations}`);
  assert.equal(status.state, 'signed_in', JSON.stringify(status));
  assert.equal(status.subject, 'alice');
  assert.ok((status.rotations ?? 0) >= 5, `rotations ${status.rotations}`);
  await assertAlicesToken(c, results.at(-1)!.accessToken);
}

/** Restarted replicas find the grant in Redis: 200 on each, no new sign-in, no reuse. */
async function assertRestartKeepsGrant(c: DelegatedCluster): Promise<void> {
  const codesBefore = c.idp.stats.codeRedemptions;
  await c.stopBrokers();
  await c.startBrokers();
  for (let i = 0; i < 3; i++) {
    const answer = await c.token(i);
    assert.equal(answer.status, 200, `broker ${i + 1} after the restart: ${answer.status} ${answer.code ?? ''} ${answer.detail ?? ''}`);
    await assertAlicesToken(c, answer.accessToken);
  }
  assert.equal(c.idp.stats.codeRedemptions, codesBefore, 'no new sign-in');
  assertNoReuse(c);
  assert.equal((await c.status(0)).state, 'signed_in');
}

/** No access token in any broker log line nor in Redis; Redis holds only sealed values where a token could be. */
async function assertNoSecretsAtRest(c: DelegatedCluster): Promise<void> {
  assert.ok(c.seenTokens.size >= 5, `access tokens seen by the test: ${c.seenTokens.size}`);
  // Stopped first: nothing is written while the store is read, and every log line is in.
  await c.stopBrokers();
  const lines = c.allLogLines();
  assert.ok(lines.length > 0, 'log lines were captured');
  const leakingLines = lines.filter((line) => [...c.seenTokens].some((token) => line.includes(token)));
  assert.deepEqual(leakingLines, [], 'no log line holds an access token');

  const dump = await dumpKeys(c.redis.masterPort(), c.keyPrefix);
  const grant = dump.find((k) => k.key.endsWith(':grant'));
  assert.ok(grant, `the grant is stored under the prefix (keys: ${dump.map((k) => k.key).join(', ')})`);
  assert.equal(grant.type, 'hash');
  const data = grant.values[grant.values.indexOf('data') + 1];
  assert.ok(data?.startsWith('e1.'), 'the grant data is sealed');
  const values = dump.flatMap((k) => k.values.map((value) => ({ key: k.key, value })));
  assert.deepEqual(
    values.filter(({ value }) => [...c.seenTokens].some((token) => value.includes(token))),
    [],
    'no access token in Redis',
  );
  const unsealedRuns = values.filter(({ value }) => !value.startsWith('e1.') && LONG_BASE64URL_RUN.test(value));
  assert.deepEqual(unsealedRuns, [], 'no 43-character base64url run outside sealed values');
  // One-time records (sign-in tickets, states) are named by the SHA-256 of their secret, never the secret.
  assert.deepEqual(dump.filter((k) => /:once:/.test(k.key) && !/:once:(ticket|used|state):[A-Za-z0-9_-]{43}$|:once:(pending|outcome):/.test(k.key)).map((k) => k.key), []);
}

// ── standalone Redis ─────────────────────────────────────────────────────────────────────────────

describe('delegated credential on three brokers sharing a standalone Redis', { skip }, () => {
  const TTL = 4;
  let c: DelegatedCluster;
  before(async () => {
    c = await startDelegatedCluster('deleg-standalone', async () => {
      const redis: TestRedis = await startTestRedis();
      return { cache: { redisUrl: redis.url }, masterPort: () => redis.port, close: () => redis.kill() };
    }, TTL);
  });
  after(() => c?.close());

  // Proves the pending sign-in is shared: started on broker 2, the link and the IdP's redirect are
  // served by broker 1, and every replica sees alice signed in.
  test('a sign-in started on broker 2 completes on broker 1', async () => {
    await c.signIn(1);
    for (let i = 0; i < 3; i++) {
      const status = await c.status(i);
      assert.equal(status.state, 'signed_in', `broker ${i + 1}: ${JSON.stringify(status)}`);
      assert.equal(status.subject, 'alice');
    }
    assert.equal(c.idp.stats.codeRedemptions, 1);
  });

  // Proves the claim + compare-and-swap: three replicas under load across many rotations of the
  // refresh token never redeem one twice (the IdP would see reuse and revoke the grant) and never
  // leave a caller without a token.
  test('steady load on all three: every request 200, the refresh token rotates, never reused', async (t) => {
    await assertSteadyLoad(c, TTL, t);
  });

  // Proves the grant lives in Redis, not in a process: all replicas restarted, no new sign-in.
  test('all three restarted: tokens without a new sign-in', async () => {
    await assertRestartKeepsGrant(c);
  });

  // Proves an ended grant is noticed by every replica, reported (409 sign_in_required, the metric),
  // and that a new sign-in restores service everywhere without a restart.
  test('grant revoked at the IdP: every replica answers sign_in_required; a new sign-in serves again', async (t) => {
    const reuseBefore = c.idp.stats.refreshReuse;
    const invalidBefore = c.idp.stats.invalidGrant;
    assert.ok((await c.idp.revokeAllGrants()) >= 1, 'a grant was revoked');
    for (let i = 0; i < 3; i++) {
      let last: TokenAnswer | undefined;
      await waitFor(`broker ${i + 1} answers 409 sign_in_required (last: ${JSON.stringify(last)})`, async () => {
        last = await c.token(i);
        return last.status === 409 && last.code === 'sign_in_required';
      }, 60_000);
    }
    for (let i = 0; i < 3; i++) {
      await waitFor(`broker ${i + 1} reports token_broker_delegated_signed_in 0`, async () => (await c.metrics(i)).includes(`token_broker_delegated_signed_in{credential="${CREDENTIAL}"} 0`), 60_000);
    }
    const required = await c.status(0);
    assert.equal(required.state, 'sign_in_required', JSON.stringify(required));
    assert.equal(c.idp.stats.refreshReuse, reuseBefore, 'the refusal is a revocation, not a reuse');
    const refusals = c.idp.stats.invalidGrant - invalidBefore;
    assert.ok(refusals >= 1, 'the IdP refused the revoked refresh token');
    t.diagnostic(`invalid_grant answers for the revoked grant: ${refusals}`);

    await c.signIn(2);
    for (let i = 0; i < 3; i++) {
      let last: TokenAnswer | undefined;
      await waitFor(`broker ${i + 1} answers 200 after the new sign-in (last: ${JSON.stringify(last)})`, async () => {
        last = await c.token(i);
        return last.status === 200;
      }, 60_000);
      await assertAlicesToken(c, last!.accessToken);
    }
    assert.equal((await c.status(1)).state, 'signed_in');
    assert.equal(c.idp.stats.refreshReuse, reuseBefore);
    assert.equal(c.idp.stats.invalidGrant - invalidBefore, refusals, 'no refusal after the new sign-in');
  });

  // Proves tokens and refresh tokens never sit in plaintext where operators look: logs and Redis.
  test('no access token in the logs or in Redis; Redis holds sealed values only', async () => {
    await assertNoSecretsAtRest(c);
  });
});

// ── Sentinel ─────────────────────────────────────────────────────────────────────────────────────

describe('delegated credential on three brokers sharing a Sentinel-managed Redis', { skip }, () => {
  // 8 s tokens, not 4: with 4 s tokens (refresh-ahead at 2 s) the failover below (down-after 1 s,
  // brokers ready again ~3.4 s after the kill) outlasted the last token, and 34 of 1784 requests got
  // 503 idp_unavailable ("the grant store is unavailable ... the refresh token is not redeemed without
  // it") in a ~0.6 s window: by design a refresh token is not redeemed without the store, and an
  // expired access token is never served. 8 s tokens keep a valid one across the failover.
  const TTL = 8;
  let c: DelegatedCluster;
  let sentinel: TestRedisSentinel;
  before(async () => {
    c = await startDelegatedCluster('deleg-sentinel', async () => {
      sentinel = await startTestRedisSentinel();
      return {
        cache: { redisSentinel: { sentinels: sentinel.sentinelAddresses, masterName: sentinel.masterName } },
        masterPort: () => sentinel.currentMasterPort(),
        close: () => sentinel.close(),
      };
    }, TTL);
  });
  after(() => c?.close());

  // Proves the pending sign-in is shared through a Sentinel-managed master.
  test('a sign-in started on broker 2 completes on broker 1', async () => {
    await c.signIn(1);
    for (let i = 0; i < 3; i++) assert.equal((await c.status(i)).state, 'signed_in', `broker ${i + 1}`);
  });

  // Proves the claim + compare-and-swap with a replica acknowledging every claim (WAIT).
  test('steady load on all three: every request 200, the refresh token rotates, never reused', async (t) => {
    await assertSteadyLoad(c, TTL, t);
  });

  // Proves the grant survives restarts of every replica.
  test('all three restarted: tokens without a new sign-in', async () => {
    await assertRestartKeepsGrant(c);
  });

  // Proves a failover neither loses the grant (the promoted replica had acknowledged every claim and
  // commit) nor leads to a double redemption, and that callers keep getting tokens across it.
  test('the master killed under load: every request 200, no reuse, the grant alive on the promoted master', async (t) => {
    const run = c.load();
    await sleep((LOAD_LIFETIMES / 2) * TTL * 1000);
    const oldMaster = sentinel.currentMasterPort();
    const killedAt = Date.now();
    await sentinel.master.kill('SIGKILL');
    await sentinel.waitForFailover(oldMaster);
    for (let i = 0; i < 3; i++) await waitFor(`broker ${i + 1} follows the promoted master`, async () => (await c.readyz(i)).checks.cache.status === 'ok');
    const redemptionsAfterFailover = c.idp.stats.refreshRedemptions;
    const readyAt = Date.now();
    await sleep((LOAD_LIFETIMES / 2) * TTL * 1000);
    const results = await run.stop();
    const failed = results.filter((r) => r.status !== 200);
    t.diagnostic(`failover: brokers ready again ${readyAt - killedAt} ms after the kill; ${describeFailures(results)}; ${c.idp.stats.refreshRedemptions - redemptionsAfterFailover} redemptions after it`);
    assert.deepEqual(failed, [], describeFailures(results));
    assertNoReuse(c);
    assert.ok(c.idp.stats.refreshRedemptions > redemptionsAfterFailover, 'the grant was redeemed again on the promoted master');
    const status = await c.status(0);
    assert.equal(status.state, 'signed_in', JSON.stringify(status));
    await assertAlicesToken(c, results.at(-1)!.accessToken);
  });

  // Proves the same at-rest property on the promoted master.
  test('no access token in the logs or in Redis; Redis holds sealed values only', async () => {
    await assertNoSecretsAtRest(c);
  });
});
