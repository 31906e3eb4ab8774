// The broker against a strict Entra ID stand-in (test/fakes/entra-stand-in.ts): v2 through
// msal-node, v1 by form POST, and every refusal Entra is known for comes back explained.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import jwt from 'jsonwebtoken';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { POWERBI_SCOPE as POWERBI, TEST_CLIENT as CLIENT, TEST_TENANT as TENANT, entraCredential as testAppCredential } from '../helpers/entra-fixture.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const UNKNOWN_CLIENT = '00000000-1111-2222-3333-444444444444';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KEY = 'entra-key';

let dir: TempDir;
let registered: CredentialFiles;
let unregistered: CredentialFiles;
let entra: EntraStandIn;
let tb: TestBroker;

function entraCredential(id: string, extra: Record<string, unknown> = {}, cert: CredentialFiles = registered) {
  return testAppCredential(id, entra.url, cert, { timeoutMs: 2000, ...extra });
}

async function problem(res: Response) {
  assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  return (await res.json()) as Record<string, any>;
}

before(async () => {
  dir = tempDir();
  registered = await writeCredentialFiles(dir, 'registered');
  unregistered = await writeCredentialFiles(dir, 'unregistered');
  entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, certificates: [registered.cert.certPem] }] });
  const credentials = [
    entraCredential('powerbi'),
    entraCredential('powerbi-v1', { endpointVersion: 'v1' }),
    entraCredential('powerbi-rs256', { assertion: { algorithm: 'RS256' } }),
    entraCredential('wrong-client', { clientId: UNKNOWN_CLIENT }),
    entraCredential('wrong-cert', {}, unregistered),
    entraCredential('wrong-resource', { scopes: ['https://analysis.windows.net/powerbi/.default'] }),
    entraCredential('busy'),
    entraCredential('throttled', { endpointVersion: 'v1' }),
    entraCredential('flaky'),
    entraCredential('slow', { timeoutMs: 1000, retries: 0 }),
    // Targets that hold no token when their test runs, so each request there reaches the IdP:
    // a held token whose lifetime is below min_ttl_seconds is served for MIN_EXCHANGE_INTERVAL_MS
    // after its exchange instead of exchanging again (docs/operations.md).
    entraCredential('forced'),
    entraCredential('by-resource'),
    entraCredential('skewed'),
    entraCredential('refusals'),
    entraCredential('refusals-v1', { endpointVersion: 'v1' }),
    entraCredential('flaky-down'),
  ];
  tb = await startTestBroker(
    { credentials, callers: [{ id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: credentials.map((c) => ({ credential: c.id })) }] },
    dir.path,
  );
});

after(async () => {
  await tb.close();
  await entra.close();
  dir.remove();
});

