// Every outbound call ends within its deadline and reads a bounded body, whatever the IdP does
// (docs/operations.md, "Misbehaving identity providers"): stall after the headers while garbage
// collections run, drip one byte a second, never answer, or send an endless body. Token endpoint
// (OIDC form POST, Entra v1, Entra v2 through msal-node), discovery and the caller JWKS alike.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import jwt from 'jsonwebtoken';
import { startMisbehavingIdp, type MisbehavingIdp } from '../fakes/misbehaving-idp.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { entraCredential } from '../helpers/entra-fixture.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

// Forced collections in this process (the broker runs in it): a deadline that only a weakly held
// object enforces (AbortSignal.timeout) is collected once nothing references it.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const KEY = 'misbehaving-key';
const TIMEOUT_MS = 1000;
/** Only stops a hung test; never a statement about speed. */
const HANG_CAP_MS = 60_000;
const HUGE_BYTES = 64 * 1024 * 1024;
const TENANTS = {
  stall: '11111111-0000-4000-8000-000000000001',
  drip: '11111111-0000-4000-8000-000000000002',
  silent: '11111111-0000-4000-8000-000000000003',
  huge: '11111111-0000-4000-8000-000000000004',
};

let dir: TempDir;
let files: CredentialFiles;
let idp: MisbehavingIdp;
let tb: TestBroker;
const callerKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const CALLER_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/**
 * The response to a request, or a failure naming how long it was still pending. Calls `whileWaiting`
 * every 100 ms meanwhile. The cap is a plain timer (a strong reference), not AbortSignal.timeout.
 */
async function endsWithin<T>(pending: Promise<T>, whileWaiting: () => void = () => undefined): Promise<T> {
  let done = false;
  const settled = pending.finally(() => (done = true));
  const started = Date.now();
  while (!done && Date.now() - started < HANG_CAP_MS) {
    whileWaiting();
    await Promise.race([settled.catch(() => undefined), new Promise((r) => setTimeout(r, 100))]);
  }
  if (!done) {
    settled.catch(() => undefined);
    assert.fail(`still pending after ${HANG_CAP_MS} ms`);
  }
  return settled;
}

async function problemOf(res: Response) {
  assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  return (await res.json()) as Record<string, any>;
}

function oidc(id: string, extra: Record<string, unknown>) {
  return { id, provider: 'oidc', clientId: id, certificate: { certFile: files.certFile, keyFile: files.keyFile }, timeoutMs: TIMEOUT_MS, retries: 0, ...extra };
}

function entra(id: string, tenant: string, extra: Record<string, unknown> = {}) {
  return { ...entraCredential(id, idp.url, files, { timeoutMs: TIMEOUT_MS, retries: 0, ...extra }), tenantId: tenant };
}

function callerToken() {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign({ iss: CALLER_ISSUER, sub: 'system:serviceaccount:bi:gateway', aud: 'token-broker', iat: now, nbf: now, exp: now + 600 }, callerKey.privateKey, {
    algorithm: 'RS256',
    keyid: randomUUID(),
  });
}

before(async () => {
  dir = tempDir();
  files = await writeCredentialFiles(dir, 'misbehaving');
  idp = await startMisbehavingIdp();
  for (const [behaviour, tenant] of Object.entries(TENANTS)) {
    const kind = behaviour === 'stall' ? { kind: 'stall-after-headers' as const } : behaviour === 'huge' ? { kind: 'huge' as const, bytes: HUGE_BYTES } : { kind: behaviour as 'drip' | 'silent' };
    idp.route(`/${behaviour}/token`, kind);
    idp.route(`/issuers/${behaviour}/.well-known/openid-configuration`, kind);
    idp.route(`/${tenant}/oauth2/v2.0/token`, kind);
    idp.route(`/${tenant}/oauth2/token`, kind);
  }
  idp.route('/drip/jwks', { kind: 'drip' });
  const credentials = [
    ...Object.keys(TENANTS).flatMap((b) => [
      oidc(`oidc-${b}`, { tokenEndpoint: `${idp.url}/${b}/token` }),
      oidc(`discovery-${b}`, { issuer: `${idp.url}/issuers/${b}` }),
      entra(`entra-${b}`, TENANTS[b as keyof typeof TENANTS]),
      entra(`entra-v1-${b}`, TENANTS[b as keyof typeof TENANTS], { endpointVersion: 'v1' }),
    ]),
  ];
  tb = await startTestBroker(
    {
      credentials,
      callers: [
        { id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: credentials.map((c) => ({ credential: c.id })) },
        {
          id: 'gateway',
          jwt: { issuer: CALLER_ISSUER, jwksUri: `${idp.url}/drip/jwks`, audience: 'token-broker', subject: 'system:serviceaccount:bi:*' },
          allow: [{ credential: 'oidc-stall' }],
        },
      ],
    },
    dir.path,
  );
});

