// Delegated credentials against a real OpenID Provider (oidc-provider: PKCE required, refresh tokens
// rotated on every use, a replayed one revoking the whole grant), the sign-ins driven in a real
// headless Chromium: one sign-in, then tokens refreshed by the broker; the link's one-time rules; the
// IdP's refusal explained; a revoked grant → 409 sign_in_required and recovery by a new sign-in; the
// device flow; DELETE revoking at the IdP; the state file keeping a sign-in across a restart; no
// secret in logs, problems or the state file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { abortSignInInBrowser, completeDeviceSignIn, denyDeviceSignIn, launchBrowser, signInInBrowser } from '../helpers/browser-sign-in.ts';
import { sha256Hex, tempDir, type TempDir } from '../helpers/credential-files.ts';
import { startDelegatedIdp, type DelegatedIdp } from '../helpers/delegated-idp.ts';
import { manualClock } from '../helpers/manual-clock.ts';
import { freePort } from '../helpers/redis-server.ts';
import { CLI_MAIN, runCli } from '../helpers/run-cli.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const ADMIN_KEY = 'admin-key';
const GATEWAY_KEY = 'gateway-key';
const TOKEN_TTL_S = 3;

let dir: TempDir;
let idp: DelegatedIdp;
let browser: Browser;
let port: number;
const seenTokens = new Set<string>();

function config(listenPort = port) {
  const redirectUri = `http://127.0.0.1:${listenPort}/v1/sign-in/callback`;
  return {
    server: { port: listenPort },
    cache: { encryptionKeyFile: join(dir.path, 'keys'), stateFile: join(dir.path, 'state.enc') },
    credentials: [
      {
        id: 'cdr-user',
        provider: 'oidc',
        issuer: idp.issuer,
        clientId: idp.publicClientId,
        publicClient: true,
        signIn: { flow: 'authorization_code', redirectUri },
        scopes: ['openehr'],
      },
      {
        id: 'cdr-confidential',
        provider: 'oidc',
        issuer: idp.issuer,
        clientId: idp.confidentialClientId,
        clientSecret: { file: join(dir.path, 'secret'), method: 'client_secret_post' },
        signIn: { flow: 'authorization_code', redirectUri, scopes: ['openid', 'offline_access', 'openehr'] },
        scopes: ['openehr'],
      },
      { id: 'cdr-device', provider: 'oidc', issuer: idp.issuer, clientId: idp.publicClientId, publicClient: true, signIn: { flow: 'device_code' }, scopes: ['openehr'] },
    ],
    callers: [
      { id: 'admins', apiKeySha256: sha256Hex(ADMIN_KEY), signIn: true, diagnostics: true },
      { id: 'gateway', apiKeySha256: sha256Hex(GATEWAY_KEY), allow: [{ credential: 'cdr-user' }, { credential: 'cdr-confidential' }, { credential: 'cdr-device' }] },
    ],
  };
}

async function startBroker(clock?: ReturnType<typeof manualClock>): Promise<TestBroker> {
  const tb = await startTestBroker(config(), dir.path, { clock, port, grantWatchMs: 500 });
  assert.equal(new URL(tb.url).port, String(port), 'the broker listens on the port its redirect URI names');
  return tb;
}

const api = (tb: TestBroker, method: string, path: string, key = ADMIN_KEY) => fetch(`${tb.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } });

async function signIn(tb: TestBroker, credential: string, login: string) {
  const res = await api(tb, 'POST', `/v1/credentials/${credential}/sign-in`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { flow: string; sign_in_url: string; expires_at: string };
  assert.equal(body.flow, 'authorization_code');
  const page = await signInInBrowser(browser, body.sign_in_url, login, idp.issuer);
  return { page, link: body.sign_in_url };
}

async function token(tb: TestBroker, credential = 'cdr-user') {
  const res = await tb.token(GATEWAY_KEY, { credential });
  const body = (await res.json()) as Record<string, unknown>;
  if (typeof body.access_token === 'string') seenTokens.add(body.access_token);
  return { status: res.status, body };
}

/** The IdP's introspection (RFC 7662) says the token is active and names the person: it is that person's, and valid. */
async function userinfoSubject(accessToken: string): Promise<string | undefined> {
  const res = await fetch(`${idp.issuer}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: accessToken, client_id: idp.confidentialClientId, client_secret: idp.confidentialClientSecret }),
  });
  const body = (await res.json()) as { active?: boolean; sub?: string };
  return body.active ? body.sub : undefined;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, capMs = 60_000): Promise<T> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  dir = tempDir();
  dir.write('keys', `${randomBytes(32).toString('base64')}\n`);
  port = await freePort();
  idp = await startDelegatedIdp({ redirectUris: [`http://127.0.0.1:${port}/v1/sign-in/callback`], accessTokenTtlSeconds: TOKEN_TTL_S });
  dir.write('secret', idp.confidentialClientSecret);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await idp?.close();
  dir?.remove();
});

