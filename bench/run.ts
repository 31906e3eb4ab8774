// `npm run bench`: the docs/design.md §7 figures that one machine can measure, each as a ratio against a
// baseline taken in the same run (absolute numbers depend on the machine; ratios much less so).
//
//   1. cache-hit POST /v1/token: the broker vs a bare Express 5 app serving the same JSON body,
//      each in its own child process, loaded by autocannon from this process;
//   2. ClientAssertionSigner.sign() vs raw crypto.sign, in this process, after the servers are gone;
//      then the same with the key in a SoftHSM2 token and in the Key Vault stand-in (context, no
//      target; key-backend-rate.ts): SoftHSM needs Debian's softhsm2, installed here with apt-get
//      when it is missing and that can be done, and the optional dependency pkcs11js; without them
//      those figures say "not measured" and why;
//   3. the cluster figures: a stampede and a soak over three broker processes sharing one Redis,
//      standalone and a Redis Cluster (3 masters + 3 replicas).
//
// Writes bench/results.md and prints the same Markdown to stdout; progress goes to stderr.
// Takes about 85 s.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { measureSoak, measureStampede } from './cluster-figures.ts';
import { measureForeignCpu } from './foreign-cpu.ts';
import { runLoad, type LoadFigures, type LoadSpec } from './http-load.ts';
import { measureKeyBackends, softHsmPrerequisites } from './key-backend-rate.ts';
import { renderReport, type ClusterFigures } from './report.ts';
import { measureSigners } from './signer-rate.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';

const CONNECTIONS = 64;
const WARMUP_SECONDS = 2;
const MEASURE_SECONDS = 10;
/** Alternating bare/broker rounds; alternation spreads any drift (thermal, noisy neighbour) over both. */
const ROUNDS = 2;
const SIGN_WARMUP_SECONDS = 0.5;
const SIGN_SECONDS = 2;
/** Per side of each key-backend figure: a few seconds per backend in all (their rates are context). */
const BACKEND_WARMUP_SECONDS = 0.15;
const BACKEND_SECONDS = 0.3;

/** The credential bench/broker-server.ts configures. */
const TOKEN_REQUEST = JSON.stringify({ credential: 'bench' });
const RESULTS_FILE = fileURLToPath(new URL('results.md', import.meta.url));

const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);
const describeForeign = (share: number | undefined) => (share === undefined ? '' : `, other processes ${Math.round(share * 100)}% of machine CPU`);

