// An IdP that answers, but with something the broker must not take on trust (docs/operations.md,
// "Misbehaving identity providers"): a discovery document that downgrades the token endpoint to
// plain http, an error_description that echoes the client assertion, and token lifetimes that are
// zero, negative, unparsable, absurdly long, or shorter than the caller's min_ttl_seconds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import jwt from 'jsonwebtoken';
import { MIN_EXCHANGE_INTERVAL_MS } from '../../src/core/token-service.ts';
import { startMisbehavingIdp, type MisbehavingIdp } from '../fakes/misbehaving-idp.ts';
import { startBrokerProcess } from '../helpers/broker-process.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { POWERBI_SCOPE, entraCredential } from '../helpers/entra-fixture.ts';
import { redisSkipReason, startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startTestBroker, waitUntilReady, type TestBroker } from '../helpers/test-broker.ts';

const KEY = 'answers-key';
const DIAG_KEY = 'answers-diagnostics-key';
const ECHO_TENANT = '22222222-0000-4000-8000-000000000001';
const skipRedis = redisSkipReason();

let dir: TempDir;
let files: CredentialFiles;
let idp: MisbehavingIdp;

function oidc(id: string, extra: Record<string, unknown>) {
  return { id, provider: 'oidc', clientId: id, certificate: { certFile: files.certFile, keyFile: files.keyFile }, timeoutMs: 5000, retries: 0, ...extra };
}

function config(credentials: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  return {
    credentials,
    callers: [
      { id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: credentials.map((c) => ({ credential: c.id })), rateLimit: { requestsPerSecond: 10_000, burst: 10_000 } },
      { id: 'engineers', apiKeySha256: sha256Hex(DIAG_KEY), diagnostics: true },
    ],
    ...extra,
  };
}

async function problemOf(res: Response) {
  assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  return (await res.json()) as Record<string, any>;
}

/** A JWT access token with the given exp (the broker never verifies it, only reads exp). */
function jwtAccessToken(expSeconds: number) {
  return jwt.sign({ sub: 'svc', exp: expSeconds }, 'not-a-real-key-only-a-shape', { algorithm: 'HS256', noTimestamp: true });
}

before(async () => {
  dir = tempDir();
  files = await writeCredentialFiles(dir, 'answers');
  idp = await startMisbehavingIdp();
});
after(async () => {
  await idp?.close();
  dir?.remove();
});

describe('discovery that downgrades the token endpoint', () => {
  test('an https issuer whose document names an http token_endpoint is refused: idp_rejected naming the document and the field; nothing is posted', async () => {
    const tlsIdp = await startMisbehavingIdp({ tls: true });
    const issuer = `${tlsIdp.url}/realms/ehr`;
    const plaintext = idp.route('/downgraded/token', { kind: 'json', body: { access_token: 'served-in-plaintext', token_type: 'Bearer', expires_in: 600 } });
    tlsIdp.route('/realms/ehr/.well-known/openid-configuration', { kind: 'json', body: { issuer, token_endpoint: plaintext } });
    const caFile = dir.write('misbehaving-ca.pem', tlsIdp.caPem!);
    // A broker process, so the test CA is trusted the way an operator would add one.
    const broker = await startBrokerProcess(config([oidc('downgraded', { issuer })]), dir.path, 'downgrade', { NODE_EXTRA_CA_CERTS: caFile });
    try {
      const res = await broker.token(KEY, { credential: 'downgraded' });
      const body = await problemOf(res);
      assert.equal(res.status, 502, JSON.stringify(body));
      assert.equal(body.code, 'idp_rejected');
      assert.equal(body.idp_error, 'invalid_discovery');
      assert.ok(body.detail.includes(`${issuer}/.well-known/openid-configuration`), body.detail);
      assert.match(body.detail, /token_endpoint/);
      assert.match(body.detail, /http:\/\/127\.0\.0\.1/);
      assert.equal(tlsIdp.count('/realms/ehr/.well-known/openid-configuration'), 1, 'the document was fetched over TLS');
      assert.equal(idp.count('/downgraded/token'), 0, 'no assertion was posted in plaintext');
    } finally {
      await broker.stop();
      await tlsIdp.close();
    }
  });

  test('an http issuer (tests, the demo) may name an http token endpoint; another host than the issuer is logged once', async () => {
    const issuer = `${idp.url}/issuers/elsewhere`;
    const port = new URL(idp.url).port;
    idp.route('/elsewhere/token', { kind: 'json', body: () => ({ access_token: `elsewhere-${Math.random()}`, token_type: 'Bearer', expires_in: 600 }) });
    idp.route('/issuers/elsewhere/.well-known/openid-configuration', { kind: 'json', body: { issuer, token_endpoint: `http://localhost:${port}/elsewhere/token` } });
    const tb = await startTestBroker(config([oidc('elsewhere', { issuer, scopes: ['a', 'b'] })]), dir.path);
    try {
      for (const scope of ['a', 'b']) assert.equal((await tb.token(KEY, { credential: 'elsewhere', scope })).status, 200);
      assert.equal(idp.count('/elsewhere/token'), 2);
      const notes = tb.logs.entries().filter((e) => String(e.msg).startsWith('discovery points the token endpoint at another host'));
      assert.equal(notes.length, 1, tb.logs.text);
      assert.equal(notes[0]!.tokenEndpoint, `http://localhost:${port}/elsewhere/token`);
    } finally {
      await tb.close();
    }
  });
});