describe('Entra v2 through msal-node', () => {
  test('gets a Power BI token; the assertion is PS256 + x5t#S256 with the exact v2 token URL as aud', async () => {
    const res = await tb.token(KEY, { credential: 'powerbi' });
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as Record<string, any>;
    assert.equal(body.scope, POWERBI);
    assert.equal(body.cache, 'miss');
    const claims = jwt.verify(body.access_token, entra.publicKey, { algorithms: ['RS256'] }) as jwt.JwtPayload;
    assert.equal(claims.aud, 'https://analysis.windows.net/powerbi/api');
    assert.equal(claims.appid, CLIENT);
    const seen = entra.requests.filter((r) => r.path === `/${TENANT}/oauth2/v2.0/token`).at(-1)!;
    assert.equal(seen.outcome, 200);
    assert.deepEqual(seen.header, { alg: 'PS256', typ: 'JWT', 'x5t#S256': seen.header!['x5t#S256'] });
    assert.equal(seen.claims!.aud, `${entra.url}/${TENANT}/oauth2/v2.0/token`);
    assert.equal(seen.form.scope, POWERBI);
    assert.equal(seen.form.resource, undefined);
  });

  test('msal-node makes no discovery or instance-discovery call: only token POSTs reach the host', () => {
    const paths = new Set(entra.requests.map((r) => r.path));
    for (const path of paths) assert.match(path, /\/oauth2\/(v2\.0\/)?token$/, `unexpected call to ${path}`);
  });

  test('a forced second exchange signs a new assertion (new jti), and the broker cache, not MSAL, decides', async () => {
    const before = entra.requests.length;
    const forced = async () => {
      const res = await tb.token(KEY, { credential: 'forced', min_ttl_seconds: 86_400 });
      assert.equal(res.status, 200);
      return ((await res.json()) as { cache: string }).cache;
    };
    assert.equal(await forced(), 'miss');
    // min_ttl_seconds above the lifetime Entra gives: the token of that exchange is served (no call)
    // until the minimum interval has passed, then the next request exchanges again.
    const outcomes: string[] = [];
    for (let i = 0; i < 300 && entra.requests.length < before + 2; i++) {
      outcomes.push(await forced());
      if (entra.requests.length < before + 2) await sleep(100);
    }
    const posts = entra.requests.slice(before);
    assert.equal(posts.length, 2, `outcomes ${outcomes.join(',')}`);
    assert.equal(outcomes.at(-1), 'refreshed');
    assert.ok(outcomes.slice(0, -1).every((o) => o === 'hit'), outcomes.join(','));
    assert.notEqual(posts[0]!.claims!.jti, posts[1]!.claims!.jti);
    // And the plain request is now a cache hit with no call at all.
    assert.equal(((await (await tb.token(KEY, { credential: 'forced' })).json()) as { cache: string }).cache, 'hit');
    assert.equal(entra.requests.length, before + 2);
  });

  test('RS256 on request: the x5t header (SHA-1) is accepted', async () => {
    const res = await tb.token(KEY, { credential: 'powerbi-rs256' });
    assert.equal(res.status, 200, await res.clone().text());
    const seen = entra.requests.at(-1)!;
    assert.equal(seen.header!.alg, 'RS256');
    assert.ok(seen.header!.x5t);
  });

  test('resource is accepted instead of scope and means resource/.default', async () => {
    const res = await tb.token(KEY, { credential: 'by-resource', resource: 'https://analysis.windows.net/powerbi/api' });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { cache: string }).cache, 'miss');
    assert.equal(entra.requests.at(-1)!.form.scope, POWERBI);
  });
});

describe('Entra v1', () => {
  test('gets a token with resource=; expires_in arrives as a string and is understood', async () => {
    const res = await tb.token(KEY, { credential: 'powerbi-v1' });
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as Record<string, any>;
    assert.ok(body.expires_in > 3500 && body.expires_in <= 3599);
    const seen = entra.requests.at(-1)!;
    assert.equal(seen.path, `/${TENANT}/oauth2/token`);
    assert.equal(seen.form.resource, 'https://analysis.windows.net/powerbi/api');
    assert.equal(seen.claims!.aud, `${entra.url}/${TENANT}/oauth2/token`);
  });
});

