// SIGTERM under load: readiness fails at once, requests in flight and the ones sent during the grace
// period all succeed, nothing is reset, and the process exits 0. Keep-alive callers are told
// `Connection: close` during the drain and reconnect without a reset; SIGHUP and SIGUSR2 drain too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { startBrokerProcess, type BrokerProcess } from '../helpers/broker-process.ts';
import { freePort } from '../helpers/redis-server.ts';
import { POWERBI_SCOPE, TEST_CLIENT as CLIENT, TEST_TENANT as TENANT, entraCredential } from '../helpers/entra-fixture.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';

const KEY = 'drain-key';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: TempDir;
let entra: EntraStandIn;
let cert: CredentialFiles;

before(async () => {
  dir = tempDir();
  cert = await writeCredentialFiles(dir, 'drain');
  entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, certificates: [cert.cert.certPem] }] });
});
after(async () => {
  await entra.close();
  dir.remove();
});

test('SIGTERM under load: no failed or reset request, readiness false at once, exit 0', async () => {
  const broker = await startBrokerProcess(
    {
      server: { shutdownDelaySeconds: 1.5 },
      credentials: [entraCredential('powerbi', entra.url, cert, { scopes: [POWERBI_SCOPE, 'https://analysis.usgovcloudapi.net/powerbi/api/.default'] })],
      callers: [{ id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: [{ credential: 'powerbi' }], rateLimit: { requestsPerSecond: 100_000, burst: 100_000 } }],
    },
    dir.path,
    'drain',
  );
  assert.equal((await broker.token(KEY, { credential: 'powerbi' })).status, 200);

  // Load, as a load balancer would send it: until it sees /readyz fail.
  const results: (number | string)[] = [];
  let ready = true;
  const loops = Array.from({ length: 4 }, async () => {
    while (ready) {
      try {
        results.push((await broker.token(KEY, { credential: 'powerbi' })).status);
      } catch (err) {
        results.push(String((err as Error).cause ?? err));
      }
      await sleep(5);
    }
  });
  let sawNotReady = false;
  let signalled = false;
  const poller = (async () => {
    while (ready) {
      const res = await fetch(`${broker.url}/readyz`).catch(() => undefined);
      if (res?.status === 503) sawNotReady = true;
      // Stop on a 503, or (a failure, reported below) when the broker stopped answering first.
      if (sawNotReady || (signalled && !res)) ready = false;
      await sleep(50);
    }
  })();
  await sleep(500);

  // One slow exchange in flight across the close: the IdP answers after 2.5 s.
  entra.inject({ latencyMs: 2500 });
  const slow = broker.token(KEY, { credential: 'powerbi', scope: 'https://analysis.usgovcloudapi.net/powerbi/api/.default' });
  await sleep(100);
  const signalledAt = Date.now();
  signalled = true;
  const exited = broker.stop('SIGTERM');
  await poller;
  const notReadyAfter = Date.now() - signalledAt;
  await Promise.all(loops);
  const slowResponse = await slow;
  const code = await exited;

  // Readiness failed while the broker still answered (before the listener closed at
  // shutdownDelaySeconds); how many ms that took depends on the machine, so it is only reported.
  assert.ok(sawNotReady, `readiness never failed before the listener closed (${notReadyAfter} ms after SIGTERM)`);
  assert.ok(results.length > 20, `${results.length} requests`);
  assert.deepEqual([...new Set(results)], [200], 'no failed or reset request');
  assert.equal(slowResponse.status, 200, 'the request in flight during the close completed');
  // Its headers were sent after the signal: the caller is told not to reuse the connection.
  assert.equal(slowResponse.headers.get('connection'), 'close');
  assert.equal(code, 0);
  assert.ok(broker.lines.some((l) => l.includes('"msg":"stopped"')));
});

interface Answer {
  status: number;
  /** The response's Connection header. */
  connection: string | undefined;
  /** Whether the request went over a connection kept alive from an earlier request. */
  reused: boolean;
}

/** One request through a keep-alive agent (node's http client, as most Node callers use it). */
function send(agent: Agent, url: string, method: 'GET' | 'POST', body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      url,
      { method, agent, headers: payload ? { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' } : {} },
      (res) => {
        res.resume();
        res.once('error', reject);
        res.once('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, reused: req.reusedSocket }));
      },
    );
    req.once('error', reject);
    req.end(payload);
  });
}

