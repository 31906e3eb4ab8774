// Renders the figures as the Markdown written to bench/results.md (and printed to stdout), with the
// docs/design.md §7 targets next to what was measured.
import { cpus, totalmem } from 'node:os';
import type { LoadFigures } from './http-load.ts';
import type { SignerFigures } from './signer-rate.ts';
import type { BackendMeasurement, BackendRow, KeyBackendFigures } from './key-backend-rate.ts';
import type { SoakFigures, StampedeFigures } from './cluster-figures.ts';

export interface HttpComparison {
  connections: number;
  durationSeconds: number;
  /** Measured runs per server, in the order they ran. */
  bare: LoadFigures[];
  broker: LoadFigures[];
  bodyBytes: number;
}

export interface SigningComparison {
  figures: SignerFigures[];
  /** Share of the machine's CPU used by other processes while signing. */
  foreignCpuShare?: number;
  /** The same measurement with the key in SoftHSM and in the Key Vault stand-in: context, no target. */
  backends?: KeyBackendFigures;
}

export interface Report {
  markdown: string;
  allTargetsMet: boolean;
}

export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const num = (value: number, digits = 0) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ratio = (value: number) => `${value.toFixed(2)}×`;
const verdict = (ok: boolean) => (ok ? 'PASS' : '**FAIL**');
const percent = (share: number | undefined) => (share === undefined ? 'unknown' : `${Math.round(share * 100)}%`);

/** Above this share of the machine's CPU taken by other processes, a figure is flagged as unreliable. */
const QUIET_MACHINE_LIMIT = 0.1;

function medians(runs: LoadFigures[]) {
  return {
    requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
  };
}

export interface ClusterFigures {
  stampede: StampedeFigures;
  soak: SoakFigures;
}

function clusterTargetsMet(c: ClusterFigures): boolean {
  return c.stampede.exchanges === 1 && c.stampede.non200 === 0 && c.soak.waitedOnIdp === 0 && c.soak.servedPastExpiry === 0 && c.soak.non200 === 0;
}

/** One row per Redis topology in each table, so standalone and cluster read side by side. */
function clusterSection(runs: ClusterFigures[]): string[] {
  const [first] = runs;
  if (!first) return [];
  const { stampede: s0, soak: k0 } = first;
  return [
    '## Cluster: three broker processes on one Redis (standalone, and a Redis Cluster of 3 masters + 3 replicas)',
    '',
    `The IdP is the strict Entra stand-in of the tests; Redis is redis-server processes of the bench's own; each broker is its own process (\`token-broker serve\`), measured once every replica reports ready.`,
    '',
    `**Stampede**: ${s0.requests} concurrent cold requests for one target spread over ${s0.replicas} replicas, the IdP answering after ${s0.idpLatencyMs} ms.`,
    '',
    '| Redis | IdP exchanges | non-200 answers | distinct tokens served | p50 ms | p99 ms |',
    '|---|---:|---:|---:|---:|---:|',
    ...runs.map(({ stampede: s }) => `| ${s.topology} | ${s.exchanges} | ${s.non200} | ${s.distinctTokens} | ${s.p50Ms} | ${s.p99Ms} |`),
    '',
    `**Soak**: steady load over ${k0.replicas} replicas for about ${k0.durationSeconds} s (${(k0.durationSeconds / k0.tokenLifetimeSeconds).toFixed(1)} lifetimes of a ${k0.tokenLifetimeSeconds} s token, refresh-ahead at ${k0.refreshAheadRatio} of the lifetime).`,
    '',
    '| Redis | requests | req/s | callers that waited on the IdP after warm-up | tokens served past expiry | non-200 | exchanges | exchanges per lifetime | p99 ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...runs.map(({ soak: k }) => `| ${k.topology} | ${num(k.requests)} | ${num(k.requestsPerSecond)} | ${k.waitedOnIdp} | ${k.servedPastExpiry} | ${k.non200} | ${k.exchanges} | ${k.exchangesPerLifetime} | ${k.p99Ms} |`),
    '',
    `Exchanges per lifetime is 1 / refresh ratio when one replica refreshes per cycle (${(1 / k0.refreshAheadRatio).toFixed(1)} here), whatever the number of replicas.`,
    '',
    '| figure | target | Redis | measured | result |',
    '|---|---|---|---|---|',
    ...runs.flatMap(({ stampede: s, soak: k }) => [
      `| 300 concurrent cold requests, 3 processes sharing Redis | exactly 1 IdP exchange | ${s.topology} | ${s.exchanges} | ${verdict(s.exchanges === 1 && s.non200 === 0)} |`,
      `| steady load with refresh-ahead | 0 callers wait on the IdP after warm-up, 0 expired tokens served | ${k.topology} | ${k.waitedOnIdp} waited, ${k.servedPastExpiry} expired | ${verdict(k.waitedOnIdp === 0 && k.servedPastExpiry === 0 && k.non200 === 0)} |`,
    ]),
    '',
  ];
}