describe('an IdP that echoes the client assertion in error_description', () => {
  let redis: TestRedis | undefined;
  let tb: TestBroker;
  let monitor: ReturnType<typeof spawn> | undefined;
  let monitored = '';

  before(async () => {
    if (skipRedis) return;
    const echo = (form: URLSearchParams) => ({
      error: 'invalid_client',
      error_description: `AADSTS7000215: could not validate client_assertion=${form.get('client_assertion')} (assertion ${form.get('client_assertion')}); client_secret=hunter2hunter2`,
      error_codes: [7000215],
    });
    idp.route('/echo/token', { kind: 'json', status: 401, body: echo });
    idp.route(`/${ECHO_TENANT}/oauth2/v2.0/token`, { kind: 'json', status: 401, body: echo });
    redis = await startTestRedis();
    // Every command Redis receives, values included: what a failure record holds, whatever its TTL.
    monitor = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), 'MONITOR'], { stdio: ['ignore', 'pipe', 'ignore'] });
    monitor.stdout!.on('data', (c: Buffer) => (monitored += c.toString('utf8')));
    for (let i = 0; i < 100 && !monitored.includes('OK'); i++) await new Promise((r) => setTimeout(r, 50));
    tb = await startTestBroker(
      config([oidc('echo', { tokenEndpoint: `${idp.url}/echo/token` }), { ...entraCredential('echo-entra', idp.url, files, { timeoutMs: 5000, retries: 0 }), tenantId: ECHO_TENANT }], {
        cache: { redisUrl: redis.url },
      }),
      dir.path,
    );
    await waitUntilReady(tb.url);
  });
  after(async () => {
    await tb?.close();
    monitor?.kill();
    await redis?.kill();
  });

  for (const credential of ['echo', 'echo-entra']) {
    test(`${credential}: the caller, the logs, the Redis failure record and the diagnostics probe never carry the assertion`, { skip: skipRedis }, async () => {
      const res = await tb.token(KEY, { credential });
      const body = await problemOf(res);
      assert.equal(res.status, 502, JSON.stringify(body));
      assert.equal(body.idp_error, 'AADSTS7000215');
      const probe = await fetch(`${tb.url}/v1/diagnostics/credentials/${credential}/probe`, { method: 'POST', headers: { authorization: `Bearer ${DIAG_KEY}`, 'content-type': 'application/json' }, body: '{}' });
      const probeText = await probe.text();
      assert.equal(probe.status, 200, probeText);
      const path = credential === 'echo' ? '/echo/token' : `/${ECHO_TENANT}/oauth2/v2.0/token`;
      const assertions = idp.requests.filter((r) => r.path === path).map((r) => r.form.get('client_assertion')!);
      assert.equal(assertions.length, 2, 'the token request and the probe reached the IdP');
      const record = new RegExp(`"set" "[^"]*\\{${credential}\\|[^"]*\\}:failure"`, 'i');
      for (let i = 0; i < 100 && !record.test(monitored); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(monitored, record, 'the failure record was written to Redis');
      const places = { 'problem response': JSON.stringify(body), 'broker logs': tb.logs.text, 'Redis commands': monitored, 'diagnostics probe': probeText };
      for (const [where, text] of Object.entries(places)) {
        for (const assertion of assertions) {
          const [header, payload, signature] = assertion.split('.');
          assert.ok(!text.includes(signature!), `the assertion signature is in the ${where}`);
          assert.ok(!text.includes(`${header}.${payload}`), `the assertion signing input is in the ${where}`);
        }
        assert.ok(!text.includes('hunter2hunter2'), `the client secret is in the ${where}`);
      }
      assert.match(body.idp.error_description, /client_assertion=\[JWT removed\]/);
      assert.match(body.idp.error_description, /client_secret=\[removed\]/);
    });
  }
});

