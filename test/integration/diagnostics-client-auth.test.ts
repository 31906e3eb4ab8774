// Diagnostics per kind of client authentication (issue 10), through a real broker against the strict
// Entra stand-in: the credential view of a federated token (its decoded claims checked against
// Entra's federated-credential rules before any exchange) and of a client secret (no assertion;
// the method the IdP takes, the file's age), probes that come back with AADSTS700212 / 700213 /
// 7000215 and their fixes, a pasted federated token checked as one, and /readyz per kind. No
// response and no log line carries a token or a secret.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { createFederatedIssuer, type FederatedIssuer } from '../fakes/federated-issuer.ts';
import { sha256Hex, tempDir, type TempDir } from '../helpers/credential-files.ts';
import { POWERBI_SCOPE, TEST_CLIENT as CLIENT, TEST_TENANT as TENANT } from '../helpers/entra-fixture.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const KEY = `engineer-${Math.random().toString(36).slice(2)}`;
const SUB = 'system:serviceaccount:bi:token-broker';
const EXCHANGE = 'api://AzureADTokenExchange';
const GOOD_SECRET = 'Qx8~gH2.vS_aTq+LmW/3nE=kYr5%zJ0p:cB';
const WRONG_SECRET = 'an-old-secret-nobody-registered';

let dir: TempDir;
let issuer: FederatedIssuer;
let entra: EntraStandIn;
let tb: TestBroker;
let goneFile: string;
const minted: string[] = [];
const responses: string[] = [];