describe('a delegated credential, signed in once in a browser', () => {
  let tb: TestBroker;
  before(async () => {
    tb = await startBroker();
  });
  after(() => tb.close());

  test('before any sign-in a token request is 409 sign_in_required with who can fix it', async () => {
    const { status, body } = await token(tb);
    assert.equal(status, 409);
    assert.equal(body.code, 'sign_in_required');
    assert.equal(body.credential, 'cdr-user');
    assert.match(String(body.hint), /signIn: true.*POST \/v1\/credentials\/cdr-user\/sign-in.*token-broker sign-in cdr-user/);
    const state = (await (await api(tb, 'GET', '/v1/credentials/cdr-user/sign-in')).json()) as Record<string, unknown>;
    assert.equal(state.state, 'sign_in_required');
    assert.match(String(state.reason), /nobody has signed in/);
  });

  test('only a caller with signIn: true may start a sign-in; a credential without signIn is a 400', async () => {
    assert.equal((await api(tb, 'POST', '/v1/credentials/cdr-user/sign-in', GATEWAY_KEY)).status, 403);
    assert.equal((await api(tb, 'POST', '/v1/credentials/nope/sign-in')).status, 404);
    assert.equal((await fetch(`${tb.url}/v1/credentials/cdr-user/sign-in`, { method: 'POST' })).status, 401);
  });

  test('the person signs in in Chromium; the page says who; tokens are theirs, refreshed with rotation and no reuse', async () => {
    const { page, link } = await signIn(tb, 'cdr-user', 'alice');
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, /Signed in as alice/);
    assert.match(page.text, /cdr-user/);
    assert.match(link, new RegExp(`^http://127\\.0\\.0\\.1:${port}/v1/sign-in/start\\?ticket=`));
    const state = (await (await api(tb, 'GET', '/v1/credentials/cdr-user/sign-in')).json()) as Record<string, unknown>;
    assert.equal(state.state, 'signed_in');
    assert.equal(state.subject, 'alice');
    assert.equal(state.refresh_token, undefined);

    const first = await token(tb);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(await userinfoSubject(String(first.body.access_token)), 'alice');
    // Past a few access-token lifetimes: each new token came from a rotated refresh token.
    const before = idp.stats.refreshRedemptions;
    await until('three refreshes', async () => {
      const t = await token(tb);
      assert.equal(t.status, 200, JSON.stringify(t.body));
      return idp.stats.refreshRedemptions - before >= 3 ? true : undefined;
    });
    const last = await token(tb);
    assert.equal(await userinfoSubject(String(last.body.access_token)), 'alice');
    assert.notEqual(last.body.access_token, first.body.access_token);
    assert.equal(idp.stats.refreshReuse, 0, 'no refresh token was presented twice');
    // The audit record of each token served names whose authority it carries.
    const audit = tb.logs.entries().filter((e) => e.event === 'token_served' && e.credentialId === 'cdr-user');
    assert.ok(audit.length >= 3 && audit.every((e) => e.onBehalfOf === 'alice'), JSON.stringify(audit.at(-1)));
    assert.equal(idp.stats.invalidGrant, 0);
    const after = (await (await api(tb, 'GET', '/v1/credentials/cdr-user/sign-in')).json()) as { rotations: number; refreshes: number };
    assert.ok(after.rotations >= 3, JSON.stringify(after));
    // Diagnostics show the grant, never a token.
    const view = (await (await api(tb, 'GET', '/v1/diagnostics/credentials/cdr-user')).json()) as { delegated: Record<string, unknown>; client_authentication: { kind: string } };
    assert.equal(view.client_authentication.kind, 'publicClient');
    assert.equal(view.delegated.state, 'signed_in');
    assert.equal(view.delegated.subject, 'alice');
    assert.match(String(view.delegated.scopes_granted), /openehr/);
    assert.ok(typeof view.delegated.last_refresh_at === 'string');
    assert.doesNotMatch(JSON.stringify(view), /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/, 'no token-like value');
    const listing = (await (await fetch(`${tb.url}/v1/credentials`, { headers: { authorization: `Bearer ${GATEWAY_KEY}` } })).json()) as { credentials: { id: string; delegated?: boolean }[] };
    assert.equal(listing.credentials.find((c) => c.id === 'cdr-user')?.delegated, true);
  });

  test('the same link twice, a made-up link, a tampered state: clear pages, no stack trace', async () => {
    const res = await api(tb, 'POST', '/v1/credentials/cdr-user/sign-in');
    const { sign_in_url } = (await res.json()) as { sign_in_url: string };
    const opened = await fetch(sign_in_url, { redirect: 'manual' });
    assert.equal(opened.status, 303);
    const authorize = new URL(opened.headers.get('location')!);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(authorize.searchParams.get('state') && authorize.searchParams.get('nonce') && authorize.searchParams.get('code_challenge'));
    assert.equal(authorize.searchParams.get('prompt'), 'consent', 'offline_access needs prompt=consent (OIDC Core §11)');

    const again = await fetch(sign_in_url, { redirect: 'manual' });
    assert.equal(again.status, 400);
    assert.match(again.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await again.text(), /already been used/);

    const unknown = await fetch(`${tb.url}/v1/sign-in/start?ticket=made-up`);
    assert.equal(unknown.status, 400);
    assert.match(await unknown.text(), /unknown or has expired/);

    const tampered = await fetch(`${tb.url}/v1/sign-in/callback?code=abc&state=${authorize.searchParams.get('state')}x`);
    assert.equal(tampered.status, 400);
    const text = await tampered.text();
    assert.match(text, /state does not match a pending sign-in/);
    assert.doesNotMatch(text, /at .*\.ts:\d+/);
  });

  test('a person who cancels at the IdP gets the error explained (access_denied)', async () => {
    const res = await api(tb, 'POST', '/v1/credentials/cdr-confidential/sign-in');
    const { sign_in_url } = (await res.json()) as { sign_in_url: string };
    const page = await abortSignInInBrowser(browser, sign_in_url, idp.issuer);
    assert.equal(page.status, 400);
    assert.match(page.text, /access_denied/);
    assert.match(page.text, /declined, or cancelled/);
    const state = (await (await api(tb, 'GET', '/v1/credentials/cdr-confidential/sign-in')).json()) as Record<string, unknown>;
    assert.equal(state.state, 'sign_in_required');
    assert.match(String(state.reason), /access_denied/);
  });

  test('a confidential client (client secret) signs in and refreshes the same way', async () => {
    const { page } = await signIn(tb, 'cdr-confidential', 'bob');
    assert.match(page.text, /Signed in as bob/);
    const t = await token(tb, 'cdr-confidential');
    assert.equal(t.status, 200);
    assert.equal(await userinfoSubject(String(t.body.access_token)), 'bob');
  });

  test('a grant revoked at the IdP → 409 at the next refresh, metric 0; a new sign-in recovers without restart', async () => {
    assert.ok((await idp.revokeAllGrants()) > 0);
    const refused = await until('sign_in_required', async () => {
      const t = await token(tb);
      return t.status === 409 ? t.body : undefined;
    });
    assert.equal(refused.code, 'sign_in_required');
    assert.match(String(refused.detail), /invalid_grant/);
    const metrics = await (await fetch(`${tb.url}/metrics`)).text();
    assert.match(metrics, /token_broker_delegated_signed_in\{credential="cdr-user"\} 0/);
    assert.match(metrics, /token_broker_delegated_refreshes_total\{credential="cdr-user",result="sign_in_required"\} 1/);
    assert.equal(tb.logs.entries().filter((e) => /needs a new sign-in/.test(String(e.msg)) && e.credentialId === 'cdr-user').length, 1, 'one warning line');
    assert.equal((await fetch(`${tb.url}/readyz`)).status, 200, 'readiness does not depend on a person');

    await signIn(tb, 'cdr-user', 'alice');
    const t = await token(tb);
    assert.equal(t.status, 200);
    assert.equal(await userinfoSubject(String(t.body.access_token)), 'alice');
    assert.match(await (await fetch(`${tb.url}/metrics`)).text(), /token_broker_delegated_signed_in\{credential="cdr-user"\} 1/);
  });

  test('the device code flow: the person enters the code in a browser, the broker polls and holds the grant', async () => {
    const res = await api(tb, 'POST', '/v1/credentials/cdr-device/sign-in');
    assert.equal(res.status, 200);
    const started = (await res.json()) as { flow: string; verification_uri: string; verification_uri_complete?: string; user_code: string; expires_at: string; interval: number };
    assert.equal(started.flow, 'device_code');
    assert.ok(started.user_code && started.verification_uri.startsWith(idp.issuer));
    assert.equal(((await (await api(tb, 'GET', '/v1/credentials/cdr-device/sign-in')).json()) as { state: string }).state, 'pending');
    await completeDeviceSignIn(browser, started, 'carol');
    const state = await until('device sign-in', async () => {
      const s = (await (await api(tb, 'GET', '/v1/credentials/cdr-device/sign-in')).json()) as Record<string, unknown>;
      return s.state === 'signed_in' ? s : undefined;
    });
    assert.equal(state.subject, 'carol');
    const t = await token(tb, 'cdr-device');
    assert.equal(t.status, 200);
    assert.equal(await userinfoSubject(String(t.body.access_token)), 'carol');
  });

  test('a declined device sign-in is reported, and the previous grant stays', async () => {
    const started = (await (await api(tb, 'POST', '/v1/credentials/cdr-device/sign-in')).json()) as { verification_uri: string; user_code: string };
    await denyDeviceSignIn(browser, started);
    const state = await until('declined', async () => {
      const s = (await (await api(tb, 'GET', '/v1/credentials/cdr-device/sign-in')).json()) as Record<string, unknown>;
      return s.pending === undefined ? s : undefined;
    });
    assert.equal(state.state, 'signed_in', 'carol\'s grant is still held');
    assert.equal((await token(tb, 'cdr-device')).status, 200);
  });

  test('DELETE revokes at the IdP (RFC 7009) and forgets: 409 afterwards', async () => {
    const revocations = idp.stats.revocations;
    const res = await api(tb, 'DELETE', '/v1/credentials/cdr-device/sign-in');
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.revoked_at_idp, true);
    assert.equal(idp.stats.revocations, revocations + 1);
    const t = await token(tb, 'cdr-device');
    assert.equal(t.status, 409);
  });

  test('token-broker sign-in prints the link, waits, and reports who signed in', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, 'sign-in', 'cdr-user', '--url', tb.url], {
      env: { ...process.env, TOKEN_BROKER_API_KEY: ADMIN_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const link = await until('the link', async () => /(http:\/\/\S+\/v1\/sign-in\/start\?ticket=\S+)/.exec(stdout)?.[1]);
    const page = await signInInBrowser(browser, link, 'alice', idp.issuer);
    assert.match(page.text, /Signed in as alice/);
    assert.equal(await exited, 0, stderr);
    assert.match(stdout, /Signed in as alice: credential cdr-user is ready/);
    assert.equal((await token(tb)).status, 200);
  });

  test('token-broker sign-in without an API key names what is missing', async () => {
    const res = await runCli(['sign-in', 'cdr-user', '--url', tb.url], '', { TOKEN_BROKER_API_KEY: '' });
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--api-key-file FILE or env TOKEN_BROKER_API_KEY/);
    const wrong = await runCli(['sign-in', 'cdr-user', '--url', tb.url], '', { TOKEN_BROKER_API_KEY: GATEWAY_KEY });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /403 caller 'gateway' may not manage sign-ins/);
  });

  test('a restart keeps the sign-in (encrypted state file), and nothing secret is in logs or the file', async () => {
    await tb.close();
    tb = await startBroker();
    // fetch's pool may still hold a connection to the broker that closed: one retry on a fresh one.
    const t = await token(tb).catch(() => token(tb));
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.equal(await userinfoSubject(String(t.body.access_token)), 'alice');
    const state = readFileSync(join(dir.path, 'state.enc'), 'utf8');
    assert.match(state, /^e1\./, 'the state file is sealed');
    for (const secret of seenTokens) {
      assert.ok(!tb.logs.text.includes(secret), 'no access token in the logs');
      assert.ok(!state.includes(secret));
    }
    // oidc-provider's refresh tokens, codes and access tokens are 43-character base64url strings.
    assert.doesNotMatch(tb.logs.text, /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/);
  });
});