const BACKEND_NAMES: Record<BackendMeasurement['backend'], string> = { softhsm: 'SoftHSM 2 (PKCS#11)', keyVault: 'Key Vault stand-in' };

/**
 * One table of every key backend, the file rows being the signer table's own figures; a figure that
 * could not be taken says so, with the reason as a numbered note under the table.
 */
function keyBackendSection(signers: SignerFigures[], b: KeyBackendFigures): string[] {
  const notes: string[] = [];
  const note = (why: string) => {
    const i = notes.indexOf(why);
    return `not measured: note ${i >= 0 ? i + 1 : notes.push(why)}`;
  };
  const rowLine = (name: string, r: BackendRow) =>
    r.measured
      ? `| ${name} | ${r.algorithm} | ${r.inFlight} | ${num(r.measured.signerOpsPerSecond)} | ${num(r.measured.rawOpsPerSecond)} | ${ratio(r.measured.signerOpsPerSecond / r.measured.rawOpsPerSecond)} |`
      : `| ${name} | ${r.algorithm} | ${r.inFlight} | ${note(r.notMeasured ?? 'unknown')} | | |`;
  const backendLines = (m: BackendMeasurement) => {
    const name = BACKEND_NAMES[m.backend];
    const reasons = new Set(m.rows.map((r) => (r.measured ? undefined : r.notMeasured)));
    // Nothing measured, for one reason (softhsm2 missing, say): one line, not one per figure.
    if (reasons.size === 1 && !reasons.has(undefined)) {
      const list = (values: (string | number)[]) => [...new Set(values)].join(', ');
      return [`| ${name} | ${list(m.rows.map((r) => r.algorithm))} | ${list(m.rows.map((r) => r.inFlight))} | ${note(m.rows[0]?.notMeasured ?? 'unknown')} | | |`];
    }
    return m.rows.map((r) => rowLine(name, r));
  };
  const other = (m: BackendMeasurement) =>
    `${BACKEND_NAMES[m.backend]} ${percent(m.foreignCpuShare)}${(m.foreignCpuShare ?? 0) > QUIET_MACHINE_LIMIT ? ' (**busy machine**: less reliable)' : ''}`;
  const lines = [
    '## Signing per key backend: file, SoftHSM, Key Vault stand-in (context, no target)',
    '',
    "`ClientAssertionSigner.sign()` with each backend's key signer beside raw `crypto.sign` over the same signing input with a software key of the same type and size " +
      '(RSA 2048 / P-256). **file**: the rows of the table above (the same key on both sides; its target is in the targets below). ' +
      `**SoftHSM**: \`Pkcs11KeySigner\` with keys generated inside a SoftHSM2 token of the bench's own (not extractable), measured in a child process; ` +
      `the HSM's own cost dominates. **Key Vault**: \`KeyVaultKeySigner\` through \`@azure/keyvault-keys\` to the Key Vault stand-in of the tests, an HTTPS round trip on loopback ` +
      "served by the bench process itself (the stand-in's TLS, JSON and signature are in the figure). " +
      `In flight: 1 (one signature at a time), ${b.sessions} for SoftHSM (its \`sessions\`, one PKCS#11 session each), ${b.keyVaultInFlight} for Key Vault; ` +
      "with more than one, the raw side runs `crypto.sign`'s callback form (libuv's thread pool, as pkcs11js runs `C_Sign`) with as many in flight. " +
      `Each figure: ${b.seconds} s per side in ${b.slices} slices alternating with the raw side, after a ${b.warmupSeconds} s warm-up. ` +
      `Other CPU during the busiest figure: ${other(b.softHsm)}, ${other(b.keyVault)}.`,
    '',
    '| backend | algorithm | in flight | assertions/s | raw `crypto.sign` ops/s | backend / raw |',
    '|---|---|---:|---:|---:|---:|',
    ...signers.map((s) => `| file | ${s.algorithm} | 1 | ${num(s.signerOpsPerSecond)} | ${num(s.rawOpsPerSecond)} | ${ratio(s.signerOpsPerSecond / s.rawOpsPerSecond)} |`),
    ...backendLines(b.softHsm),
    ...backendLines(b.keyVault),
    '',
  ];
  for (const [i, why] of notes.entries()) lines.push(`Note ${i + 1}: ${why.replace(/\.?$/, '.')}`, '');
  return lines;
}