function mint(options: Parameters<FederatedIssuer['mint']>[0]): string {
  const token = issuer.mint(options);
  minted.push(token);
  return token;
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; text: string; body: any }> {
  const res = await fetch(`${tb.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  responses.push(text);
  return { status: res.status, text, body: JSON.parse(text) };
}

const view = async (id: string) => {
  const res = await call('GET', `/v1/diagnostics/credentials/${id}`);
  assert.equal(res.status, 200, res.text);
  return res.body;
};
const probe = async (id: string) => {
  const res = await call('POST', `/v1/diagnostics/credentials/${id}/probe`, {});
  assert.equal(res.status, 200, res.text);
  return res.body;
};
const findingOf = (body: any, id: string) => {
  const f = body.findings.find((x: any) => x.id === id);
  assert.ok(f, `${id} not in ${body.findings.map((x: any) => x.id).join(', ')}`);
  return f;
};

const entraCredential = (id: string, auth: Record<string, unknown>) => ({ id, provider: 'entra', tenantId: TENANT, clientId: CLIENT, authorityHost: entra.url, scopes: [POWERBI_SCOPE], timeoutMs: 3000, ...auth });

before(async () => {
  dir = tempDir();
  issuer = createFederatedIssuer();
  entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, secrets: [GOOD_SECRET], federatedCredentials: [{ issuer: issuer.issuer, subject: SUB }] }] });
  entra.registerIssuer(issuer.issuer, issuer.jwks);
  const now = Math.floor(Date.now() / 1000);
  goneFile = dir.write('gone.jwt', mint({ sub: SUB }));
  const credentials = [
    entraCredential('wi', { federatedToken: { file: dir.write('wi.jwt', `${mint({ sub: SUB })}\n`) } }),
    // The pod's default service-account token: issued for the API server, not for Entra.
    entraCredential('wi-default-sa', { federatedToken: { file: dir.write('default-sa.jwt', mint({ sub: SUB, aud: ['https://kubernetes.default.svc.cluster.local'] })) } }),
    entraCredential('wi-other-sub', { federatedToken: { file: dir.write('other-sub.jwt', mint({ sub: 'system:serviceaccount:bi:reports' })) } }),
    // 55 of its 60 minutes gone: the kubelet should have rewritten it at 48.
    entraCredential('wi-stale', { federatedToken: { file: dir.write('stale.jwt', mint({ sub: SUB, iat: now - 3300, nbf: now - 3300, exp: now + 300 })) } }),
    entraCredential('wi-gone', { federatedToken: { file: goneFile } }),
    entraCredential('secret', { clientSecret: { file: dir.write('secret', `${GOOD_SECRET}\n`) } }),
    entraCredential('secret-wrong', { clientSecret: { file: dir.write('secret-wrong', WRONG_SECRET) } }),
    { id: 'okta-post', provider: 'oidc', preset: 'okta', clientId: '0oa1b2c3d4', tokenEndpoint: 'https://acme.okta.com/oauth2/v1/token', clientSecret: { file: dir.write('okta-secret', 'okta-secret-value'), method: 'client_secret_post' }, scopes: ['api.read'] },
  ];
  tb = await startTestBroker({ credentials, callers: [{ id: 'engineers', apiKeySha256: sha256Hex(KEY), diagnostics: true }] }, dir.path, { logLevel: 'trace' });
});

after(async () => {
  await tb?.close();
  await entra?.close();
  dir?.remove();
});

describe('a federated-token credential', () => {
  test('the view: the token\'s claims checked against Entra\'s federated-credential rules, the values to register, never the token', async () => {
    const b = await view('wi');
    assert.equal(b.client_authentication.kind, 'federatedToken');
    assert.equal(b.certificate, null);
    assert.equal(b.audience, EXCHANGE, 'the aud the token must carry, not the token URL');
    assert.equal(b.token_endpoint, `${entra.url}/${TENANT}/oauth2/v2.0/token`);
    assert.equal(b.assertion.signed_by, 'external issuer');
    assert.equal(b.assertion.signed, false);
    assert.equal(b.assertion.claims.sub, SUB);
    assert.deepEqual(b.assertion.claims.aud, [EXCHANGE]);
    assert.equal(b.assertion.header.kid, issuer.kid);
    assert.equal(b.verdict, 'ok', JSON.stringify(b.findings, null, 1));
    assert.deepEqual(b.findings.filter((f: any) => f.severity !== 'info'), []);
    const register = findingOf(b, 'federated.register');
    assert.equal(register.expected, `issuer ${issuer.issuer} · subject ${SUB} · audience ${EXCHANGE}`);
    assert.match(register.fix, new RegExp(`federated-credential create --id ${CLIENT}`));
    assert.match(findingOf(b, 'target.assumed').message, /^checked as a federated token against Entra ID/);
    // What a certificate assertion must do (iss = client id, aud = token URL, a thumbprint) is not asked of it.
    for (const id of ['iss.not_guid', 'aud.not_token_endpoint', 'thumbprint.missing', 'lifetime.too_long', 'jti.missing']) {
      assert.ok(!b.findings.some((f: any) => f.id === id), id);
    }
  });

  test('a token for the API server: AADSTS700212 in the view before any exchange, then from Entra in the probe, with the fix', async () => {
    const before = entra.requests.length;
    const b = await view('wi-default-sa');
    assert.equal(entra.requests.length, before, 'the view sends nothing');
    assert.equal(b.verdict, 'will_fail');
    const aud = findingOf(b, 'federated.aud_not_token_exchange');
    assert.deepEqual([aud.severity, aud.idp_error, aud.expected], ['error', 'AADSTS700212', EXCHANGE]);
    assert.match(aud.fix, /projected serviceAccountToken volume with audience: api:\/\/AzureADTokenExchange/);
    const p = await probe('wi-default-sa');
    assert.equal(p.outcome, 'rejected', JSON.stringify(p));
    assert.equal(p.idp_error, 'AADSTS700212');
    assert.equal(p.explanation.explanations[0].code, 'AADSTS700212');
    assert.match(p.explanation.fix, /audience api:\/\/AzureADTokenExchange/);
    assert.ok(p.explanation.explanations[0].rules.includes('federated.aud_not_token_exchange'));
    const ids = p.findings.map((f: any) => f.id);
    assert.deepEqual(ids.slice(0, 2), ['probe.rejected', 'federated.aud_not_token_exchange']);
    assert.match(findingOf(p, 'probe.federated_token_in_use').message, new RegExp(`sub ${SUB}, aud https://kubernetes.default.svc.cluster.local`));
  });

  test('a subject no federated credential names: only Entra can tell (AADSTS700213 in the probe), and the fix says what to register', async () => {
    const b = await view('wi-other-sub');
    assert.equal(b.verdict, 'ok');
    assert.match(findingOf(b, 'federated.register').expected, /subject system:serviceaccount:bi:reports/);
    const p = await probe('wi-other-sub');
    assert.equal(p.idp_error, 'AADSTS700213');
    assert.match(p.explanation.fix, /subject to the token's sub exactly: system:serviceaccount:<namespace>:<service account>/);
    assert.equal(findingOf(p, 'probe.federated_token_in_use').actual, `issuer ${issuer.issuer} · subject system:serviceaccount:bi:reports · audience ${EXCHANGE}`);
  });

  test('a good token: the probe succeeds', async () => {
    const p = await probe('wi');
    assert.equal(p.outcome, 'ok', JSON.stringify(p));
    assert.equal(p.token.claims.appid, CLIENT);
  });

  test('a token past the kubelet\'s renewal point: a warning that it should have been replaced', async () => {
    const b = await view('wi-stale');
    const f = findingOf(b, 'federated.expires_soon');
    assert.equal(f.severity, 'warning');
    assert.match(f.message, /should have been replaced by now/);
    assert.equal(b.verdict, 'ok');
  });

  test('a token file that disappears: an error saying nothing is sent, and the probe sends nothing', async () => {
    rmSync(goneFile);
    // The kind re-reads its file at most once a second for these views.
    let b: any;
    for (let i = 0; i < 200; i++) {
      b = await view('wi-gone');
      if (b.findings.some((f: any) => f.id === 'client_auth.unavailable')) break;
      await sleep(25);
    }
    const f = findingOf(b, 'client_auth.unavailable');
    assert.equal(f.severity, 'error');
    assert.match(f.message, new RegExp(`${goneFile} does not exist: nothing is sent to the IdP`));
    assert.match(f.fix, /projected service-account token volume/);
    assert.equal(b.verdict, 'will_fail');
    assert.equal(b.assertion.claims, null);
    const before = entra.requests.length;
    const p = await probe('wi-gone');
    assert.equal(p.outcome, 'unavailable');
    assert.equal(p.findings[0].id, 'probe.credential_unavailable');
    assert.equal(entra.requests.length, before, 'nothing was sent');
  });
});

