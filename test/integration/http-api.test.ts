// The HTTP edge against docs/design.md §5 (contract): every malformed or unauthorised request gets the
// right 4xx as application/problem+json with the contract's fields, never a 5xx; plus the positive
// paths (token, credentials, health, headers). A real broker talks to a real oidc-provider sandbox.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const JOBS_KEY = 'jobs-key';
const NONE_KEY = 'readers-none-key';
const PROBLEM_JSON = 'application/problem+json';

let dir: TempDir;
let idp: SandboxIdp;
let tb: TestBroker;

before(async () => {
  dir = tempDir();
  const [cdr, other] = await Promise.all([writeCredentialFiles(dir, 'cdr'), writeCredentialFiles(dir, 'other')]);
  idp = await startSandboxIdp({ clients: [{ clientId: 'cdr-broker', certificatePem: cdr.cert.certPem }] });
  tb = await startTestBroker(
    {
      server: { logLevel: 'warn' },
      credentials: [
        {
          id: 'cdr',
          provider: 'oidc',
          issuer: idp.issuer,
          clientId: 'cdr-broker',
          certificate: { certFile: cdr.certFile, keyFile: cdr.keyFile },
          scopes: ['api.read', 'api.write'],
        },
        {
          id: 'other',
          provider: 'oidc',
          issuer: idp.issuer,
          clientId: 'other-client',
          certificate: { certFile: other.certFile, keyFile: other.keyFile },
          scopes: ['api.read'],
        },
      ],
      callers: [
        { id: 'jobs', apiKeySha256: sha256Hex(JOBS_KEY), allow: [{ credential: 'cdr', scopes: ['api.read'] }] },
        { id: 'readers-none', apiKeySha256: sha256Hex(NONE_KEY), allow: [] },
      ],
    },
    dir.path,
    { logLevel: 'warn' },
  );
});

after(async () => {
  await tb?.close();
  await idp?.close();
  dir?.remove();
});

// ── request helpers ──────────────────────────────────────────────────────────────────────────

const url = (path: string) => `${tb.url}${path}`;
const auth = (key = JOBS_KEY) => ({ authorization: `Bearer ${key}` });