test('a sign-in link older than 10 minutes is refused', async () => {
  const clock = manualClock();
  // Its own port: the link is refused before any redirect, and fetch's pool holds nothing for it.
  const other = await freePort();
  const tb = await startTestBroker(config(other), dir.path, { clock, port: other });
  try {
    const { sign_in_url } = (await (await api(tb, 'POST', '/v1/credentials/cdr-user/sign-in')).json()) as { sign_in_url: string };
    clock.advance(10 * 60_000 + 1);
    const res = await fetch(sign_in_url, { redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /expired/);
  } finally {
    await tb.close();
  }
});

test('an idle grant is refreshed every keepAliveSeconds with nobody asking, so IdP idle limits never end it', async () => {
  const clock = manualClock();
  const other = await freePort();
  const tb = await startTestBroker(config(other), dir.path, { clock, port: other, grantWatchMs: 200 });
  try {
    // The device flow needs no redirect to this broker's port.
    const started = (await (await api(tb, 'POST', '/v1/credentials/cdr-device/sign-in')).json()) as { verification_uri: string; user_code: string };
    await completeDeviceSignIn(browser, started, 'erin');
    await until('signed in', async () => ((await (await api(tb, 'GET', '/v1/credentials/cdr-device/sign-in')).json()) as { state: string }).state === 'signed_in' || undefined);
    const before = idp.stats.refreshRedemptions;
    clock.advance(1199_000);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(idp.stats.refreshRedemptions, before, 'not before keepAliveSeconds (1200 s)');
    clock.advance(2_000);
    await until('a keep-alive refresh', async () => (idp.stats.refreshRedemptions > before ? true : undefined));
    const state = (await (await api(tb, 'GET', '/v1/credentials/cdr-device/sign-in')).json()) as { refreshes: number; last_refresh_at: string };
    assert.equal(state.refreshes, 1);
    assert.ok(Date.parse(state.last_refresh_at) >= clock.now() - 2_000, 'refreshed after the clock passed keepAliveSeconds');
    // Logged once the refresh is written back, a moment after the IdP answered.
    const keptAlive = () => tb.logs.entries().filter((e) => /kept alive/.test(String(e.msg)) && e.credentialId === 'cdr-device').length;
    await until('the keep-alive log line', async () => (keptAlive() > 0 ? true : undefined));
    assert.equal(keptAlive(), 1);
    assert.equal(idp.stats.refreshReuse, 0);
  } finally {
    await tb.close();
  }
});

test('Entra ID: the v2.0 endpoints from the tenant\'s discovery document, a device code sign-in, Power BI-style .default scopes', async () => {
  // oidc-provider standing where Entra's tenant issuer is (authorityHost/<tenant>/v2.0): the broker
  // builds that issuer from tenantId, reads its discovery document and redeems there.
  const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
  const client = '3f1e2d4c-5b6a-4789-9abc-def012345678';
  const entra = await startDelegatedIdp({ redirectUris: ['http://127.0.0.1:1/v1/sign-in/callback'], issuerPath: `/${tenant}/v2.0`, publicClientId: client, extraScopes: ['api://cdr/.default'] });
  const tb = await startTestBroker(
    {
      cache: { encryptionKeyFile: join(dir.path, 'keys'), stateFile: join(dir.path, 'entra-state.enc') },
      credentials: [
        {
          id: 'powerbi-owner',
          provider: 'entra',
          tenantId: tenant,
          clientId: client,
          authorityHost: new URL(entra.issuer).origin,
          publicClient: true,
          signIn: { flow: 'device_code' },
          scopes: ['api://cdr/.default'],
        },
      ],
      callers: [
        { id: 'admins', apiKeySha256: sha256Hex(ADMIN_KEY), signIn: true },
        { id: 'gateway', apiKeySha256: sha256Hex(GATEWAY_KEY), allow: [{ credential: 'powerbi-owner' }] },
      ],
    },
    dir.path,
  );
  try {
    const started = (await (await api(tb, 'POST', '/v1/credentials/powerbi-owner/sign-in')).json()) as { verification_uri: string; user_code: string };
    assert.ok(started.verification_uri.startsWith(entra.issuer), started.verification_uri);
    await completeDeviceSignIn(browser, started, 'frank');
    await until('signed in', async () => ((await (await api(tb, 'GET', '/v1/credentials/powerbi-owner/sign-in')).json()) as { state: string }).state === 'signed_in' || undefined);
    const res = await tb.token(GATEWAY_KEY, { credential: 'powerbi-owner' });
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(entra.stats.refreshRedemptions, 1, 'the access token came from the refresh token, scope api://cdr/.default');
    assert.ok(entra.requests.includes(`GET /${tenant}/v2.0/.well-known/openid-configuration`));
  } finally {
    await tb.close();
    await entra.close();
  }
});