after(async () => {
  await tb?.close();
  await idp?.close();
  dir?.remove();
});

const PATHS = ['oidc', 'discovery', 'entra', 'entra-v1'] as const;

describe('an IdP that stalls after the response headers, while garbage collections run', () => {
  for (const path of PATHS) {
    test(`${path}: 503 idp_unavailable "timed out", and the next request is not stuck behind the first`, async () => {
      for (let attempt = 0; attempt < 2; attempt++) {
        const res = await endsWithin(tb.token(KEY, { credential: `${path}-stall` }), gc);
        assert.equal(res.status, 503);
        assert.ok(Number(res.headers.get('retry-after')) >= 1);
        const body = await problemOf(res);
        assert.equal(body.code, 'idp_unavailable');
        assert.match(body.detail, new RegExp(`timed out after ${TIMEOUT_MS} ms`));
      }
    });
  }
});

describe('an IdP that drips one byte a second, while garbage collections run', () => {
  for (const path of PATHS) {
    test(`${path}: 503 idp_unavailable "timed out" (the deadline covers the whole body, not socket idleness)`, async () => {
      const res = await endsWithin(tb.token(KEY, { credential: `${path}-drip` }), gc);
      assert.equal(res.status, 503);
      const body = await problemOf(res);
      assert.equal(body.code, 'idp_unavailable');
      assert.match(body.detail, new RegExp(`timed out after ${TIMEOUT_MS} ms`));
    });
  }

  test('caller JWKS that drips: the caller gets 401, not a hang', async () => {
    const res = await endsWithin(
      fetch(`${tb.url}/v1/token`, {
        method: 'POST',
        headers: { authorization: `Bearer ${callerToken()}`, 'content-type': 'application/json' },
        body: JSON.stringify({ credential: 'oidc-stall' }),
      }),
      gc,
    );
    assert.equal(res.status, 401);
    assert.equal((await problemOf(res)).code, 'unauthenticated');
    const warning = tb.logs.entries().find((e) => e.msg === 'caller JWKS could not be loaded; keeping the previous keys');
    assert.match(String(warning?.error), /timed out/);
  });
});

describe('an IdP that never answers', () => {
  for (const path of PATHS) {
    test(`${path}: 503 idp_unavailable "timed out"`, async () => {
      const res = await endsWithin(tb.token(KEY, { credential: `${path}-silent` }));
      assert.equal(res.status, 503);
      assert.match((await problemOf(res)).detail, new RegExp(`timed out after ${TIMEOUT_MS} ms`));
    });
  }
});

describe('an IdP that sends an endless body', () => {
  for (const path of PATHS) {
    test(`${path}: 503 idp_unavailable "answered more than 256 KiB; refused", and the broker stopped reading`, async () => {
      const route = path === 'oidc' ? '/huge/token' : path === 'discovery' ? '/issuers/huge/.well-known/openid-configuration' : path === 'entra' ? `/${TENANTS.huge}/oauth2/v2.0/token` : `/${TENANTS.huge}/oauth2/token`;
      const res = await endsWithin(tb.token(KEY, { credential: `${path}-huge` }));
      assert.equal(res.status, 503);
      const body = await problemOf(res);
      assert.equal(body.code, 'idp_unavailable');
      assert.match(body.detail, /answered more than 256 KiB; refused/);
      // Wait for the IdP side to notice the closed connection, then check it was far from done.
      for (let i = 0; i < 100 && idp.bytesSent(route) === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(idp.bytesSent(route) > 0);
      assert.ok(idp.bytesSent(route) < HUGE_BYTES / 2, `${idp.bytesSent(route)} bytes sent before the broker hung up`);
    });
  }
});
