// /metrics after a scripted run: the counters move by exactly what happened, and the gauges of the
// client-authentication material follow each credential's kind (certificate notAfter, the age of a
// secret file, the exp of a federated token) and move when the files change.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { createFederatedIssuer, type FederatedIssuer } from '../fakes/federated-issuer.ts';
import { freePort } from '../helpers/redis-server.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

let dir: TempDir;
let idp: SandboxIdp;
let tb: TestBroker;
let metricsPort: number;
let issuer: FederatedIssuer;
let secretFile: string;
let tokenFile: string;

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
  issuer = createFederatedIssuer();
  secretFile = dir.write('cdr-secret', 'a-client-secret\n');
  tokenFile = dir.write('wi.jwt', issuer.mint({ sub: 'system:serviceaccount:bi:token-broker', lifetimeSeconds: 3600 }));
  tb = await startTestBroker(
    {
      // Secret files are re-read this often besides watching their folder.
      server: { host: '127.0.0.1', certificateReloadSeconds: 1 },
      metrics: { port: metricsPort },
      credentials: [
        { id: 'cdr', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr', certificate: { certFile: good.certFile, keyFile: good.keyFile }, scopes: ['api.read'] },
        { id: 'refused', provider: 'oidc', issuer: idp.issuer, clientId: 'refused', certificate: { certFile: stranger.certFile, keyFile: stranger.keyFile } },
        { id: 'cdr-secret', provider: 'oidc', tokenEndpoint: idp.tokenEndpoint, clientId: 'cdr-secret', clientSecret: { file: secretFile } },
        { id: 'wi', provider: 'entra', tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47', clientId: '3f1e2d4c-5b6a-4789-9abc-def012345678', federatedToken: { file: tokenFile }, scopes: ['https://analysis.windows.net/powerbi/api/.default'] },
      ],
      callers: [{ id: 'jobs', apiKeySha256: sha256Hex('jobs-key'), allow: [{ credential: 'cdr' }, { credential: 'refused' }] }],
    },
    dir.path,
  );
});

after(async () => {
  await tb?.close();
  await idp?.close();
  dir?.remove();
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

test('material gauges per kind: certificate notAfter, secret file age, federated token exp; they move when the files change', async () => {
  const url = `http://127.0.0.1:${metricsPort}/metrics`;
  const first = await scrape(url);
  // Each kind has its own gauge, and only its credentials appear in it.
  assert.ok(first.has('token_broker_certificate_not_after_seconds{credential="cdr"}'));
  assert.ok(!first.has('token_broker_certificate_not_after_seconds{credential="cdr-secret"}'));
  assert.ok(!first.has('token_broker_certificate_not_after_seconds{credential="wi"}'));
  assert.deepEqual([...first.keys()].filter((k) => k.startsWith('token_broker_client_secret_file_age_seconds')), ['token_broker_client_secret_file_age_seconds{credential="cdr-secret"}']);
  assert.deepEqual([...first.keys()].filter((k) => k.startsWith('token_broker_federated_token_expiry_seconds')), ['token_broker_federated_token_expiry_seconds{credential="wi"}']);
  const age = first.get('token_broker_client_secret_file_age_seconds{credential="cdr-secret"}')!;
  assert.ok(age >= 0 && age < 86_400, `a file written just now: ${age}`);
  const written = JSON.parse(Buffer.from(readFileSync(tokenFile, 'utf8').split('.')[1]!, 'base64url').toString()) as { exp: number };
  assert.equal(first.get('token_broker_federated_token_expiry_seconds{credential="wi"}'), written.exp, 'the exp of the token in the file');

  // A rotated secret written with a modification time three days back (as a restored backup would be), and a rewritten token.
  writeFileSync(secretFile, 'the-next-client-secret\n');
  const threeDaysAgo = new Date(Date.now() - 3 * 86_400_000);
  utimesSync(secretFile, threeDaysAgo, threeDaysAgo);
  const later = Math.floor(Date.now() / 1000) + 7200;
  writeFileSync(tokenFile, issuer.mint({ sub: 'system:serviceaccount:bi:token-broker', exp: later }));
  let now = first;
  for (let i = 0; i < 400; i++) {
    now = await scrape(url);
    const movedAge = now.get('token_broker_client_secret_file_age_seconds{credential="cdr-secret"}')! >= 3 * 86_400 - 60;
    const movedExp = now.get('token_broker_federated_token_expiry_seconds{credential="wi"}') === later;
    if (movedAge && movedExp) break;
    await sleep(25);
  }
  assert.ok(now.get('token_broker_client_secret_file_age_seconds{credential="cdr-secret"}')! >= 3 * 86_400 - 60, 'the age follows the new file');
  assert.equal(now.get('token_broker_federated_token_expiry_seconds{credential="wi"}'), later, 'the exp follows the new token');

  // A token file that holds no token: the gauge goes away (nothing can be sent).
  writeFileSync(tokenFile, 'not a jwt');
  for (let i = 0; i < 400 && now.has('token_broker_federated_token_expiry_seconds{credential="wi"}'); i++) {
    await sleep(25);
    now = await scrape(url);
  }
  assert.ok(!now.has('token_broker_federated_token_expiry_seconds{credential="wi"}'), 'absent while the file holds no usable token');
});