describe('token lifetimes from the IdP', () => {
  let tb: TestBroker;
  const now = () => Math.floor(Date.now() / 1000);
  const answers: Record<string, () => Record<string, unknown>> = {
    zero: () => ({ access_token: 'z', token_type: 'Bearer', expires_in: 0 }),
    negative: () => ({ access_token: 'n', token_type: 'Bearer', expires_in: -100 }),
    'negative-string': () => ({ access_token: 'ns', token_type: 'Bearer', expires_in: '-100' }),
    unparsable: () => ({ access_token: 'u', token_type: 'Bearer', expires_in: 'abc' }),
    fraction: () => ({ access_token: 'f', token_type: 'Bearer', expires_in: 0.5 }),
    'ten-years': () => ({ access_token: 'opaque-ten-years', token_type: 'Bearer', expires_in: 10 * 365 * 86_400 }),
    'ten-years-jwt': () => ({ access_token: jwtAccessToken(now() + 600), token_type: 'Bearer', expires_in: 10 * 365 * 86_400 }),
    'missing-jwt': () => ({ access_token: jwtAccessToken(now() + 1200), token_type: 'Bearer' }),
    'missing-opaque': () => ({ access_token: 'opaque-no-lifetime', token_type: 'Bearer' }),
    'expired-jwt': () => ({ access_token: jwtAccessToken(now() - 60), token_type: 'Bearer', expires_in: 3600 }),
    'one-second': () => ({ access_token: `one-${Math.random()}`, token_type: 'Bearer', expires_in: 1 }),
    'ten-minutes': () => ({ access_token: `ten-${Math.random()}`, token_type: 'Bearer', expires_in: 600 }),
  };

  before(async () => {
    for (const [name, answer] of Object.entries(answers)) idp.route(`/lifetimes/${name}/token`, { kind: 'json', body: answer });
    tb = await startTestBroker(config(Object.keys(answers).map((name) => oidc(name, { tokenEndpoint: `${idp.url}/lifetimes/${name}/token` }))), dir.path);
  });
  after(() => tb?.close());

  const refused: [string, RegExp][] = [
    ['zero', /expires_in=0\b/],
    ['negative', /expires_in=-100\b/],
    ['negative-string', /expires_in="-100"/],
    ['unparsable', /expires_in="abc"/],
    ['fraction', /expires_in=0\.5\b/],
  ];
  for (const [name, hint] of refused) {
    test(`expires_in ${name}: 502 idp_rejected (invalid_response) with a hint naming the value`, async () => {
      const res = await tb.token(KEY, { credential: name });
      const body = await problemOf(res);
      assert.equal(res.status, 502, JSON.stringify(body));
      assert.equal(body.code, 'idp_rejected');
      assert.equal(body.idp_error, 'invalid_response');
      assert.match(body.hint, hint);
      assert.match(body.hint, /positive number of seconds/);
    });
  }

  test('a ten-year expires_in is capped at 24 h', async () => {
    const body = (await (await tb.token(KEY, { credential: 'ten-years' })).json()) as { expires_in: number };
    assert.ok(body.expires_in <= 86_400 && body.expires_in > 86_000, `expires_in ${body.expires_in}`);
  });

  test('a JWT access token is never cached past its own exp, whatever expires_in says', async () => {
    const body = (await (await tb.token(KEY, { credential: 'ten-years-jwt' })).json()) as { expires_in: number };
    assert.ok(body.expires_in <= 600 && body.expires_in > 500, `expires_in ${body.expires_in}`);
  });

  test('without expires_in: a JWT access token lives until its exp; an opaque one gets the 300 s fallback', async () => {
    const fromJwt = (await (await tb.token(KEY, { credential: 'missing-jwt' })).json()) as { expires_in: number };
    assert.ok(fromJwt.expires_in <= 1200 && fromJwt.expires_in > 1100, `expires_in ${fromJwt.expires_in}`);
    const opaque = (await (await tb.token(KEY, { credential: 'missing-opaque' })).json()) as { expires_in: number };
    assert.ok(opaque.expires_in <= 300 && opaque.expires_in > 250, `expires_in ${opaque.expires_in}`);
  });

  test('a JWT access token already past its exp is idp_rejected with a hint about clocks', async () => {
    const res = await tb.token(KEY, { credential: 'expired-jwt' });
    const body = await problemOf(res);
    assert.equal(res.status, 502, JSON.stringify(body));
    assert.equal(body.idp_error, 'invalid_response');
    assert.match(body.hint, /clock/);
  });

  /**
   * `count` requests in rounds of 10 concurrent ones. Each answer is a token, or (a 1 s token whose
   * exchange took a second on a loaded machine) 503 idp_unavailable; never anything else.
   */
  async function flood(credential: string, count: number, minTtlSeconds?: number) {
    const started = Date.now();
    let served = 0;
    for (let sent = 0; sent < count; sent += 10) {
      const round = await Promise.all(Array.from({ length: 10 }, () => tb.token(KEY, { credential, ...(minTtlSeconds !== undefined ? { min_ttl_seconds: minTtlSeconds } : {}) })));
      for (const res of round) {
        const body = (await res.json()) as { expires_in?: number; code?: string };
        if (res.status === 200) {
          served++;
          assert.ok(body.expires_in! >= 0);
        } else {
          assert.equal(res.status, 503, JSON.stringify(body));
          assert.equal(body.code, 'idp_unavailable');
        }
      }
    }
    assert.ok(served > 0, 'tokens were served');
    return Date.now() - started;
  }

  test('expires_in 1 (below the default min_ttl_seconds): 100 requests make at most one exchange per half-lifetime, not one each', async () => {
    const path = '/lifetimes/one-second/token';
    const elapsedMs = await flood('one-second', 100);
    // A token is served until it expires (1 s); besides the exchange after expiry, refresh-ahead may
    // renew it once at half its life (checked every 250 ms): at most one exchange per half second,
    // however long the flood takes on this machine, and never one per request.
    const bound = 1 + Math.ceil(elapsedMs / 500);
    assert.ok(idp.count(path) <= bound, `${idp.count(path)} exchanges for 100 requests in ${elapsedMs} ms (bound ${bound})`);
  });

  test('a lifetime below an explicit min_ttl_seconds: 100 requests make at most one exchange per minimum interval', async () => {
    const path = '/lifetimes/ten-minutes/token';
    const elapsedMs = await flood('ten-minutes', 100, 3600);
    const bound = 1 + Math.floor(elapsedMs / MIN_EXCHANGE_INTERVAL_MS);
    assert.ok(idp.count(path) <= bound, `${idp.count(path)} exchanges for 100 requests in ${elapsedMs} ms (bound ${bound})`);
    assert.match(tb.logs.text, /min_ttl_seconds exceeds the lifetime the identity provider gives/);
  });
});

// The Entra path reads the same token responses through msal-node's network module.
describe('Entra v2: the same lifetime rules through msal-node', () => {
  const TENANT = '22222222-0000-4000-8000-000000000002';
  test('expires_in 0 from Entra is idp_rejected, not a born-dead token', async () => {
    idp.route(`/${TENANT}/oauth2/v2.0/token`, { kind: 'json', body: { access_token: 'entra-zero', token_type: 'Bearer', expires_in: 0, scope: POWERBI_SCOPE } });
    const tb = await startTestBroker(config([{ ...entraCredential('entra-zero', idp.url, files, { timeoutMs: 5000, retries: 0 }), tenantId: TENANT }]), dir.path);
    try {
      const res = await tb.token(KEY, { credential: 'entra-zero' });
      const body = await problemOf(res);
      assert.equal(res.status, 502, JSON.stringify(body));
      assert.equal(body.idp_error, 'invalid_response');
      assert.match(body.hint, /expires_in=0\b/);
    } finally {
      await tb.close();
    }
  });
});
