// Property-based: thousands of random and malformed requests at every route. None may get a 5xx
// or crash the broker; every error is problem+json, or { error, error_description } on the
// managed-identity endpoints.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import fc from 'fast-check';
import { ROUTES } from '../../src/http/route-table.ts';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

export const FUZZ_RUNS = 4000;

let dir: TempDir;
let idp: SandboxIdp;
let tb: TestBroker;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });

before(async () => {
  dir = tempDir();
  const files = await writeCredentialFiles(dir, 'cdr');
  idp = await startSandboxIdp({ clients: [{ clientId: 'cdr', certificatePem: files.cert.certPem }] });
  tb = await startTestBroker(
    {
      server: { host: '127.0.0.1', imdsSidecar: { enabled: true, caller: 'fuzzer' } },
      credentials: [{ id: 'cdr', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr', certificate: { certFile: files.certFile, keyFile: files.keyFile }, scopes: ['api.read', 'api.write'] }],
      callers: [
        {
          id: 'fuzzer',
          apiKeySha256: sha256Hex('fuzz-key'),
          identityHeaderSha256: sha256Hex('fuzz-identity'),
          allow: [{ credential: 'cdr' }],
          diagnostics: true,
          rateLimit: { requestsPerSecond: 100_000, burst: 100_000 },
        },
      ],
    },
    dir.path,
    { logLevel: 'warn' },
  );
});

after(async () => {
  agent.destroy();
  await tb.close();
  await idp.close();
  dir.remove();
});

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

function send(url: string, r: FuzzRequest): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    // Framed as HTTP clients frame bodies; an unframed GET body would be read as the next request.
    const headers = r.body ? { ...r.headers, 'content-length': String(r.body.length) } : r.headers;
    const req = request(`${url}${r.path}`, { method: r.method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (r.body) req.write(r.body);
    req.end();
  });
}

// Every path of the route table (its parameters filled in), plus two that are no route.
const routes = [...new Set(ROUTES.map((r) => r.path.replace(/:\w+/g, 'cdr'))), '/v1', '/'];
const managedIdentityPaths = ROUTES.filter((r) => r.family === 'managed-identity').map((r) => new RegExp(`^${r.path}/?$`, 'i'));
const signInPagePaths = ROUTES.filter((r) => r.family === 'sign-in-page').map((r) => new RegExp(`^${r.path}/?$`, 'i'));
const token = (s: string) => s.replace(/[^\x21-\x7e]/g, 'x');

const arbRequest: fc.Arbitrary<FuzzRequest> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
  path: fc.tuple(fc.constantFrom(...routes), fc.oneof(fc.constant(''), fc.webPath(), fc.webQueryParameters().map((q) => `?${q}`), fc.string().map((s) => `?resource=${encodeURIComponent(s)}&api-version=2019-08-01`))).map(([route, suffix]) => `${route}${suffix}`.replace(/[^\x21-\x7e]/g, '')),
  headers: fc.record(
    {
      authorization: fc.oneof(fc.constant('Bearer fuzz-key'), fc.string().map((s) => `Bearer ${token(s)}`), fc.constant('Bearer eyJhbGciOiJub25lIn0.e30.'), fc.string().map(token)),
      'content-type': fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'multipart/form-data'),
      'x-identity-header': fc.oneof(fc.constant('fuzz-identity'), fc.string().map(token)),
      metadata: fc.constantFrom('true', 'false', 'TRUE'),
      'x-request-id': fc.string({ maxLength: 200 }).map(token),
    },
    { requiredKeys: [] },
  ),
  body: fc.option(
    fc.oneof(
      fc.json().map((j) => Buffer.from(j)),
      fc.record({ credential: fc.oneof(fc.constant('cdr'), fc.string()), scope: fc.oneof(fc.constant('api.read'), fc.string(), fc.integer()), min_ttl_seconds: fc.oneof(fc.integer(), fc.double(), fc.string()) }, { requiredKeys: [] }).map((o) => Buffer.from(JSON.stringify(o))),
      fc.record({ assertion: fc.oneof(fc.string(), fc.constant('eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsiYSJdfQ.c2ln')), token_endpoint: fc.oneof(fc.webUrl(), fc.string()), provider: fc.string() }, { requiredKeys: [] }).map((o) => Buffer.from(JSON.stringify(o))),
      fc.record({ error: fc.oneof(fc.string(), fc.json()) }).map((o) => Buffer.from(JSON.stringify(o))),
      fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)),
      fc.string().map((s) => Buffer.from(s)),
    ),
    { nil: undefined },
  ),
});

test(`${FUZZ_RUNS} random and malformed requests: no 5xx, no crash, every error in its documented shape`, async () => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(arbRequest, async (r) => {
      const res = await send(tb.url, r);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.ok(res.status < 500, `${r.method} ${r.path} → ${res.status} ${res.body.slice(0, 300)}`);
      if (res.status >= 400 && r.method !== 'HEAD') {
        // As sent (the URL parser resolves dot segments); Express routing is lenient about a trailing slash and case.
        const sentPath = new URL(`${tb.url}${r.path}`).pathname;
        const managedIdentity = managedIdentityPaths.some((p) => p.test(sentPath));
        const what = `${r.method} ${r.path} → ${res.status} ${res.contentType} ${res.body.slice(0, 200)}`;
        if (signInPagePaths.some((p) => p.test(sentPath))) {
          // A person's browser opened it: a page that explains, never JSON or a stack trace.
          assert.match(res.contentType, /^text\/html/, what);
          assert.match(res.body, /Request id: /, what);
          assert.doesNotMatch(res.body, /at .*\.ts:\d+/, what);
          return;
        }
        const body = JSON.parse(res.body) as Record<string, unknown>;
        if (managedIdentity) {
          assert.equal(typeof body.error, 'string', what);
          assert.equal(typeof body.error_description, 'string', what);
        } else {
          assert.match(res.contentType, /^application\/problem\+json/, what);
          assert.equal(body.status, res.status, what);
          assert.equal(typeof body.code, 'string', what);
        }
      }
    }),
    { numRuns: FUZZ_RUNS, interruptAfterTimeLimit: 90_000 },
  );
  // Still up and still serving tokens.
  assert.equal((await fetch(`${tb.url}/livez`)).status, 200);
  assert.equal((await tb.token('fuzz-key', { credential: 'cdr' })).status, 200);
  console.log(`fuzz: statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
});