describe('refusals come back as idp_rejected with the AADSTS code and a fix', () => {
  const natural: { code: number; credential: string; arrange?: () => void; hint: RegExp }[] = [
    { code: 700016, credential: 'wrong-client', hint: /clientId/ },
    { code: 700027, credential: 'wrong-cert', hint: /upload the public certificate/ },
    { code: 500011, credential: 'wrong-resource', hint: /exact resource/ },
    { code: 700024, credential: 'skewed', arrange: () => entra.setClockOffset(2 * 3600), hint: /UTC/ },
  ];
  for (const c of natural) {
    test(`AADSTS${c.code} (provoked for real)`, async () => {
      c.arrange?.();
      try {
        const res = await tb.token(KEY, { credential: c.credential, min_ttl_seconds: 86_400 });
        assert.equal(res.status, 502);
        const body = await problem(res);
        assert.equal(body.code, 'idp_rejected');
        assert.equal(body.idp_error, `AADSTS${c.code}`);
        assert.match(body.hint, c.hint);
        assert.deepEqual(body.idp.error_codes, [c.code]);
        assert.match(body.idp.trace_id, /^[0-9a-f-]{36}$/);
        assert.match(body.idp.correlation_id, /^[0-9a-f-]{36}$/);
        assert.equal(entra.requests.at(-1)!.aadsts, c.code);
      } finally {
        entra.setClockOffset(0);
      }
    });
  }

  test('AADSTS700023 (provoked for real): the IdP is known under another host than the one posted to', async () => {
    const aliased = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, certificates: [registered.cert.certPem] }], host: 'https://login.microsoftonline.com' });
    const other = await startTestBroker(
      { credentials: [{ ...entraCredential('aliased'), authorityHost: aliased.url }], callers: [{ id: 'j', apiKeySha256: sha256Hex(KEY), allow: [{ credential: 'aliased' }] }] },
      dir.path,
    );
    try {
      const body = await problem(await other.token(KEY, { credential: 'aliased' }));
      assert.equal(body.idp_error, 'AADSTS700023');
      assert.match(body.hint, /exact token URL/);
    } finally {
      await other.close();
      await aliased.close();
    }
  });

  for (const code of [700021, 7000215, 700023, 50027, 90002]) {
    test(`AADSTS${code} (answered by the stand-in)`, async () => {
      entra.inject({ aadsts: code });
      const body = await problem(await tb.token(KEY, { credential: 'refusals', min_ttl_seconds: 86_400 }));
      assert.equal(body.code, 'idp_rejected');
      assert.equal(body.status, 502);
      assert.equal(body.idp_error, `AADSTS${code}`);
      assert.ok(typeof body.hint === 'string' && body.hint.length > 20, body.hint);
      assert.match(body.detail, new RegExp(`AADSTS${code}`));
    });
  }

  test('v1 refusals are explained the same way', async () => {
    entra.inject({ aadsts: 700027 });
    const body = await problem(await tb.token(KEY, { credential: 'refusals-v1', min_ttl_seconds: 86_400 }));
    assert.equal(body.idp_error, 'AADSTS700027');
  });
});

describe('Entra unavailable', () => {
  test('503 with Retry-After: idp_unavailable carrying the IdP delay, and no further call before it ends', async () => {
    entra.inject({ status: 503, retryAfterSeconds: 7 });
    const res = await tb.token(KEY, { credential: 'busy' });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '7');
    assert.equal((await problem(res)).code, 'idp_unavailable');
    const calls = entra.requests.length;
    const again = await tb.token(KEY, { credential: 'busy' });
    assert.equal(again.status, 503);
    assert.ok(Number(again.headers.get('retry-after')) >= 6);
    assert.equal(entra.requests.length, calls, 'no request to the IdP during Retry-After');
  });

  test('429 is idp_unavailable too, with the IdP delay', async () => {
    entra.inject({ status: 429, retryAfterSeconds: 3 });
    const throttled = await tb.token(KEY, { credential: 'throttled' });
    assert.equal(throttled.status, 503);
    assert.equal(throttled.headers.get('retry-after'), '3');
  });

  test('a dropped connection is retried; when every attempt drops, idp_unavailable', async () => {
    const before = entra.requests.length;
    entra.inject({ dropConnection: true });
    assert.equal((await tb.token(KEY, { credential: 'flaky' })).status, 200, 'the retry succeeds');
    assert.equal(entra.requests.length - before, 2);
    entra.inject({ dropConnection: true, times: 3 });
    const dropped = await tb.token(KEY, { credential: 'flaky-down', min_ttl_seconds: 86_400 });
    assert.equal(dropped.status, 503);
    assert.match((await problem(dropped)).detail, /network error/);
    assert.equal(entra.requests.length - before, 5, 'one try and two retries');
  });

  test('a slow Entra hits the credential timeout', async () => {
    entra.inject({ latencyMs: 3000 });
    const res = await tb.token(KEY, { credential: 'slow' });
    assert.equal(res.status, 503);
    assert.match((await problem(res)).detail, /timed out after 1000 ms/);
    entra.clearFaults();
  });

  test('after the faults, the same broker gets tokens again without a restart', async () => {
    assert.equal((await tb.token(KEY, { credential: 'powerbi', min_ttl_seconds: 86_400 })).status, 200);
    assert.equal((await tb.token(KEY, { credential: 'flaky-down', min_ttl_seconds: 86_400 })).status, 200);
  });
});
