// /metrics after a scripted run: the counters move by exactly what happened.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { freePort } from '../helpers/redis-server.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

let dir: TempDir;
let idp: SandboxIdp;
let tb: TestBroker;
let metricsPort: number;

/** Parses the Prometheus text format into "name{labels}" → value. */
function parse(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    values.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return values;
}

async function scrape(url: string) {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return parse(await res.text());
}

before(async () => {
  dir = tempDir();
  const good = await writeCredentialFiles(dir, 'good');
  const stranger = await writeCredentialFiles(dir, 'stranger');
  idp = await startSandboxIdp({ clients: [{ clientId: 'cdr', certificatePem: good.cert.certPem }, { clientId: 'refused', certificatePem: good.cert.certPem }] });
  metricsPort = await freePort();
  tb = await startTestBroker(
    {
      server: { host: '127.0.0.1' },
      metrics: { port: metricsPort },
      credentials: [
        { id: 'cdr', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr', certificate: { certFile: good.certFile, keyFile: good.keyFile }, scopes: ['api.read'] },
        { id: 'refused', provider: 'oidc', issuer: idp.issuer, clientId: 'refused', certificate: { certFile: stranger.certFile, keyFile: stranger.keyFile } },
      ],
      callers: [{ id: 'jobs', apiKeySha256: sha256Hex('jobs-key'), allow: [{ credential: 'cdr' }, { credential: 'refused' }] }],
    },
    dir.path,
  );
});

after(async () => {
  await tb.close();
  await idp.close();
  dir.remove();
});

test('counters move by exactly the scripted hits, miss and IdP refusal', async () => {
  const url = `http://127.0.0.1:${metricsPort}/metrics`;
  const before = await scrape(url);
  const statuses = [];
  statuses.push((await tb.token('jobs-key', { credential: 'cdr' })).status); // miss
  for (let i = 0; i < 3; i++) statuses.push((await tb.token('jobs-key', { credential: 'cdr' })).status); // hits
  statuses.push((await tb.token('jobs-key', { credential: 'refused' })).status); // IdP refusal
  assert.deepEqual(statuses, [200, 200, 200, 200, 502]);
  const after = await scrape(url);
  const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  assert.equal(delta('token_broker_token_requests_total{caller="jobs",credential="cdr",outcome="miss"}'), 1);
  assert.equal(delta('token_broker_token_requests_total{caller="jobs",credential="cdr",outcome="hit"}'), 3);
  assert.equal(delta('token_broker_token_requests_total{caller="jobs",credential="refused",outcome="error"}'), 1);
  assert.equal(delta('token_broker_idp_errors_total{credential="refused",code="invalid_client"}'), 1);
  assert.equal(delta('token_broker_idp_exchange_duration_seconds_count{credential="cdr",provider="oidc",result="success"}'), 1);
  assert.equal(delta('token_broker_idp_exchange_duration_seconds_count{credential="refused",provider="oidc",result="rejected"}'), 1);
  assert.equal(delta('token_broker_http_requests_total{route="/v1/token",status="200"}'), 4);
  assert.equal(delta('token_broker_http_requests_total{route="/v1/token",status="502"}'), 1);
  const notAfter = after.get('token_broker_certificate_not_after_seconds{credential="cdr"}')!;
  assert.ok(notAfter > Date.now() / 1000 + 86_400, 'certificate expiry exposed');
  const remaining = after.get('token_broker_token_remaining_seconds{credential="cdr"}')!;
  assert.ok(remaining > 3000 && remaining <= 3600);
  assert.ok(after.has('token_broker_process_cpu_seconds_total'), 'process metrics under the same prefix');
  // With a metrics port, the API port does not serve /metrics.
  assert.equal((await fetch(`${tb.url}/metrics`)).status, 404);
});

test('every metric the operations guide alerts on exists', async () => {
  const { readFileSync } = await import('node:fs');
  const names = new Set(readFileSync('docs/operations.md', 'utf8').match(/token_broker_[a-z_]+[a-z]/g));
  const exposed = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const known = new Set([...exposed.matchAll(/^# TYPE (token_broker_\w+)/gm)].map((m) => m[1]!));
  for (const name of names) {
    const base = name.replace(/_(bucket|count|sum)$/, '');
    assert.ok(known.has(base) || base === 'token_broker', `docs/operations.md names ${name}, which /metrics does not have`);
  }
});

test('the metrics port answers like the API port: 405 with Allow for a wrong method, 404 elsewhere, as problem+json', async () => {
  const base = `http://127.0.0.1:${metricsPort}`;
  const wrong = await fetch(`${base}/metrics`, { method: 'POST' });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get('allow'), 'GET, HEAD');
  assert.match(wrong.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(((await wrong.json()) as { status: number }).status, 405);
  const unknown = await fetch(`${base}/nope`);
  assert.equal(unknown.status, 404);
  assert.match(unknown.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.ok(unknown.headers.get('x-request-id'));
  await unknown.arrayBuffer();
});