describe('a client-secret credential', () => {
  test('the view: no assertion, no certificate, the method Entra takes and the file\'s age, never the secret', async () => {
    const b = await view('secret');
    assert.equal(b.client_authentication.kind, 'clientSecret');
    assert.equal(b.assertion, null);
    assert.equal(b.certificate, null);
    assert.equal(b.audience, null, 'a secret carries no aud');
    assert.equal(b.verdict, 'ok', JSON.stringify(b.findings));
    const method = findingOf(b, 'client_secret.method');
    assert.deepEqual([method.severity, method.actual], ['info', 'client_secret_post']);
    assert.match(method.message, /Entra takes a secret only as the client_secret form field/);
    assert.match(method.message, new RegExp(`as client_secret_post, in the client_id and client_secret form fields`));
    const age = findingOf(b, 'client_secret.file_changed');
    assert.match(age.message, /\(0 days ago\).*AADSTS7000222/);
    assert.match(age.fix, /previousFile/);
    // No assertion lint for a kind that sends none.
    assert.ok(!b.findings.some((f: any) => f.id.startsWith('alg.') || f.id.startsWith('aud.') || f.id === 'target.assumed'), b.findings.map((f: any) => f.id).join(', '));
    assert.equal((await probe('secret')).outcome, 'ok');
  });

  test('a wrong secret: AADSTS7000215 with its fix (the value, not the secret ID), and which file was sent', async () => {
    const p = await probe('secret-wrong');
    assert.equal(p.outcome, 'rejected');
    assert.equal(p.idp_error, 'AADSTS7000215');
    assert.match(p.explanation.fix, /Value column \(not the Secret ID\)/);
    const used = findingOf(p, 'probe.secret_in_use');
    assert.match(used.message, /secret-wrong \(changed \d{4}-\d\d-\d\dT[^)]+\) as client_secret_post/);
  });

  test('an Okta app with client_secret_post: a warning that the app must be registered for that method', async () => {
    const f = findingOf(await view('okta-post'), 'client_secret.method');
    assert.equal(f.severity, 'warning');
    assert.match(f.message, /Okta apps default to client_secret_basic/);
  });
});

