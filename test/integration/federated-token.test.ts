// Workload identity federation end to end: a JWT from an external issuer, in a file the way the
// kubelet projects it, is the client assertion of every exchange. Against the Entra stand-in (which
// checks the token as Entra does: the issuer's signature, the exact iss/sub of a federated
// credential, aud api://AzureADTokenExchange, the time window) on v2 (msal-node) and v1, and
// against oidc-provider. The file is read for every exchange, an expired token is never sent, and
// no token reaches a log line, a response, diagnostics or /readyz.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { stringify } from 'yaml';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { createFederatedIssuer, type FederatedIssuer } from '../fakes/federated-issuer.ts';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { POWERBI_SCOPE, TEST_CLIENT as CLIENT, TEST_TENANT as TENANT } from '../helpers/entra-fixture.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { runCli } from '../helpers/run-cli.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const KEY = 'federated-key';
const DIAG_KEY = 'federated-diagnostics-key';
const SUB = 'system:serviceaccount:bi:token-broker';
/** Resources the rewrite test asks for, one per exchange (a new scope is always a cache miss). */
const ROUNDS = 3;
const ROUND_RESOURCES = Array.from({ length: ROUNDS }, (_, i) => `https://round-${i}.example`);

let dir: TempDir;
let issuer: FederatedIssuer;
let entra: EntraStandIn;
let oidc: SandboxIdp;
let oidcKey: CredentialFiles;
let tb: TestBroker;
/** Every federated token written to a file in this run: none may show up anywhere the broker writes. */
const minted: string[] = [];
/** Everything the broker answered in this run (bodies of every response), checked for tokens at the end. */
const answered: string[] = [];

function mint(options: Parameters<FederatedIssuer['mint']>[0]): string {
  const token = issuer.mint(options);
  minted.push(token);
  return token;
}

/** The kubelet's atomic writer: the token lives in a timestamped folder behind a `..data` link swapped in one rename. */
function project(volume: string, token: string): string {
  const data = `..${randomUUID()}`;
  mkdirSync(join(volume, data), { recursive: true });
  writeFileSync(join(volume, data, 'azure-identity-token'), token);
  symlinkSync(data, join(volume, '..data_tmp'));
  renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
  const file = join(volume, 'azure-identity-token');
  try {
    symlinkSync('..data/azure-identity-token', file);
  } catch {
    // already linked
  }
  return file;
}

/** oidc-provider knows the client by its own key and wants iss = sub = client_id and a single-use jti. */
function oidcAssertion(): string {
  const now = Math.floor(Date.now() / 1000);
  const token = jwt.sign({ iss: 'wi-oidc', sub: 'wi-oidc', aud: oidc.tokenEndpoint, jti: randomUUID(), iat: now, exp: now + 600 }, oidcKey.cert.keyPem, { algorithm: 'RS256' });
  minted.push(token);
  return token;
}