export function renderReport(http: HttpComparison, signing: SigningComparison, cluster: ClusterFigures[], date: Date = new Date()): Report {
  const signers = signing.figures;
  const cpu = cpus();
  const bare = medians(http.bare);
  const broker = medians(http.broker);
  const throughputRatio = broker.requestsPerSecond / bare.requestsPerSecond;
  const p99Ratio = broker.p99Ms / bare.p99Ms;
  const runList = (runs: LoadFigures[]) => runs.map((r) => `${num(r.requestsPerSecond)} (${percent(r.foreignCpuShare)})`).join(', ');
  const busiest = Math.max(...[...http.bare, ...http.broker].map((r) => r.foreignCpuShare ?? 0), signing.foreignCpuShare ?? 0);
  const noisyWarning =
    busiest > QUIET_MACHINE_LIMIT
      ? [
          `> **Warning:** other processes used up to ${percent(busiest)} of the machine's CPU during a measurement (limit for a clean figure: ` +
            `${percent(QUIET_MACHINE_LIMIT)}). The ratios below are less reliable; rerun on a quiet machine.`,
          '',
        ]
      : [];

  const targets = [
    { figure: 'cache-hit `POST /v1/token` throughput', target: '≥ 0.8× bare', measured: throughputRatio, ok: throughputRatio >= 0.8 },
    { figure: 'cache-hit p99 latency, 64 connections', target: '≤ 2× bare', measured: p99Ratio, ok: p99Ratio <= 2 },
    ...signers.map((s) => {
      const r = s.signerOpsPerSecond / s.rawOpsPerSecond;
      return { figure: `signing ${s.algorithm}: assertions/s vs raw \`crypto.sign\``, target: '≥ 0.9× raw', measured: r, ok: r >= 0.9 };
    }),
  ];

  const lines = [
    '# token-broker benchmarks',
    '',
    `Date: ${date.toISOString()}`,
    '',
    '## Machine',
    '',
    '| CPU | cores | memory | Node |',
    '|---|---|---|---|',
    `| ${cpu[0]?.model.trim() ?? 'unknown'} | ${cpu.length} | ${num(totalmem() / 2 ** 30, 1)} GiB | ${process.version} |`,
    '',
    'Load generator and servers share this machine: autocannon runs in the bench process, each server in its own child process. ' +
      '"Other CPU" is the share of the machine\'s CPU that processes outside the bench (or the hypervisor, as steal) took during a run.',
    '',
    ...noisyWarning,
    '## Cache-hit `POST /v1/token` vs a bare Express 5 app',
    '',
    `${http.connections} connections, ${http.durationSeconds} s per measured run after a warm-up run; bare app and broker run alternately, ` +
      `${http.broker.length} measured runs each, median reported. Both answer with the same ${http.bodyBytes}-byte JSON body; the broker logs ` +
      "at level 'info' (access and audit lines) to /dev/null. Every response was 2xx.",
    '',
    '| server | req/s | p50 ms | p99 ms | req/s of each run (other CPU) |',
    '|---|---:|---:|---:|---|',
    `| bare Express 5 | ${num(bare.requestsPerSecond)} | ${num(bare.p50Ms, 1)} | ${num(bare.p99Ms, 1)} | ${runList(http.bare)} |`,
    `| token-broker | ${num(broker.requestsPerSecond)} | ${num(broker.p50Ms, 1)} | ${num(broker.p99Ms, 1)} | ${runList(http.broker)} |`,
    `| **broker / bare** | **${ratio(throughputRatio)}** | ${ratio(broker.p50Ms / bare.p50Ms)} | **${ratio(p99Ratio)}** | |`,
    '',
    '## Signing: `ClientAssertionSigner.sign()` vs raw `crypto.sign`',
    '',
    'Same key (RSA 2048 / P-256), same padding, same input size (the JWS signing input of a real assertion); ' +
      'one thread, a fixed wall time per figure after a warm-up, taken in slices that alternate with the raw side so drift in machine speed hits both alike. ' +
      `Other CPU while signing: ${percent(signing.foreignCpuShare)}.`,
    '',
    '| algorithm | input bytes | signer ops/s | raw ops/s | signer / raw |',
    '|---|---:|---:|---:|---:|',
    ...signers.map(
      (s) => `| ${s.algorithm} | ${s.inputBytes} | ${num(s.signerOpsPerSecond)} | ${num(s.rawOpsPerSecond)} | ${ratio(s.signerOpsPerSecond / s.rawOpsPerSecond)} |`,
    ),
    '',
    ...(signing.backends ? keyBackendSection(signers, signing.backends) : []),
    '## Targets (docs/design.md §7)',
    '',
    '| figure | target | measured | result |',
    '|---|---|---:|---|',
    ...targets.map((t) => `| ${t.figure} | ${t.target} | ${ratio(t.measured)} | ${verdict(t.ok)} |`),
    '',
    ...clusterSection(cluster),
  ];
  return { markdown: lines.join('\n'), allTargetsMet: targets.every((t) => t.ok) && cluster.every(clusterTargetsMet) };
}