/** POST /v1/token as `jobs` with a JSON value or raw text. */
function postToken(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url('/v1/token'), {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** POST /v1/token with bytes (fetch adds no content-type for a Uint8Array). */
function postBytes(body: Uint8Array, headers: Record<string, string>): Promise<Response> {
  return fetch(url('/v1/token'), { method: 'POST', headers, body: new Uint8Array(body) });
}

/** node:http, for what fetch normalises away (header values with bytes outside ASCII, no body headers). */
function nodeRequest(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Response> {
  const { hostname, port } = new URL(tb.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0, headers: h }));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Raw bytes on a socket, for requests no HTTP client will send; returns the raw response text. */
function rawExchange(text: string): Promise<string> {
  const { hostname, port } = new URL(tb.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(text));
    let out = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (out += d));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

interface Problem {
  type: unknown;
  title: unknown;
  status: unknown;
  code: unknown;
  detail?: unknown;
  request_id: unknown;
  [k: string]: unknown;
}

/** Asserts the contract's problem shape and returns the parsed body. */
async function assertProblem(res: Response, status: number, code: string): Promise<Problem> {
  const text = await res.text();
  assert.ok(res.status < 500, `no 5xx: got ${res.status} ${text}`);
  assert.equal(res.status, status, `status (body: ${text})`);
  assert.equal((res.headers.get('content-type') ?? '').split(';')[0], PROBLEM_JSON);
  const body = JSON.parse(text) as Problem;
  assert.equal(typeof body.type, 'string');
  assert.ok((body.type as string).length > 0, 'type is not empty');
  assert.equal(typeof body.title, 'string');
  assert.ok((body.title as string).length > 0, 'title is not empty');
  assert.equal(body.status, res.status, 'body status equals the HTTP status');
  assert.equal(body.code, code);
  const requestId = res.headers.get('x-request-id');
  assert.ok(requestId, 'X-Request-Id header present');
  assert.equal(body.request_id, requestId, 'request_id equals the X-Request-Id header');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  return body;
}

// ── positive paths (run first: the first token request must be a cache miss) ─────────────────

describe('positive paths', () => {
  test('the auth scheme is case-insensitive (RFC 9110 §11.1): lowercase bearer works', async () => {
    const res = await fetch(url('/v1/credentials'), { headers: { authorization: `bearer ${JOBS_KEY}` } });
    assert.equal(res.status, 200);
  });

  test('a wrong method on a known path is 405 with Allow', async () => {
    const res = await fetch(url('/v1/token'), { headers: auth() });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
  });

  test('an anonymous request is refused before its body is read (401, not 400/413)', async () => {
    const res = await fetch(url('/v1/token'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{bad' + 'x'.repeat(20_000) });
    assert.equal(res.status, 401);
  });
  test('POST /v1/token: 200 with the contract fields, no-store, cache miss then hit', async () => {
    const first = await postToken({ credential: 'cdr' });
    const firstText = await first.text();
    assert.equal(first.status, 200, firstText);
    assert.equal(first.headers.get('cache-control'), 'no-store');
    assert.match(first.headers.get('content-type') ?? '', /^application\/json\b/);
    assert.ok(first.headers.get('x-request-id'));
    const a = JSON.parse(firstText) as Record<string, unknown>;
    for (const field of ['access_token', 'token_type', 'expires_in', 'expires_on', 'scope', 'credential', 'cache']) {
      assert.ok(field in a, `field ${field} present`);
    }
    assert.equal(typeof a.access_token, 'string');
    assert.ok((a.access_token as string).length > 20);
    assert.equal(a.token_type, 'Bearer');
    assert.ok(Number.isInteger(a.expires_in) && (a.expires_in as number) > 3000 && (a.expires_in as number) <= 3600, `expires_in ${String(a.expires_in)}`);
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Number.isInteger(a.expires_on) && Math.abs((a.expires_on as number) - (now + (a.expires_in as number))) <= 2, 'expires_on = now + expires_in');
    assert.equal(a.scope, 'api.read', 'scope defaults to the first configured scope');
    assert.equal(a.credential, 'cdr');
    assert.equal(a.cache, 'miss');

    const second = await postToken({ credential: 'cdr', scope: 'api.read', min_ttl_seconds: 300 });
    assert.equal(second.status, 200);
    assert.equal(second.headers.get('cache-control'), 'no-store');
    const b = (await second.json()) as Record<string, unknown>;
    assert.equal(b.cache, 'hit');
    assert.equal(b.access_token, a.access_token);
    assert.equal(b.scope, 'api.read');
    assert.equal(idp.captured.filter((c) => c.status === 200).length, 1, 'one exchange at the IdP');
  });

  test('GET /v1/credentials lists only the allowed credential with its allowed scopes', async () => {
    const res = await fetch(url('/v1/credentials'), { headers: auth() });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as { credentials: { id: string; provider: string; scopes: string[] }[] };
    assert.deepEqual(
      body.credentials.map((c) => c.id),
      ['cdr'],
    );
    assert.equal(body.credentials[0]!.provider, 'oidc');
    assert.deepEqual(body.credentials[0]!.scopes, ['api.read']);
    const text = JSON.stringify(body);
    assert.doesNotMatch(text, /PRIVATE KEY|keyFile|certFile/);

    const none = await fetch(url('/v1/credentials'), { headers: auth(NONE_KEY) });
    assert.equal(none.status, 200);
    assert.deepEqual(((await none.json()) as { credentials: unknown[] }).credentials, []);
  });

  test('/livez 200', async () => {
    const res = await fetch(url('/livez'));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  test('/readyz 200 with JSON detail', async () => {
    const res = await fetch(url('/readyz'));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/);
    const body = (await res.json()) as { status: string; checks: { certificates: { credential: string; status: string }[] } };
    assert.ok(['ok', 'degraded'].includes(body.status), body.status);
    assert.ok(body.checks && typeof body.checks === 'object');
    assert.deepEqual(body.checks.certificates.map((c) => c.credential).sort(), ['cdr', 'other']);
    for (const c of body.checks.certificates) assert.equal(c.status, 'ok');
  });

  test('helmet headers on success and error responses, no x-powered-by', async () => {
    for (const res of [await fetch(url('/livez')), await fetch(url('/nope')), await postToken({ credential: 'cdr' })]) {
      await res.arrayBuffer();
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.ok(res.headers.get('content-security-policy'), 'content-security-policy');
      assert.ok(res.headers.get('x-frame-options'), 'x-frame-options');
      assert.equal(res.headers.get('x-powered-by'), null);
    }
  });

  test('X-Request-Id: a valid id is echoed in the header and the problem body', async () => {
    const id = 'job-42.run:7_A-b';
    const res = await postToken({ credential: 'nope' }, { 'x-request-id': id });
    assert.equal(res.headers.get('x-request-id'), id);
    const body = await assertProblem(res, 404, 'unknown_credential');
    assert.equal(body.request_id, id);
    const ok = await fetch(url('/livez'), { headers: { 'x-request-id': id } });
    assert.equal(ok.headers.get('x-request-id'), id);
  });

  test('X-Request-Id: a generated id when none is sent', async () => {
    const res = await fetch(url('/livez'));
    assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  test('X-Request-Id: a raw newline never reaches the app (Node rejects the request line) and the broker keeps serving', async () => {
    const out = await rawExchange(
      'POST /v1/token HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc\ndef\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.doesNotMatch(out, /abc|def/);
    const res = await fetch(url('/livez'));
    assert.equal(res.status, 200);
  });

  test('a trailing space after the key is optional whitespace, stripped by the HTTP parser (RFC 9110 §5.5): same key', async () => {
    const out = await rawExchange(
      `POST /v1/token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${JOBS_KEY} \r\nContent-Type: application/json\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{"credential":"cdr"}`,
    );
    assert.match(out, /^HTTP\/1\.1 200 /);
  });
});

// ── the table: malformed or unauthorised requests ────────────────────────────────────────────

interface Row {
  name: string;
  request: () => Promise<Response>;
  status: number;
  code: string;
  /** Extra checks on the response and parsed body. */
  check?: (res: Response, body: Problem) => void;
}

const HUGE_KEY = 'k'.repeat(10 * 1024);
const unauthenticatedDetails: { name: string; detail: unknown; wwwAuthenticate: string | null }[] = [];
const recordUnauthenticated = (name: string) => (res: Response, body: Problem) => {
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/);
  unauthenticatedDetails.push({ name, detail: body.detail, wwwAuthenticate: res.headers.get('www-authenticate') });
};
const idReplaced = (sent: string) => (res: Response, body: Problem) => {
  const id = res.headers.get('x-request-id') ?? '';
  assert.notEqual(id, sent);
  assert.match(id, /^[0-9a-f-]{36}$/, 'a generated id replaces the invalid one');
  assert.equal(body.request_id, id);
};
const namesField = (field: string) => (_res: Response, body: Problem) => {
  assert.match(String(body.detail), new RegExp(field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
};

const rows: Row[] = [
  // wrong JSON types, field by field
  { name: 'credential is a number', request: () => postToken({ credential: 42 }), status: 400, code: 'invalid_request', check: namesField('credential') },
  { name: 'credential is null', request: () => postToken({ credential: null }), status: 400, code: 'invalid_request', check: namesField('credential') },
  { name: 'credential is an array', request: () => postToken({ credential: ['cdr'] }), status: 400, code: 'invalid_request', check: namesField('credential') },
  { name: 'credential is an object', request: () => postToken({ credential: { id: 'cdr' } }), status: 400, code: 'invalid_request', check: namesField('credential') },
  { name: 'credential is a boolean', request: () => postToken({ credential: true }), status: 400, code: 'invalid_request' },
  { name: 'credential is an empty string', request: () => postToken({ credential: '' }), status: 400, code: 'invalid_request' },
  { name: 'credential is "__proto__"', request: () => postToken('{"credential":"__proto__"}'), status: 404, code: 'unknown_credential' },
  { name: 'credential is "constructor"', request: () => postToken({ credential: 'constructor' }), status: 404, code: 'unknown_credential' },
  { name: 'credential is "toString"', request: () => postToken({ credential: 'toString' }), status: 404, code: 'unknown_credential' },
  { name: 'credential nested 5000 arrays deep', request: () => postToken(`{"credential":${'['.repeat(5000)}${']'.repeat(5000)}}`), status: 400, code: 'invalid_request' },
  { name: 'credential is 65 characters', request: () => postToken({ credential: 'c'.repeat(65) }), status: 400, code: 'invalid_request' },
  { name: 'scope is a number', request: () => postToken({ credential: 'cdr', scope: 7 }), status: 400, code: 'invalid_request', check: namesField('scope') },
  { name: 'scope is an array', request: () => postToken({ credential: 'cdr', scope: ['api.read'] }), status: 400, code: 'invalid_request' },
  { name: 'scope longer than 2048 characters', request: () => postToken({ credential: 'cdr', scope: 's'.repeat(2049) }), status: 400, code: 'invalid_request' },
  { name: 'resource is an empty string', request: () => postToken({ credential: 'cdr', resource: '' }), status: 400, code: 'invalid_request' },
  { name: 'scope is null', request: () => postToken({ credential: 'cdr', scope: null }), status: 400, code: 'invalid_request' },
  { name: 'resource is a number', request: () => postToken({ credential: 'cdr', resource: 1 }), status: 400, code: 'invalid_request' },
  { name: 'min_ttl_seconds is a string', request: () => postToken({ credential: 'cdr', min_ttl_seconds: '300' }), status: 400, code: 'invalid_request', check: namesField('min_ttl_seconds') },
  { name: 'min_ttl_seconds is negative', request: () => postToken({ credential: 'cdr', min_ttl_seconds: -1 }), status: 400, code: 'invalid_request' },
  { name: 'min_ttl_seconds is a fraction', request: () => postToken({ credential: 'cdr', min_ttl_seconds: 1.5 }), status: 400, code: 'invalid_request' },
  { name: 'min_ttl_seconds is huge', request: () => postToken({ credential: 'cdr', min_ttl_seconds: 1e12 }), status: 400, code: 'invalid_request' },
  { name: 'min_ttl_seconds overflows to Infinity (1e400)', request: () => postToken('{"credential":"cdr","min_ttl_seconds":1e400}'), status: 400, code: 'invalid_request' },
  { name: 'min_ttl_seconds is a boolean', request: () => postToken({ credential: 'cdr', min_ttl_seconds: true }), status: 400, code: 'invalid_request' },
  // missing / extra fields
  { name: 'credential missing (empty object)', request: () => postToken({}), status: 400, code: 'invalid_request', check: namesField('credential') },
  { name: 'credential missing, scope given', request: () => postToken({ scope: 'api.read' }), status: 400, code: 'invalid_request' },
  { name: 'unknown extra field', request: () => postToken({ credential: 'cdr', client_secret: 'x' }), status: 400, code: 'invalid_request', check: namesField('client_secret') },
  { name: '__proto__ key', request: () => postToken('{"credential":"cdr","__proto__":{"scope":"api.write"}}'), status: 400, code: 'invalid_request' },
  { name: 'constructor key', request: () => postToken('{"credential":"cdr","constructor":{"prototype":{}}}'), status: 400, code: 'invalid_request' },
  { name: 'nested __proto__ as the credential value', request: () => postToken('{"credential":{"__proto__":{"x":1}}}'), status: 400, code: 'invalid_request' },
  // wrong top-level JSON
  { name: 'top-level array', request: () => postToken('[{"credential":"cdr"}]'), status: 400, code: 'invalid_request' },
  { name: 'top-level string', request: () => postToken('"cdr"'), status: 400, code: 'invalid_request' },
  { name: 'top-level number', request: () => postToken('42'), status: 400, code: 'invalid_request' },
  { name: 'top-level null', request: () => postToken('null'), status: 400, code: 'invalid_request' },
  { name: 'top-level true', request: () => postToken('true'), status: 400, code: 'invalid_request' },
  { name: 'empty body with a JSON content type', request: () => postToken(''), status: 400, code: 'invalid_request' },
  { name: 'whitespace-only body', request: () => postToken('   \n'), status: 400, code: 'invalid_request' },
  // bad JSON
  { name: 'truncated JSON', request: () => postToken('{"credential":"cd'), status: 400, code: 'invalid_request' },
  { name: 'trailing comma', request: () => postToken('{"credential":"cdr",}'), status: 400, code: 'invalid_request' },
  { name: 'single quotes', request: () => postToken("{'credential':'cdr'}"), status: 400, code: 'invalid_request' },
  { name: 'JSON followed by garbage', request: () => postToken('{"credential":"cdr"} x'), status: 400, code: 'invalid_request' },
  { name: 'invalid UTF-8 bytes', request: () => postBytes(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { ...auth(), 'content-type': 'application/json' }), status: 400, code: 'invalid_request' },
  // size, media type, encoding
  { name: 'oversize body (> 16 KiB)', request: () => postToken({ credential: 'cdr', scope: 'a'.repeat(17 * 1024) }), status: 413, code: 'invalid_request' },
  { name: 'oversize body without Content-Length (chunked)', request: () => nodeRequest('POST', '/v1/token', { ...auth(), 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, Buffer.from(JSON.stringify({ credential: 'cdr', scope: 'b'.repeat(20 * 1024) }))), status: 413, code: 'invalid_request' },
  { name: 'content-type text/plain', request: () => postToken({ credential: 'cdr' }, { 'content-type': 'text/plain' }), status: 415, code: 'invalid_request' },
  { name: 'content-type form-urlencoded', request: () => postToken('credential=cdr', { 'content-type': 'application/x-www-form-urlencoded' }), status: 415, code: 'invalid_request' },
  { name: 'no content-type', request: () => postBytes(Buffer.from('{"credential":"cdr"}'), auth()), status: 415, code: 'invalid_request' },
  { name: 'content-type application/merge-patch+json', request: () => postToken({ credential: 'cdr' }, { 'content-type': 'application/merge-patch+json' }), status: 415, code: 'invalid_request' },
  { name: 'charset=utf-16 declared on a UTF-8 body', request: () => postToken({ credential: 'cdr' }, { 'content-type': 'application/json; charset=utf-16' }), status: 415, code: 'invalid_request' },
  { name: 'content-type application/json; charset=latin1', request: () => postToken({ credential: 'cdr' }, { 'content-type': 'application/json; charset=latin1' }), status: 415, code: 'invalid_request' },
  { name: 'content-encoding gzip with garbage', request: () => postBytes(Buffer.from('definitely not gzip'), { ...auth(), 'content-type': 'application/json', 'content-encoding': 'gzip' }), status: 400, code: 'invalid_request' },
  { name: 'content-encoding unknown', request: () => postBytes(Buffer.from('{"credential":"cdr"}'), { ...auth(), 'content-type': 'application/json', 'content-encoding': 'x-custom' }), status: 415, code: 'invalid_request' },
  { name: 'gzip bomb inflating past the limit', request: () => postBytes(gzipSync(Buffer.from(`{"credential":"cdr","scope":"${'z'.repeat(1024 * 1024)}"}`)), { ...auth(), 'content-type': 'application/json', 'content-encoding': 'gzip' }), status: 413, code: 'invalid_request' },
  // credential and scope authorisation
  { name: 'unknown credential', request: () => postToken({ credential: 'nope' }), status: 404, code: 'unknown_credential' },
  { name: 'credential the caller is not allowed', request: () => postToken({ credential: 'other' }), status: 403, code: 'forbidden' },
  { name: 'caller with an empty allow list', request: () => postToken({ credential: 'cdr' }, auth(NONE_KEY)), status: 403, code: 'forbidden' },
  { name: 'scope not configured for the credential', request: () => postToken({ credential: 'cdr', scope: 'api.admin' }), status: 403, code: 'forbidden' },
  { name: 'scope configured but not allowed for the caller', request: () => postToken({ credential: 'cdr', scope: 'api.write' }), status: 403, code: 'forbidden' },
  { name: 'allowed scope plus a disallowed one', request: () => postToken({ credential: 'cdr', scope: 'api.read api.write' }), status: 403, code: 'forbidden' },
  { name: 'both scope and resource', request: () => postToken({ credential: 'cdr', scope: 'api.read', resource: 'https://api.sandbox.test' }), status: 400, code: 'invalid_request' },
  { name: 'resource on an oidc credential', request: () => postToken({ credential: 'cdr', resource: 'https://api.sandbox.test' }), status: 400, code: 'invalid_request' },
  // authentication: one 401 for every failure
  { name: 'missing Authorization', request: () => postToken({ credential: 'cdr' }, { authorization: '' }), status: 401, code: 'unauthenticated', check: recordUnauthenticated('missing (empty header)') },
  { name: 'no Authorization header at all', request: () => fetch(url('/v1/token'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"credential":"cdr"}' }), status: 401, code: 'unauthenticated', check: recordUnauthenticated('missing') },
  { name: 'wrong key', request: () => postToken({ credential: 'cdr' }, auth('not-the-key')), status: 401, code: 'unauthenticated', check: recordUnauthenticated('wrong key') },
  { name: 'the key hash instead of the key', request: () => postToken({ credential: 'cdr' }, auth(sha256Hex(JOBS_KEY))), status: 401, code: 'unauthenticated', check: recordUnauthenticated('hash as key') },
  { name: 'Basic scheme with the key', request: () => postToken({ credential: 'cdr' }, { authorization: `Basic ${Buffer.from(`jobs:${JOBS_KEY}`).toString('base64')}` }), status: 401, code: 'unauthenticated', check: recordUnauthenticated('basic') },
  { name: 'Bearer with an empty value', request: () => postToken({ credential: 'cdr' }, { authorization: 'Bearer ' }), status: 401, code: 'unauthenticated', check: recordUnauthenticated('empty bearer') },
  { name: 'Bearer with a huge (10 KB) value', request: () => postToken({ credential: 'cdr' }, auth(HUGE_KEY)), status: 401, code: 'unauthenticated', check: recordUnauthenticated('huge') },
  { name: 'key with a trailing non-breaking space (not stripped as OWS)', request: () => nodeRequest('POST', '/v1/token', { authorization: `Bearer ${JOBS_KEY}\u00a0`, 'content-type': 'application/json' }, Buffer.from('{"credential":"cdr"}')), status: 401, code: 'unauthenticated', check: recordUnauthenticated('trailing nbsp') },
  { name: 'key followed by a space and more text', request: () => postToken({ credential: 'cdr' }, auth(`${JOBS_KEY} x`)), status: 401, code: 'unauthenticated', check: recordUnauthenticated('key + space + text') },
  { name: 'two spaces between scheme and key', request: () => postToken({ credential: 'cdr' }, { authorization: `Bearer  ${JOBS_KEY}` }), status: 401, code: 'unauthenticated', check: recordUnauthenticated('double space') },
  { name: 'key only, no scheme', request: () => postToken({ credential: 'cdr' }, { authorization: JOBS_KEY }), status: 401, code: 'unauthenticated', check: recordUnauthenticated('no scheme') },
  { name: 'GET /v1/credentials without a key', request: () => fetch(url('/v1/credentials')), status: 401, code: 'unauthenticated', check: recordUnauthenticated('credentials list') },
  // routes and methods
  { name: 'unknown route', request: () => fetch(url('/nope')), status: 404, code: 'invalid_request' },
  { name: 'unknown route under /v1 (authenticated)', request: () => fetch(url('/v1/nope'), { headers: auth() }), status: 404, code: 'invalid_request' },
  { name: 'GET /v1/token (authenticated): 405 with Allow', request: () => fetch(url('/v1/token'), { headers: auth() }), status: 405, code: 'invalid_request' },
  { name: 'DELETE /v1/credentials (authenticated): 405 with Allow', request: () => fetch(url('/v1/credentials'), { method: 'DELETE', headers: auth() }), status: 405, code: 'invalid_request' },
  { name: 'path traversal attempt', request: () => nodeRequest('GET', '/v1/../../etc/passwd', auth()), status: 404, code: 'invalid_request' },
  // request ids that must be replaced
  { name: 'X-Request-Id too long (200 chars) is replaced', request: () => postToken({ credential: 'nope' }, { 'x-request-id': 'r'.repeat(200) }), status: 404, code: 'unknown_credential', check: idReplaced('r'.repeat(200)) },
  { name: 'X-Request-Id of 129 characters is replaced', request: () => postToken({ credential: 'nope' }, { 'x-request-id': 'q'.repeat(129) }), status: 404, code: 'unknown_credential', check: idReplaced('q'.repeat(129)) },
  { name: 'X-Request-Id of 128 characters is echoed', request: () => postToken({ credential: 'nope' }, { 'x-request-id': 'e'.repeat(128) }), status: 404, code: 'unknown_credential', check: (res, body) => { assert.equal(res.headers.get('x-request-id'), 'e'.repeat(128)); assert.equal(body.request_id, 'e'.repeat(128)); } },
  { name: 'X-Request-Id with a tab is replaced', request: () => postToken({ credential: 'nope' }, { 'x-request-id': 'abc\tdef' }), status: 404, code: 'unknown_credential', check: idReplaced('abc\tdef') },
  { name: 'X-Request-Id with spaces and markup is replaced', request: () => postToken({ credential: 'nope' }, { 'x-request-id': 'a b <script>' }), status: 404, code: 'unknown_credential', check: idReplaced('a b <script>') },
  { name: 'X-Request-Id with a non-ASCII byte is replaced', request: () => nodeRequest('GET', '/nope', { 'x-request-id': 'caf\u00e9' }), status: 404, code: 'invalid_request', check: idReplaced('caf\u00e9') },
  { name: 'X-Request-Id with an escaped newline is replaced', request: () => postToken({ credential: 'nope' }, { 'x-request-id': 'abc%0d%0aSet-Cookie:x' }), status: 404, code: 'unknown_credential', check: idReplaced('abc%0d%0aSet-Cookie:x') },
];

describe('malformed or unauthorised requests', () => {
  for (const row of rows) {
    test(`${row.name} → ${row.status} ${row.code}`, async () => {
      const res = await row.request();
      const body = await assertProblem(res, row.status, row.code);
      row.check?.(res, body);
    });
  }

  test('every 401 carries the same detail and WWW-Authenticate (no oracle)', () => {
    assert.ok(unauthenticatedDetails.length >= 10, `all 401 rows ran (${unauthenticatedDetails.length})`);
    const details = new Set(unauthenticatedDetails.map((d) => JSON.stringify(d.detail)));
    assert.equal(details.size, 1, `one detail text: ${[...details].join(' | ')}`);
    const challenges = new Set(unauthenticatedDetails.map((d) => d.wwwAuthenticate));
    assert.equal(challenges.size, 1);
  });

  test('the table has at least 35 rows', () => {
    assert.ok(rows.length >= 35, String(rows.length));
  });

  test('none of the refused requests reached the IdP', () => {
    assert.equal(idp.captured.length, 1, 'only the one positive exchange');
  });
});
