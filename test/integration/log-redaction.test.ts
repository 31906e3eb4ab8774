// docs/design.md §1, §6.4: "Tokens never appear in logs", "Callers never see an assertion", an audit line per
// issued token with a short hash, never the token. Captures every log line of a real broker (at
// trace level) across hits, misses, a refresh, a real IdP refusal, a wrong key and bad requests,
// then searches the whole capture for each secret.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { MIN_EXCHANGE_INTERVAL_MS } from '../../src/core/token-service.ts';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const JOBS_KEY = `jobs-${randomBytes(18).toString('base64url')}`;
const WRONG_KEY = `wrong-${randomBytes(18).toString('base64url')}`;

let dir: TempDir;
let idp: SandboxIdp;
let tb: TestBroker;
const keyPems: string[] = [];

interface Served {
  requestId: string;
  body: { access_token: string; cache: string; credential: string; scope: string };
  requestedScope: string;
}
const served: Served[] = [];
let refusal: { status: number; text: string; requestId: string };
let unauthenticatedText = '';
let badRequestText = '';

before(async () => {
  dir = tempDir();
  const [cdr, rogue, registered] = await Promise.all([
    writeCredentialFiles(dir, 'cdr'),
    // The broker signs with `rogue`, but the IdP has `registered` on file for that client:
    // oidc-provider refuses the assertion's signature (invalid_client) → broker 502 idp_rejected.
    writeCredentialFiles(dir, 'rogue'),
    writeCredentialFiles(dir, 'registered'),
  ]);
  keyPems.push(cdr.cert.keyPem, rogue.cert.keyPem, registered.cert.keyPem);
  idp = await startSandboxIdp({
    clients: [
      { clientId: 'cdr-broker', certificatePem: cdr.cert.certPem },
      { clientId: 'rogue-client', certificatePem: registered.cert.certPem },
    ],
  });
  tb = await startTestBroker(
    {
      credentials: [
        { id: 'cdr', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr-broker', certificate: { certFile: cdr.certFile, keyFile: cdr.keyFile }, scopes: ['api.read', 'api.write'] },
        { id: 'rogue', provider: 'oidc', issuer: idp.issuer, clientId: 'rogue-client', certificate: { certFile: rogue.certFile, keyFile: rogue.keyFile }, scopes: ['api.read'] },
      ],
      callers: [{ id: 'jobs', apiKeySha256: sha256Hex(JOBS_KEY), allow: [{ credential: 'cdr' }, { credential: 'rogue' }] }],
    },
    dir.path,
    { logLevel: 'trace' },
  );

  const fetchToken = async (body: { credential: string; scope?: string; min_ttl_seconds?: number }) => {
    const res = await tb.token(JOBS_KEY, body);
    const text = await res.text();
    assert.equal(res.status, 200, text);
    served.push({ requestId: res.headers.get('x-request-id')!, body: JSON.parse(text) as Served['body'], requestedScope: body.scope ?? 'api.read' });
  };
  await fetchToken({ credential: 'cdr' }); // miss
  await fetchToken({ credential: 'cdr', scope: 'api.read' }); // hit
  await fetchToken({ credential: 'cdr', scope: 'api.write' }); // miss (another key)
  await fetchToken({ credential: 'cdr', scope: 'api.write' }); // hit
  // Within MIN_EXCHANGE_INTERVAL_MS of its exchange a held token is served even if shorter than asked.
  await new Promise((r) => setTimeout(r, MIN_EXCHANGE_INTERVAL_MS));
  await fetchToken({ credential: 'cdr', scope: 'api.read', min_ttl_seconds: 3600 }); // cached token too short → refreshed

  const refused = await tb.token(JOBS_KEY, { credential: 'rogue' });
  refusal = { status: refused.status, text: await refused.text(), requestId: refused.headers.get('x-request-id')! };

  const wrong = await tb.token(WRONG_KEY, { credential: 'cdr' });
  assert.equal(wrong.status, 401);
  unauthenticatedText = await wrong.text();

  // Bad requests, one carrying the caller's key as a value: neither the body nor the key may be logged.
  for (const body of ['{"credential":"cdr",', JSON.stringify({ credential: 'cdr', client_secret: JOBS_KEY }), JSON.stringify({ credential: 'cdr', scope: 7 })]) {
    const res = await tb.token(JOBS_KEY, body);
    assert.equal(res.status, 400);
    badRequestText += await res.text();
  }
});

after(async () => {
  await tb?.close();
  await idp?.close();
  dir?.remove();
});

// ── the secrets to look for ──────────────────────────────────────────────────────────────────

/** 40-character slices of a PEM key: from its first, a middle and its last full base64 line, the
 *  whole body joined, and the private exponent / scalar `d` as a JWK would spell it. */
function keySlices(pem: string): string[] {
  const lines = pem.split('\n').filter((l) => l && !l.startsWith('-----'));
  const full = lines.filter((l) => l.length >= 40);
  const body = lines.join('');
  const d = createPrivateKey(pem).export({ format: 'jwk' }).d!;
  return [
    full[0]!.slice(0, 40),
    full[Math.floor(full.length / 2)]!.slice(10, 50),
    full.at(-1)!.slice(-40),
    body.slice(Math.floor(body.length / 2) - 20, Math.floor(body.length / 2) + 20),
    d.slice(0, 40),
    d.slice(-40),
  ];
}

function secretsInText(text: string): string[] {
  const found: string[] = [];
  const check = (label: string, secret: string) => {
    if (secret && text.includes(secret)) found.push(label);
  };
  if (/PRIVATE KEY/.test(text)) found.push('PEM "PRIVATE KEY" marker');
  for (const [i, s] of served.entries()) {
    check(`access token #${i}`, s.body.access_token);
    check(`access token #${i} signature`, s.body.access_token.split('.')[2] ?? '');
  }
  for (const [i, c] of idp.captured.entries()) {
    const [header, payload, signature] = c.assertion.split('.');
    check(`client assertion #${i}`, c.assertion);
    check(`client assertion #${i} signing input`, `${header}.${payload}`);
    check(`client assertion #${i} signature`, signature ?? '');
  }
  for (const [i, pem] of keyPems.entries()) {
    for (const [j, slice] of keySlices(pem).entries()) check(`private key #${i} slice ${j}`, slice);
  }
  check('caller API key', JOBS_KEY);
  check('wrong API key', WRONG_KEY);
  return found;
}

// ── assertions ───────────────────────────────────────────────────────────────────────────────

test('the scenario ran: tokens served (miss, hit, refreshed), a real IdP refusal, logs captured', () => {
  assert.deepEqual(
    served.map((s) => s.body.cache),
    ['miss', 'hit', 'miss', 'hit', 'refreshed'],
  );
  assert.equal(new Set(served.map((s) => s.body.access_token)).size, 3, 'three distinct tokens');
  assert.equal(refusal.status, 502, refusal.text);
  const problem = JSON.parse(refusal.text) as { code: string; idp_error: string; request_id: string };
  assert.equal(problem.code, 'idp_rejected');
  assert.equal(problem.idp_error, 'invalid_client');
  assert.equal(problem.request_id, refusal.requestId);
  const refusedAtIdp = idp.captured.filter((c) => c.clientId === 'rogue-client');
  assert.ok(refusedAtIdp.length >= 1 && refusedAtIdp.every((c) => c.status >= 400), 'the IdP saw and refused the rogue assertion');
  assert.equal(idp.captured.filter((c) => c.clientId === 'cdr-broker' && c.status === 200).length, 3);
  assert.ok(tb.logs.lines.length >= 10, `captured ${tb.logs.lines.length} lines`);
  const entries = tb.logs.entries();
  assert.ok(
    entries.some((e) => e.code === 'idp_rejected' && e.requestId === refusal.requestId),
    'the refusal is logged (so its line is among those searched)',
  );
});

test('no log line contains a token, an assertion, private key material or a caller key', () => {
  for (const [n, line] of tb.logs.lines.entries()) {
    const found = secretsInText(line);
    assert.deepEqual(found, [], `log line ${n} leaks ${found.join(', ')}: ${line.slice(0, 300)}`);
  }
  // And across line boundaries, in case something was split.
  assert.deepEqual(secretsInText(tb.logs.lines.join('')), []);
});

test('one audit line per served token: caller, credential, scope, cache outcome, a short token hash', () => {
  const audits = tb.logs.entries().filter((e) => e.event === 'token_served');
  assert.equal(audits.length, served.length, 'exactly one audit line per 200');
  for (const s of served) {
    const line = audits.find((e) => e.requestId === s.requestId);
    assert.ok(line, `audit line for request ${s.requestId}`);
    assert.equal(line.callerId, 'jobs');
    assert.equal(line.credentialId, 'cdr');
    assert.equal(line.scope, s.requestedScope);
    assert.equal(line.cacheOutcome, s.body.cache);
    const hashField = Object.keys(line).find((k) => /^token(Sha256|Hash)$/i.test(k));
    assert.ok(hashField, `a token hash field in ${JSON.stringify(Object.keys(line))}`);
    const hash = line[hashField] as string;
    assert.equal(typeof hash, 'string');
    assert.ok(hash.length >= 8 && hash.length <= 16, `short hash (${hash.length} chars)`);
    const digest = createHash('sha256').update(s.body.access_token).digest();
    assert.ok(
      digest.toString('base64url').startsWith(hash) || digest.toString('hex').startsWith(hash),
      'the hash is a prefix of the token SHA-256',
    );
  }
  // No audit line for anything that did not serve a token.
  const servedIds = new Set(served.map((s) => s.requestId));
  assert.ok(audits.every((e) => servedIds.has(e.requestId as string)));
});

test('the refusal problem, the 401 and the 400s carry no assertion, key or token', () => {
  assert.deepEqual(secretsInText(refusal.text), []);
  assert.doesNotMatch(refusal.text, /client_assertion"?\s*[:=]\s*"?ey/i, 'no client_assertion value');
  assert.doesNotMatch(refusal.text, /eyJ[\w-]+\.eyJ[\w-]+\./, 'no compact JWS of any kind');
  assert.deepEqual(secretsInText(unauthenticatedText), []);
  assert.deepEqual(secretsInText(badRequestText), []);
});