const freeSockets = (agent: Agent) => Object.values(agent.freeSockets).reduce((n, list) => n + (list?.length ?? 0), 0);
const describeError = (err: unknown) => String((err as NodeJS.ErrnoException).code ?? (err as Error).message);

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, capMs = 30_000): Promise<void> {
  const deadline = Date.now() + capMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function drainConfig(delaySeconds: number, metricsPort?: number) {
  return {
    server: { shutdownDelaySeconds: delaySeconds },
    ...(metricsPort ? { metrics: { port: metricsPort } } : {}),
    credentials: [entraCredential('powerbi', entra.url, cert)],
    callers: [{ id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: [{ credential: 'powerbi' }], rateLimit: { requestsPerSecond: 100_000, burst: 100_000 } }],
  };
}

test('SIGTERM with 30 keep-alive callers: Connection: close during the drain, idle sockets closed, zero resets, exit 0', async () => {
  const metricsPort = await freePort();
  const broker = await startBrokerProcess(drainConfig(5, metricsPort), dir.path, 'keepalive');
  const exited = new Promise<number | null>((resolve) => broker.child.once('exit', (code) => resolve(code)));
  const hasExited = () => broker.child.exitCode !== null || broker.child.signalCode !== null;
  const tokenUrl = `${broker.url}/v1/token`;
  const body = { credential: 'powerbi' };
  const agents: Agent[] = [];
  const newAgent = () => {
    // One connection per caller, kept alive between requests.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    return agent;
  };
  const errors: string[] = [];
  try {
    // 20 busy callers send back to back; 10 idle callers made one request and keep their connection.
    const idle = Array.from({ length: 10 }, newAgent);
    for (const agent of idle) {
      const first = await send(agent, tokenUrl, 'POST', body);
      assert.equal(first.status, 200);
      assert.equal(first.connection, 'keep-alive');
    }
    assert.deepEqual(idle.map(freeSockets), idle.map(() => 1), 'each idle caller holds a kept-alive connection');
    const scraper = newAgent();
    assert.equal((await send(scraper, `http://127.0.0.1:${metricsPort}/metrics`, 'GET')).connection, 'keep-alive');

    let draining = false;
    const busy = Array.from({ length: 20 }, () => ({ agent: newAgent(), before: [] as Answer[], during: [] as Answer[] }));
    const loops = busy.map(async (caller) => {
      // Until two answers said Connection: close (the second over a new connection); bounded in case
      // they never do, and stopped by the first error.
      for (let i = 0; i < 5000 && !hasExited(); i++) {
        const sentDuringDrain = draining;
        try {
          const answer = await send(caller.agent, tokenUrl, 'POST', body);
          (sentDuringDrain ? caller.during : caller.before).push(answer);
        } catch (err) {
          errors.push(describeError(err));
          return;
        }
        if (caller.during.filter((a) => a.connection === 'close').length >= 2) return;
        await sleep(5);
      }
    });
    await waitFor('three answers per busy caller', () => busy.every((c) => c.before.length >= 3) || errors.length > 0);
    assert.deepEqual(errors, []);
    assert.ok(
      busy.every((c) => c.before.slice(1).every((a) => a.reused && a.connection === 'keep-alive')),
      'before SIGTERM the busy callers reuse one kept-alive connection each',
    );

    broker.child.kill('SIGTERM');
    await waitFor('readiness to fail', async () => (await fetch(`${broker.url}/readyz`).then((r) => r.status, () => 0)) === 503);
    draining = true;
    await Promise.all(loops);
    assert.deepEqual(errors, [], 'no busy caller saw a reset or an error');
    for (const caller of busy) {
      assert.ok(caller.during.length >= 2, `a busy caller got ${caller.during.length} answers during the drain`);
      assert.deepEqual([...new Set(caller.during.map((a) => `${a.status} ${a.connection}`))], ['200 close'], 'every answer during the drain says Connection: close');
      assert.equal(caller.during.at(-1)!.reused, false, 'after Connection: close the next request opened a new connection, and it was served');
    }

    // The idle connections are closed by the broker while it still serves, so the callers' next
    // requests open new connections instead of meeting a closed socket.
    await waitFor('the idle connections to be closed', () => idle.every((a) => freeSockets(a) === 0) || hasExited());
    assert.equal(hasExited(), false, 'the idle connections were closed during the drain, not at exit');
    for (const agent of idle) {
      const next = await send(agent, tokenUrl, 'POST', body).catch((err: unknown) => describeError(err));
      assert.deepEqual(next, { status: 200, connection: 'close', reused: false });
    }
    // The metrics port drains the same way.
    const scrape = await send(scraper, `http://127.0.0.1:${metricsPort}/metrics`, 'GET').catch((err: unknown) => describeError(err));
    assert.equal(typeof scrape === 'string' ? scrape : scrape.connection, 'close');

    assert.equal(await exited, 0);
    assert.ok(broker.lines.some((l) => l.includes('"msg":"stopped"')));
  } finally {
    for (const agent of agents) agent.destroy();
    if (!hasExited()) broker.child.kill('SIGKILL');
    await exited;
  }
});

async function signalDrains(signal: NodeJS.Signals) {
  const broker: BrokerProcess = await startBrokerProcess(drainConfig(3), dir.path, `signal-${signal}`);
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => broker.child.once('exit', (code, sig) => resolve([code, sig])));
  const hasExited = () => broker.child.exitCode !== null || broker.child.signalCode !== null;
  try {
    assert.equal((await broker.token(KEY, { credential: 'powerbi' })).status, 200);
    broker.child.kill(signal);
    await waitFor(
      'readiness to fail',
      async () => hasExited() || (await fetch(`${broker.url}/readyz`).then((r) => r.status, () => 0)) === 503,
    );
    assert.equal(hasExited(), false, `${signal} ended the process at once`);
    // Still serving during the drain.
    assert.equal((await broker.token(KEY, { credential: 'powerbi' })).status, 200);
    assert.deepEqual(await exited, [0, null]);
    const shutdownLine = broker.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.msg === 'shutting down: not ready any more, draining');
    assert.equal(shutdownLine?.signal, signal);
    assert.ok(broker.lines.some((l) => l.includes('"msg":"stopped"')));
  } finally {
    if (!hasExited()) broker.child.kill('SIGKILL');
    await exited;
  }
}

test('SIGHUP drains like SIGTERM: logged, still serving during the delay, exit 0', () => signalDrains('SIGHUP'));
test('SIGUSR2 drains like SIGTERM: logged, still serving during the delay, exit 0', () => signalDrains('SIGUSR2'));