describe('POST /v1/diagnostics/assertion with federated tokens', () => {
  test('pasted alone, a Kubernetes token is recognised as a federated token for Entra', async () => {
    const res = await call('POST', '/v1/diagnostics/assertion', { assertion: mint({ sub: SUB }) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.verdict, 'ok', JSON.stringify(res.body.findings));
    assert.match(findingOf(res.body, 'target.assumed').message, /^checked as a federated token against Entra ID/);
    assert.deepEqual(res.body.signature, { checked: false, valid: null });
  });

  test('named with a federated credential, a token for another audience is checked as that credential\'s: AADSTS700212', async () => {
    const res = await call('POST', '/v1/diagnostics/assertion', { assertion: mint({ sub: SUB, aud: 'https://kubernetes.default.svc' }), credential: 'wi' });
    assert.equal(res.body.verdict, 'will_fail');
    assert.equal(findingOf(res.body, 'federated.aud_not_token_exchange').idp_error, 'AADSTS700212');
    assert.match(findingOf(res.body, 'target.assumed').message, /target from credential 'wi'/);
  });

  test('named with a client-secret credential: the JWT is judged by its shape, and the answer says the credential sends none', async () => {
    const res = await call('POST', '/v1/diagnostics/assertion', { assertion: mint({ sub: SUB }), credential: 'secret' });
    assert.equal(res.status, 200, res.text);
    assert.match(findingOf(res.body, 'credential.sends_no_assertion').message, /authenticates with a client secret/);
  });
});

test('/readyz lists every credential by its kind', async () => {
  const res = await fetch(`${tb.url}/readyz`);
  const body = (await res.json()) as any;
  responses.push(JSON.stringify(body));
  const byId = Object.fromEntries(body.checks.client_authentication.map((c: any) => [c.credential, c]));
  assert.deepEqual([byId.wi.kind, byId.secret.kind], ['federatedToken', 'clientSecret']);
  assert.equal(byId['wi-stale'].status, 'expiring_soon');
  assert.deepEqual(body.checks.certificates, []);
});

test('no response and no log line carries a federated token, its signature, or a secret', () => {
  assert.ok(responses.length >= 15, `${responses.length} responses`);
  const secrets: [string, string][] = [
    ['the good secret', GOOD_SECRET],
    ['the wrong secret', WRONG_SECRET],
    ['the Okta secret', 'okta-secret-value'],
    ...minted.flatMap((t, i): [string, string][] => [[`token #${i}`, t], [`token #${i} signature`, t.split('.')[2]!]]),
  ];
  for (const [where, text] of [...responses.map((r, i) => [`response #${i}`, r]), ...tb.logs.lines.map((l, i) => [`log line #${i}`, l])] as [string, string][]) {
    assert.doesNotMatch(text, /eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}/, `${where}: ${text.slice(0, 300)}`);
    for (const [label, secret] of secrets) assert.ok(!text.includes(secret), `${where} contains ${label}`);
  }
});