async function call(path: string, init: { method?: string; key?: string; body?: unknown } = {}) {
  const res = await fetch(`${tb.url}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { ...(init.key ? { authorization: `Bearer ${init.key}` } : {}), ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  answered.push(text);
  return { res, text, body: JSON.parse(text) as any };
}

const token = (credential: string, scope?: string) => call('/v1/token', { key: KEY, body: { credential, ...(scope ? { scope } : {}) } });
const readyz = () => call('/readyz');
const entraCredential = (id: string, file: string, extra: Record<string, unknown> = {}) => ({
  id,
  provider: 'entra',
  tenantId: TENANT,
  clientId: CLIENT,
  authorityHost: entra.url,
  federatedToken: { file },
  scopes: [POWERBI_SCOPE],
  ...extra,
});

before(async () => {
  dir = tempDir();
  issuer = createFederatedIssuer();
  entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, federatedCredentials: [{ issuer: issuer.issuer, subject: SUB }] }] });
  entra.registerIssuer(issuer.issuer, issuer.jwks);
  for (const r of ROUND_RESOURCES) entra.knownResources.add(r);
  oidcKey = await writeCredentialFiles(dir, 'wi-oidc');
  oidc = await startSandboxIdp({ clients: [{ clientId: 'wi-oidc', certificatePem: oidcKey.cert.certPem }] });

  mkdirSync(join(dir.path, 'rotating'));
  const credentials = [
    entraCredential('wi-v2', dir.write('v2.jwt', `${mint({ sub: SUB })}\n`)),
    entraCredential('wi-v1', dir.write('v1.jwt', mint({ sub: SUB })), { endpointVersion: 'v1', scopes: [POWERBI_SCOPE, `${ROUND_RESOURCES[0]}/.default`] }),
    entraCredential('wi-rotating', project(join(dir.path, 'rotating'), mint({ sub: SUB })), { scopes: [POWERBI_SCOPE, ...ROUND_RESOURCES.map((r) => `${r}/.default`)] }),
    // Expired before the broker starts: it starts anyway (the kubelet may rewrite the file any second).
    entraCredential('wi-expired', dir.write('expired.jwt', mint({ sub: SUB, iat: Math.floor(Date.now() / 1000) - 7200, nbf: null, exp: Math.floor(Date.now() / 1000) - 3600 }))),
    { id: 'wi-oidc', provider: 'oidc', clientId: 'wi-oidc', tokenEndpoint: oidc.tokenEndpoint, federatedToken: { file: dir.write('oidc.jwt', oidcAssertion()) }, scopes: ['api.read', 'api.write'] },
  ];
  tb = await startTestBroker(
    {
      credentials,
      callers: [
        { id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: credentials.map((c) => ({ credential: c.id, scopes: ['*'] })) },
        { id: 'engineers', apiKeySha256: sha256Hex(DIAG_KEY), diagnostics: true, allow: credentials.map((c) => ({ credential: c.id })) },
      ],
    },
    dir.path,
  );
});

after(async () => {
  await tb?.close();
  await entra?.close();
  await oidc?.close();
  dir.remove();
});

describe('a federated token file as the client assertion', () => {
  test('Entra v2 (msal-node): the token in the file is the assertion, and Entra accepts it', async () => {
    const { res, text, body } = await token('wi-v2');
    assert.equal(res.status, 200, text);
    assert.equal(body.cache, 'miss');
    const seen = entra.requests.at(-1)!;
    assert.equal(seen.path, `/${TENANT}/oauth2/v2.0/token`);
    assert.equal(seen.outcome, 200);
    assert.deepEqual(seen.clientAuth, ['federated']);
    assert.equal(seen.form.client_assertion_type, 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    assert.equal(seen.form.client_assertion, minted[0]);
    assert.equal(seen.claims?.sub, SUB);
  });

  test('Entra v1: the same, with resource', async () => {
    const { res, text } = await token('wi-v1');
    assert.equal(res.status, 200, text);
    const seen = entra.requests.at(-1)!;
    assert.equal(seen.path, `/${TENANT}/oauth2/token`);
    assert.equal(seen.outcome, 200);
    assert.deepEqual(seen.clientAuth, ['federated']);
    assert.equal(seen.form.resource, 'https://analysis.windows.net/powerbi/api');
    assert.equal(seen.form.client_assertion, minted[1]);
  });

  test('OIDC (oidc-provider): the token in the file is sent as it is, read again for the next exchange', async () => {
    // oidc-provider cannot check a token from another issuer (it wants iss = sub = client_id, signed
    // with the client's registered key, and refuses a jti it has seen): the file holds such a token,
    // so the second exchange succeeds only because the rewritten file was read.
    const first = await token('wi-oidc', 'api.read');
    assert.equal(first.res.status, 200, first.text);
    const rewritten = oidcAssertion();
    dir.write('oidc.jwt', rewritten);
    const second = await token('wi-oidc', 'api.write');
    assert.equal(second.res.status, 200, second.text);
    const seen = oidc.captured.filter((c) => c.clientId === 'wi-oidc');
    assert.deepEqual(seen.map((c) => c.status), [200, 200]);
    assert.equal(seen[1]!.assertion, rewritten);
  });

  test('the kubelet rewrites the file mid-run: each next exchange carries the token then in the file', async () => {
    const volume = join(dir.path, 'rotating');
    const first = await token('wi-rotating', POWERBI_SCOPE);
    assert.equal(first.res.status, 200, first.text);
    const jtis: unknown[] = [entra.requests.at(-1)!.claims?.jti];
    for (let round = 0; round < ROUNDS; round++) {
      const next = mint({ sub: SUB });
      project(volume, next);
      const before = entra.requests.length;
      const { res, text, body } = await token('wi-rotating', `${ROUND_RESOURCES[round]}/.default`);
      assert.equal(res.status, 200, text);
      assert.equal(body.cache, 'miss');
      const sent = entra.requests.slice(before);
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.form.client_assertion, next, `round ${round}: the new token was sent`);
      assert.equal(sent[0]!.outcome, 200);
      jtis.push(sent[0]!.claims?.jti);
    }
    assert.equal(new Set(jtis).size, ROUNDS + 1);
    // The same workload identity (iss, sub) across rewrites: the token obtained before is still served.
    const again = await token('wi-rotating', POWERBI_SCOPE);
    assert.equal(again.body.cache, 'hit');
  });

  test('an expired token is never sent: 503 naming the file and the exp, /readyz not_ready until the file is rewritten', async () => {
    const file = join(dir.path, 'expired.jwt');
    const exp = new Date(JSON.parse(Buffer.from(minted[3]!.split('.')[1]!, 'base64url').toString()).exp * 1000).toISOString();
    const before = entra.requests.length;
    const { res, body } = await token('wi-expired');
    assert.equal(res.status, 503);
    assert.equal(body.code, 'idp_unavailable');
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    assert.ok(body.detail.includes(file), body.detail);
    assert.ok(body.detail.includes(`expired at ${exp}`), body.detail);
    assert.equal(entra.requests.length, before, 'no request reached Entra');

    const ready = await readyz();
    assert.equal(ready.res.status, 503);
    assert.equal(ready.body.status, 'not_ready');
    const check = ready.body.checks.client_authentication.find((c: any) => c.credential === 'wi-expired');
    assert.deepEqual({ kind: check.kind, status: check.status, file: check.file, expires_at: check.expires_at, sub: check.sub }, { kind: 'federatedToken', status: 'expired', file, expires_at: exp, sub: SUB });
    const fine = ready.body.checks.client_authentication.find((c: any) => c.credential === 'wi-v2');
    assert.equal(fine.status, 'ok');
    assert.match(fine.expires_at, /^\d{4}-\d\d-\d\dT/);

    // The writer catches up: no restart needed.
    dir.write('expired.jwt', mint({ sub: SUB }));
    const recovered = await token('wi-expired');
    assert.equal(recovered.res.status, 200, recovered.text);
    assert.equal(entra.requests.at(-1)!.outcome, 200);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await readyz();
      if (r.res.status === 200) {
        assert.equal(r.body.checks.client_authentication.find((c: any) => c.credential === 'wi-expired').status, 'ok');
        break;
      }
      assert.ok(Date.now() < deadline, `still not ready: ${r.text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  test('a file that is no JWT any more: 503 naming the file, nothing sent', async () => {
    dir.write('v1.jwt', 'this-is-not-a-jwt\n');
    const before = entra.requests.length;
    const { res, body } = await token('wi-v1', `${ROUND_RESOURCES[0]}/.default`);
    // A still-valid token from before would be served; a new scope needs an exchange.
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.match(body.detail, /does not hold a JWT/);
    assert.ok(body.detail.includes(join(dir.path, 'v1.jwt')));
    assert.equal(entra.requests.length, before);
    const check = (await readyz()).body.checks.client_authentication.find((c: any) => c.credential === 'wi-v1');
    assert.equal(check.status, 'unavailable');
    dir.write('v1.jwt', mint({ sub: SUB }));
  });

  test('diagnostics describe and probe a federated credential without its token', async () => {
    const described = await call('/v1/diagnostics/credentials/wi-v2', { key: DIAG_KEY });
    assert.equal(described.res.status, 200, described.text);
    assert.equal(described.body.client_authentication.kind, 'federatedToken');
    assert.equal(described.body.client_authentication.claims.sub, SUB);
    assert.equal(described.body.client_authentication.header.kid, issuer.kid);
    const probe = await call('/v1/diagnostics/credentials/wi-v2/probe', { key: DIAG_KEY, body: {} });
    assert.equal(probe.res.status, 200, probe.text);
    assert.equal(probe.body.outcome, 'ok', probe.text);
  });

  test('no federated token in any log line, response, diagnostics answer or /readyz of this run', async () => {
    await readyz();
    assert.ok(minted.length >= 8 && answered.length >= 10);
    const everything = [...answered, tb.logs.text].join('\n');
    for (const t of minted) {
      assert.ok(!everything.includes(t), 'a federated token was written out');
      assert.ok(!everything.includes(t.split('.')[2]!), 'a federated token signature was written out');
    }
    assert.match(tb.logs.text, /federated token read from the file/);
  });
});

describe('token-broker config check with a federated token', () => {
  const check = (file: string) => {
    const config = dir.write(`check-${randomUUID()}.yaml`, stringify({
      credentials: [{ id: 'wi', provider: 'entra', tenantId: TENANT, clientId: CLIENT, federatedToken: { file }, scopes: [POWERBI_SCOPE] }],
      callers: [{ id: 'c', apiKeySha256: sha256Hex('k'), allow: [{ credential: 'wi' }] }],
    }));
    return runCli(['config', 'check', config]);
  };

  test('prints the token\'s iss, sub, aud, alg, kid and exp, never the token', async () => {
    const t = mint({ sub: SUB, aud: 'api://AzureADTokenExchange' });
    const exp = new Date(JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()).exp * 1000).toISOString();
    const file = dir.write('check-ok.jwt', `${t}\n`);
    const { code, stdout, stderr } = await check(file);
    assert.equal(code, 0, stderr);
    const line = stdout.split('\n').find((l) => l.includes('wi:'))!;
    for (const part of [`federated token ${file}`, `iss ${issuer.issuer}`, `sub ${SUB}`, 'aud api://AzureADTokenExchange', `RS256 kid ${issuer.kid}`, `valid until ${exp}`]) {
      assert.ok(line.includes(part), `${part} in: ${line}`);
    }
    assert.ok(!stdout.includes(t.split('.')[2]!) && !stderr.includes(t.split('.')[2]!));
  });

  test('an expired token: a warning, exit 0 (the file may be rewritten any second)', async () => {
    const file = dir.write('check-expired.jwt', mint({ sub: SUB, iat: null, nbf: null, exp: Math.floor(Date.now() / 1000) - 60 }));
    const { code, stdout, stderr } = await check(file);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /warning: this token has expired: it is not sent, and \/readyz is not_ready, until the file holds a newer one/);
  });

  test('a file that is no JWT: exit 1 naming the field and the file, not its content', async () => {
    const file = dir.write('check-bad.jwt', 'sk-live-not-a-jwt-0123456789\n');
    const { code, stderr } = await check(file);
    assert.equal(code, 1);
    assert.match(stderr, /credentials\[0\]\.federatedToken\.file/);
    assert.ok(stderr.includes(file));
    assert.ok(!stderr.includes('sk-live-not-a-jwt'));
  });
});