/** One POST /v1/token outside the load run, to check what the server answers before trusting a figure. */
async function requestToken(url: string, apiKey?: string): Promise<{ body: string; cache?: string }> {
  const res = await fetch(`${url}/v1/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body: TOKEN_REQUEST,
  });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`POST ${url}/v1/token answered ${res.status}: ${body.slice(0, 500)}`);
  return { body, cache: (JSON.parse(body) as { cache?: string }).cache };
}

async function compareHttp(apiKey: string) {
  const servers: ServerProcess[] = [];
  try {
    progress('starting the broker child (sandbox IdP + throw-away certificate)');
    const broker = await startServerProcess('broker', 'broker-server.ts', { BENCH_API_KEY: apiKey });
    servers.push(broker);

    // Warm the cache: the first request exchanges with the sandbox IdP, every later one must be a hit.
    const first = await requestToken(broker.url, apiKey);
    if (first.cache !== 'miss') throw new Error(`expected the first request to be a cache miss, got '${first.cache}'`);
    const hit = await requestToken(broker.url, apiKey);
    if (hit.cache !== 'hit') throw new Error(`expected a cache hit after warming, got '${hit.cache}'`);

    progress('starting the bare Express child');
    const bare = await startServerProcess('bare', 'bare-server.ts', { BENCH_RESPONSE_BODY: hit.body });
    servers.push(bare);
    const bareBody = (await requestToken(bare.url)).body;
    if (bareBody.length !== hit.body.length) throw new Error(`bare app body is ${bareBody.length} bytes, the broker's ${hit.body.length}`);

    const targets: { server: ServerProcess; headers: Record<string, string>; runs: LoadFigures[] }[] = [
      { server: bare, headers: {}, runs: [] },
      { server: broker, headers: { authorization: `Bearer ${apiKey}` }, runs: [] },
    ];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const target of targets) {
        const spec: LoadSpec = { url: target.server.url, headers: target.headers, body: TOKEN_REQUEST, connections: CONNECTIONS, durationSeconds: WARMUP_SECONDS };
        const label = `${target.server.name} round ${round}`;
        progress(`${label}: warm-up ${WARMUP_SECONDS} s, then ${MEASURE_SECONDS} s at ${CONNECTIONS} connections`);
        await runLoad(`${label} warm-up`, spec);
        const ownPids = [process.pid, ...servers.map((s) => s.pid)];
        const { result, foreignShare } = await measureForeignCpu(ownPids, () => runLoad(label, { ...spec, durationSeconds: MEASURE_SECONDS }));
        progress(`${label}: ${Math.round(result.requestsPerSecond)} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms${describeForeign(foreignShare)}`);
        target.runs.push({ ...result, foreignCpuShare: foreignShare });
      }
    }

    // The figure is only a cache-hit figure if the cache still served the token at the end.
    const after = await requestToken(broker.url, apiKey);
    if (after.cache !== 'hit') throw new Error(`expected a cache hit after the load runs, got '${after.cache}'`);

    return { connections: CONNECTIONS, durationSeconds: MEASURE_SECONDS, bare: targets[0]!.runs, broker: targets[1]!.runs, bodyBytes: Buffer.byteLength(hit.body) };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

async function main() {
  // Before anything is measured: an apt-get install is CPU of its own.
  const softHsm = softHsmPrerequisites({ install: true, log: progress });
  if (!softHsm.available) progress(`the SoftHSM signing figures will not be measured: ${softHsm.why}`);

  // A fresh caller key per run; the broker child is configured with its hash only.
  const apiKey = randomBytes(24).toString('base64url');
  const http = await compareHttp(apiKey);

  progress(`signing: ${SIGN_SECONDS} s per figure after ${SIGN_WARMUP_SECONDS} s warm-up in slices alternating with raw crypto.sign (RS256, PS256, ES256)`);
  const signing = await measureForeignCpu([process.pid], () => measureSigners({ warmupSeconds: SIGN_WARMUP_SECONDS, seconds: SIGN_SECONDS }));
  progress(`signing done${describeForeign(signing.foreignShare)}`);

  progress(`signing per key backend (SoftHSM, Key Vault stand-in): ${BACKEND_SECONDS} s per side of each figure after ${BACKEND_WARMUP_SECONDS} s warm-up, sequential and concurrent`);
  const backends = await measureKeyBackends({ warmupSeconds: BACKEND_WARMUP_SECONDS, seconds: BACKEND_SECONDS, softHsm, log: progress });

  const cluster: ClusterFigures[] = [];
  for (const topology of ['standalone', 'cluster'] as const) {
    progress(`${topology} Redis: stampede (300 cold requests over 3 broker processes sharing Redis, IdP answering after 300 ms)`);
    const stampede = await measureStampede(topology);
    progress(`${topology} Redis: stampede made ${stampede.exchanges} exchange(s); soak over 3 lifetimes of an 8 s token`);
    const soak = await measureSoak(topology);
    progress(`${topology} Redis: soak ${soak.requests} requests, ${soak.waitedOnIdp} waited, ${soak.servedPastExpiry} past expiry, ${soak.exchanges} exchanges`);
    cluster.push({ stampede, soak });
  }

  const report = renderReport(http, { figures: signing.result, foreignCpuShare: signing.foreignShare, backends }, cluster);
  writeFileSync(RESULTS_FILE, report.markdown);
  process.stdout.write(report.markdown);
  progress(`${report.allTargetsMet ? 'all targets met' : 'SOME TARGETS MISSED'}; written to ${RESULTS_FILE}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1); // the exit hook in server-process.ts kills any child still running
});
