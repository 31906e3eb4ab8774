// /v1/diagnostics/* through a real broker (docs/design.md §5.4, issue 5): assertion lint,
// credential view, live probes against the strict Entra stand-in and a real oidc-provider, error
// explanations, authorisation, and the hard rules — nothing pasted is sent anywhere, and no
// response or log line carries a token, an assertion signature or key material.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SANDBOX_RESOURCE, startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { POWERBI_SCOPE as POWERBI, TEST_CLIENT as CLIENT, TEST_TENANT as TENANT, entraCredential as testAppCredential } from '../helpers/entra-fixture.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const ENGINEER_KEY = `engineer-${randomUUID()}`;
const JOBS_KEY = `jobs-${randomUUID()}`;

let dir: TempDir;
let entra: EntraStandIn;
let generic: SandboxIdp;
let keycloak: SandboxIdp;
let auth0: SandboxIdp;
let tb: TestBroker;
const files: Record<string, CredentialFiles> = {};
/** Every response body the tests saw, searched for secrets at the end. */
const responses: string[] = [];
/** Assertions pasted by the tests (real signatures made with the test keys). */
const pasted: string[] = [];

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

async function call(method: string, path: string, opts: { key?: string; body?: unknown; contentType?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  const res = await fetch(`${tb.url}${path}`, { method, headers, body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) });
  const text = await res.text();
  responses.push(text);
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}

const diag = (method: string, path: string, body?: unknown) => call(method, path, { key: ENGINEER_KEY, body });

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

/** The forum-thread assertion, signed for real with a throw-away key. */
function forumAssertion(): string {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64url({ typ: 'JWT', alg: 'RS256', x5t: 'SSL_FINGERPRINT', kid: 'SSL_FINGERPRINT' })}.${b64url({ iss: CLIENT, sub: CLIENT, aud: `https://login.microsoftonline.com/${TENANT}`, jti: 'UNIQUE TOKEN', iat: now, nbf: now + 60, exp: now + 3600 })}`;
  const jws = `${input}.${sign('sha256', Buffer.from(input), createPrivateKey(files.stranger!.cert.keyPem)).toString('base64url')}`;
  pasted.push(jws);
  return jws;
}

function entraCredential(id: string, extra: Record<string, unknown> = {}, cert = 'registered') {
  return testAppCredential(id, entra.url, files[cert]!, { timeoutMs: 3000, ...extra });
}

function oidcCredential(id: string, extra: Record<string, unknown>) {
  return { id, provider: 'oidc', clientId: id, certificate: { certFile: files.cdr!.certFile, keyFile: files.cdr!.keyFile }, scopes: ['api.read'], timeoutMs: 3000, ...extra };
}

before(async () => {
  dir = tempDir();
  for (const name of ['registered', 'unregistered', 'cdr', 'stranger']) files[name] = await writeCredentialFiles(dir, name);
  entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, certificates: [files.registered!.cert.certPem] }] });
  const cdrClient = (clientId: string) => ({ clientId, certificatePem: files.cdr!.cert.certPem });
  [generic, keycloak, auth0] = await Promise.all([
    startSandboxIdp({ clients: [cdrClient('cdr'), cdrClient('cdr-discovered'), cdrClient('cdr-okta')] }),
    startSandboxIdp({ clients: [cdrClient('ehr-keycloak')], issuerPath: '/realms/ehr' }),
    startSandboxIdp({ clients: [cdrClient('m2m-auth0'), cdrClient('m2m-auth0-default'), cdrClient('m2m-auth0-long')], issuerPath: '/' }),
  ]);
  const credentials = [
    entraCredential('powerbi'),
    entraCredential('powerbi-v1', { endpointVersion: 'v1' }),
    entraCredential('powerbi-rs256', { assertion: { algorithm: 'RS256' } }),
    // A GCC (usgov) credential asking for the commercial Power BI resource: a token Power BI gov refuses.
    entraCredential('powerbi-gcc', { cloud: 'usgov' }),
    entraCredential('wrong-cert', {}, 'unregistered'),
    oidcCredential('cdr', { tokenEndpoint: generic.tokenEndpoint }),
    oidcCredential('cdr-discovered', { issuer: generic.issuer }),
    oidcCredential('cdr-okta', { preset: 'okta', tokenEndpoint: generic.tokenEndpoint }),
    oidcCredential('ehr-keycloak', { preset: 'keycloak', issuer: keycloak.issuer, tokenEndpoint: keycloak.tokenEndpoint }),
    // Auth0 accepts assertions of at most 5 minutes; the broker's default lifetime is 600 s.
    oidcCredential('m2m-auth0', { preset: 'auth0', issuer: auth0.issuer, tokenEndpoint: auth0.tokenEndpoint, assertion: { lifetimeSeconds: 300 } }),
    oidcCredential('m2m-auth0-default', { preset: 'auth0', issuer: auth0.issuer, tokenEndpoint: auth0.tokenEndpoint }),
    oidcCredential('m2m-auth0-long', { preset: 'auth0', issuer: auth0.issuer, tokenEndpoint: auth0.tokenEndpoint, assertion: { lifetimeSeconds: 600 } }),
  ];
  tb = await startTestBroker(
    {
      credentials,
      callers: [
        { id: 'engineers', apiKeySha256: sha256Hex(ENGINEER_KEY), diagnostics: true },
        { id: 'jobs', apiKeySha256: sha256Hex(JOBS_KEY), allow: [{ credential: 'cdr' }] },
      ],
    },
    dir.path,
    { logLevel: 'trace' },
  );
});

after(async () => {
  await tb?.close();
  await Promise.all([entra?.close(), generic?.close(), keycloak?.close(), auth0?.close()]);
  dir?.remove();
});

describe('who may use diagnostics', () => {
  test('a caller without diagnostics: true gets 403 on every endpoint, before its body is read', async () => {
    for (const [method, path, body] of [
      ['POST', '/v1/diagnostics/assertion', { assertion: 'x' }],
      ['GET', '/v1/diagnostics/credentials/cdr', undefined],
      ['POST', '/v1/diagnostics/credentials/cdr/probe', {}],
      ['POST', '/v1/diagnostics/explain', '{"error": "not json'],
    ] as const) {
      const res = await call(method, path, { key: JOBS_KEY, body });
      assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
      assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.equal(res.body.code, 'forbidden');
    }
  });

  test('no key: 401', async () => {
    const res = await call('POST', '/v1/diagnostics/explain', { body: { error: 'AADSTS700023' } });
    assert.equal(res.status, 401);
    assert.equal(res.body.code, 'unauthenticated');
  });
});

describe('POST /v1/diagnostics/assertion', () => {
  test('the forum-thread assertion: exactly the contract fields, the aud error with AADSTS700023 and the value to use, a finding on nbf', async () => {
    const tokenEndpoint = `https://login.windows.net/${TENANT}/oauth2/token`;
    const res = await diag('POST', '/v1/diagnostics/assertion', { assertion: forumAssertion(), token_endpoint: tokenEndpoint });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(Object.keys(res.body).sort(), ['claims', 'findings', 'header', 'signature', 'verdict']);
    assert.equal(res.body.verdict, 'will_fail');
    assert.deepEqual(res.body.signature, { checked: false, valid: null });
    assert.equal(res.body.claims.aud, `https://login.microsoftonline.com/${TENANT}`);
    assert.equal(res.body.header.x5t, 'SSL_FINGERPRINT');
    const aud = res.body.findings.find((f: any) => f.claim === 'aud' && f.severity === 'error');
    assert.equal(aud.idp_error, 'AADSTS700023');
    assert.equal(aud.expected, tokenEndpoint);
    assert.ok(res.body.findings.some((f: any) => f.claim === 'nbf'));
    for (const f of res.body.findings) {
      assert.deepEqual(
        Object.keys(f).filter((k) => !['id', 'severity', 'claim', 'message', 'expected', 'actual', 'idp_error', 'fix'].includes(k)),
        [],
        'only the contract finding fields',
      );
    }
  });

  test('an assertion the broker itself builds, for every configured credential: verdict ok, signature verified', async () => {
    // m2m-auth0-long is the one configuration the lint rightly refuses (see the credential view test).
    for (const runtime of tb.broker.tokenService.listCredentials().filter((r) => r.config.id !== 'm2m-auth0-long')) {
      const { audience } = await runtime.provider.describeEndpoint();
      const assertion = (await runtime.auth.authenticate({ clientId: runtime.config.clientId, tokenEndpoint: audience, audience })).form.client_assertion!;
      pasted.push(assertion);
      const res = await diag('POST', '/v1/diagnostics/assertion', { assertion, credential: runtime.config.id });
      assert.equal(res.status, 200, res.text);
      const errors = res.body.findings.filter((f: any) => f.severity === 'error');
      assert.deepEqual(errors, [], `${runtime.config.id}: ${JSON.stringify(res.body.findings, null, 1)}`);
      assert.equal(res.body.verdict, 'ok', runtime.config.id);
      assert.equal(res.body.signature.checked, true, runtime.config.id);
      assert.equal(res.body.signature.valid, true, runtime.config.id);
      assert.equal(res.body.signature.certificate.sha1, runtime.auth.signingCertificate!().thumbprints.sha1Hex);
    }
  });

  test('an assertion signed by another key than the credential\'s certificate: signature invalid', async () => {
    const runtime = tb.broker.tokenService.credential('powerbi');
    const good = (await runtime.auth.authenticate({ clientId: CLIENT, tokenEndpoint: `${entra.url}/${TENANT}/oauth2/v2.0/token`, audience: `${entra.url}/${TENANT}/oauth2/v2.0/token` })).form.client_assertion!;
    const [h, p] = good.split('.');
    const forged = `${h}.${p}.${sign('sha256', Buffer.from(`${h}.${p}`), createPrivateKey(files.stranger!.cert.keyPem)).toString('base64url')}`;
    pasted.push(forged);
    const res = await diag('POST', '/v1/diagnostics/assertion', { assertion: forged, credential: 'powerbi' });
    assert.equal(res.body.signature.valid, false);
    assert.equal(res.body.verdict, 'will_fail');
    assert.ok(res.body.findings.some((f: any) => f.id === 'signature.invalid' && f.idp_error === 'AADSTS700027'));
  });

  test('bad input is a 400 problem naming the field; unknown credential 404', async () => {
    const missing = await diag('POST', '/v1/diagnostics/assertion', { token_endpoint: 'https://x.example/token' });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.errors[0].field, 'assertion');
    const unknown = await diag('POST', '/v1/diagnostics/assertion', { assertion: 'a.b.c', extra: 1 });
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.body.errors, [{ field: 'extra', message: 'unknown field' }]);
    const badUrl = await diag('POST', '/v1/diagnostics/assertion', { assertion: 'a.b.c', token_endpoint: 'ftp://x' });
    assert.equal(badUrl.status, 400);
    const provider = await diag('POST', '/v1/diagnostics/assertion', { assertion: 'a.b.c', provider: 'ping' });
    assert.equal(provider.status, 400);
    const cred = await diag('POST', '/v1/diagnostics/assertion', { assertion: 'a.b.c', credential: 'nope' });
    assert.equal(cred.status, 404);
    assert.equal(cred.body.code, 'unknown_credential');
    const notJson = await call('POST', '/v1/diagnostics/assertion', { key: ENGINEER_KEY, body: 'assertion=a.b.c', contentType: 'application/x-www-form-urlencoded' });
    assert.equal(notJson.status, 415);
    const garbage = await diag('POST', '/v1/diagnostics/assertion', { assertion: 'not a jwt' });
    assert.equal(garbage.status, 200);
    assert.equal(garbage.body.verdict, 'will_fail');
    assert.equal(garbage.body.findings[0].id, 'jws.malformed');
  });
});

describe('GET /v1/diagnostics/credentials/:id', () => {
  test('entra: certificate facts, token endpoint, the header and claims the broker would sign (unsigned)', async () => {
    const res = await diag('GET', '/v1/diagnostics/credentials/powerbi');
    assert.equal(res.status, 200, res.text);
    const b = res.body;
    const cert = tb.broker.tokenService.credential('powerbi').auth.signingCertificate!();
    const tokenUrl = `${entra.url}/${TENANT}/oauth2/v2.0/token`;
    assert.equal(b.credential, 'powerbi');
    assert.equal(b.provider, 'entra');
    assert.equal(b.endpoint_version, 'v2');
    assert.equal(b.token_endpoint, tokenUrl);
    assert.equal(b.audience, tokenUrl);
    for (const k of ['subject', 'issuer', 'serial', 'not_before', 'not_after', 'sha1', 'sha256', 'x5t', 'x5t#S256']) assert.ok(b.certificate[k], k);
    assert.equal(b.certificate.sha1, cert.thumbprints.sha1Hex);
    assert.equal(b.certificate.sha256, cert.thumbprints.sha256Hex);
    assert.equal(b.certificate['x5t#S256'], cert.thumbprints.x5tS256);
    assert.deepEqual(b.assertion.header, { alg: 'PS256', typ: 'JWT', 'x5t#S256': cert.thumbprints.x5tS256 });
    assert.equal(b.assertion.claims.aud, tokenUrl);
    assert.equal(b.assertion.claims.iss, CLIENT);
    assert.equal(b.assertion.claims.exp - b.assertion.claims.iat, 600);
    assert.equal(b.assertion.signed, false);
    assert.equal(b.verdict, 'ok');
    assert.deepEqual(b.findings.filter((f: any) => f.severity === 'error'), []);
  });

  test('oidc with discovery: the discovered token endpoint and the audience the preset uses', async () => {
    const res = await diag('GET', '/v1/diagnostics/credentials/cdr-discovered');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.provider, 'oidc');
    assert.equal(res.body.preset, 'generic');
    assert.equal(res.body.token_endpoint, generic.tokenEndpoint);
    assert.equal(res.body.assertion.claims.aud, generic.tokenEndpoint);
    assert.equal(res.body.assertion.header.alg, 'RS256');
    assert.equal(res.body.verdict, 'ok');
    const kc = await diag('GET', '/v1/diagnostics/credentials/ehr-keycloak');
    assert.equal(kc.body.assertion.claims.aud, keycloak.issuer, 'Keycloak preset: the realm issuer');
    assert.equal(kc.body.verdict, 'ok', JSON.stringify(kc.body.findings));
  });

  test('Auth0 preset: the default assertion lifetime (60 s) is accepted; 600 s is refused by the view', async () => {
    const short = await diag('GET', '/v1/diagnostics/credentials/m2m-auth0-default');
    assert.equal(short.body.verdict, 'ok', JSON.stringify(short.body.findings));
    assert.equal(short.body.assertion.claims.exp - short.body.assertion.claims.iat, 60);
    const res = await diag('GET', '/v1/diagnostics/credentials/m2m-auth0-long');
    assert.equal(res.body.verdict, 'will_fail');
    const f = res.body.findings.find((x: any) => x.id === 'lifetime.too_long');
    assert.equal(f.severity, 'error');
    assert.equal(f.expected, '≤ 300 s');
    assert.equal(res.body.assertion.claims.aud, auth0.issuer);
  });

  test('unknown credential: 404; a malformed id: 400', async () => {
    assert.equal((await diag('GET', '/v1/diagnostics/credentials/nope')).status, 404);
    assert.equal((await diag('GET', '/v1/diagnostics/credentials/NOT%20AN%20ID')).status, 400);
  });
});

describe('POST /v1/diagnostics/credentials/:id/probe', () => {
  test('Entra stand-in: success shows aud, roles, tid, appid, exp — never the token — and what empty roles mean for Power BI', async () => {
    const before = entra.requests.length;
    const res = await diag('POST', '/v1/diagnostics/credentials/powerbi/probe');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.outcome, 'ok');
    assert.equal(res.body.scope, POWERBI);
    assert.equal(entra.requests.length, before + 1, 'one exchange');
    const claims = res.body.token.claims;
    assert.equal(claims.aud, 'https://analysis.windows.net/powerbi/api');
    assert.deepEqual(claims.roles, []);
    assert.equal(claims.tid, TENANT);
    assert.equal(claims.appid, CLIENT);
    assert.equal(typeof claims.exp, 'number');
    assert.equal(res.body.token.format, 'jwt');
    assert.equal(res.body.token.access_token, undefined);
    assert.doesNotMatch(res.text, /eyJ[\w-]+\.eyJ[\w-]+\./, 'no compact JWS anywhere in the answer');
    const ids = res.body.findings.map((f: any) => f.id);
    assert.ok(ids.includes('powerbi.roles_empty'), ids.join(', '));
    assert.match(res.body.findings.find((f: any) => f.id === 'powerbi.roles_empty').message, /Service principals can use Fabric APIs/);
  });

  test('the probe bypasses the cache: every probe is an exchange', async () => {
    const before = entra.requests.length;
    await diag('POST', '/v1/diagnostics/credentials/powerbi-v1/probe', {});
    await diag('POST', '/v1/diagnostics/credentials/powerbi-v1/probe', {});
    assert.equal(entra.requests.length, before + 2);
  });

  test('a token for the commercial Power BI on a GCC credential: the wrong aud is explained', async () => {
    const res = await diag('POST', '/v1/diagnostics/credentials/powerbi-gcc/probe');
    assert.equal(res.body.outcome, 'ok');
    const wrong = res.body.findings.find((f: any) => f.id === 'powerbi.wrong_cloud');
    assert.ok(wrong, JSON.stringify(res.body.findings));
    assert.equal(wrong.severity, 'error');
    assert.equal(wrong.expected, 'https://analysis.usgovcloudapi.net/powerbi/api');
  });

  test('sandbox oidc-provider: success for generic, okta, keycloak and auth0 presets', async () => {
    for (const id of ['cdr', 'cdr-discovered', 'cdr-okta', 'ehr-keycloak', 'm2m-auth0']) {
      const res = await diag('POST', `/v1/diagnostics/credentials/${id}/probe`, { scope: 'api.read' });
      assert.equal(res.status, 200, `${id}: ${res.text}`);
      assert.equal(res.body.outcome, 'ok', `${id}: ${res.text}`);
      assert.equal(res.body.token.claims.aud, SANDBOX_RESOURCE);
      assert.equal(res.body.token.claims.client_id, id);
      assert.equal(res.body.token.claims.scope, 'api.read');
      assert.deepEqual(res.body.findings.filter((f: any) => f.severity === 'error'), [], id);
    }
  });

  test('a refusal is explained: AADSTS700027 for a certificate not registered on the app', async () => {
    const res = await diag('POST', '/v1/diagnostics/credentials/wrong-cert/probe');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.outcome, 'rejected');
    assert.equal(res.body.idp_error, 'AADSTS700027');
    assert.equal(res.body.idp.error, 'invalid_client');
    assert.deepEqual(res.body.idp.error_codes, [700027]);
    assert.equal(res.body.explanation.explanations[0].code, 'AADSTS700027');
    assert.match(res.body.explanation.fix, /upload the public certificate/);
    assert.equal(res.body.findings[0].id, 'probe.rejected');
    assert.equal(res.body.token, undefined);
  });

  test('only configured scopes; unknown credential 404', async () => {
    const res = await diag('POST', '/v1/diagnostics/credentials/cdr/probe', { scope: 'openid admin' });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'invalid_request');
    assert.equal((await diag('POST', '/v1/diagnostics/credentials/nope/probe')).status, 404);
  });
});

describe('POST /v1/diagnostics/explain', () => {
  const explain = async (error: string) => {
    const res = await diag('POST', '/v1/diagnostics/explain', { error });
    assert.equal(res.status, 200, res.text);
    return res.body;
  };

  test('an Entra error body: AADSTS700023 with the fix and the lint rules that lead to it', async () => {
    const body = await explain(
      JSON.stringify({
        error: 'invalid_client',
        error_description: 'AADSTS700023: Client assertion audience claim does not match Realm issuer. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .\r\nTrace ID: 0e1f\r\nCorrelation ID: 9a8b\r\nTimestamp: 2021-12-20 09:14:35Z',
        error_codes: [700023],
        trace_id: '0e1f',
        correlation_id: '9a8b',
      }),
    );
    assert.equal(body.recognized, true);
    assert.equal(body.source, 'entra');
    assert.equal(body.explanations[0].code, 'AADSTS700023');
    assert.match(body.fix, /exact token URL/);
    assert.ok(body.explanations[0].rules.includes('aud.issuer_only'));
    assert.deepEqual(body.parsed.error_codes, [700023]);
  });

  test('ADAL-era text with two codes: the inner reason first, the wrapper last', async () => {
    const body = await explain('AADSTS70002: Error validating credentials. AADSTS50012: Client assertion contains an invalid signature.');
    assert.deepEqual(body.explanations.map((e: any) => e.code), ['AADSTS50012', 'AADSTS70002']);
  });

  test('Keycloak error strings', async () => {
    const body = await explain('{"error":"invalid_client","error_description":"Token reuse detected"}');
    assert.equal(body.source, 'keycloak');
    assert.equal(body.explanations[0].code, 'Token reuse detected');
    assert.ok(body.explanations[0].rules.includes('jti.single_use'));
    const aud = await explain('WARN [org.keycloak.events] type=CLIENT_LOGIN_ERROR, clientId=cdr-broker, error=invalid_client_credentials, reason=Invalid token audience');
    assert.equal(aud.explanations[0].code, 'Invalid token audience');
    assert.equal(aud.explanations[0].claim, 'aud');
  });

  test('Okta bodies: errorCode / errorSummary, and the token endpoint\'s audience message', async () => {
    const api = await explain(JSON.stringify({ errorCode: 'E0000011', errorSummary: 'Invalid token provided', errorLink: 'E0000011', errorId: 'oaeXYZ', errorCauses: [] }));
    assert.equal(api.source, 'okta');
    assert.equal(api.explanations[0].code, 'E0000011');
    assert.equal(api.parsed.error, 'E0000011');
    assert.equal(api.parsed.error_description, 'Invalid token provided');
    const token = await explain(JSON.stringify({ error: 'invalid_client', error_description: 'The audience claim for client_assertion must be the endpoint invoked for the request.' }));
    assert.equal(token.source, 'okta');
    assert.equal(token.explanations[0].claim, 'aud');
  });

  test('Auth0 bodies: error / error_description', async () => {
    const body = await explain(JSON.stringify({ error: 'unauthorized_client', error_description: "Grant type 'client_credentials' not allowed for the client." }));
    assert.equal(body.source, 'auth0');
    assert.match(body.fix, /Client Credentials/);
    const audience = await explain('{"error":"access_denied","error_description":"Service not enabled within domain: https://api.example.com"}');
    assert.equal(audience.source, 'auth0');
    assert.match(audience.fix, /audience/);
  });

  test('Power BI refusing a valid token, a plain OAuth error, and text nobody knows', async () => {
    const pbi = await explain('{"error":{"code":"PowerBINotAuthorizedException","pbi.error":{"code":"PowerBINotAuthorizedException"}}}');
    assert.equal(pbi.source, 'powerbi');
    assert.match(pbi.fix, /workspace/);
    const oauth = await explain('{"error":"unauthorized_client"}');
    assert.equal(oauth.source, 'oauth');
    const none = await explain('the printer is on fire');
    assert.equal(none.recognized, false);
    assert.deepEqual(none.explanations, []);
  });

  test('Entra messages without their AADSTS code: the forum thread\'s text, in any case, spacing and punctuation', async () => {
    for (const text of [
      'Client assertion audience claim does not match Realm issuer',
      'invalid_client:  client assertion AUDIENCE claim does not match "Realm issuer".',
    ]) {
      const body = await explain(text);
      assert.equal(body.recognized, true, text);
      assert.equal(body.source, 'entra', text);
      assert.equal(body.explanations[0].code, 'AADSTS700023', text);
      assert.equal(body.explanations[0].matched_by, 'message');
      assert.match(body.fix, /exact token URL/);
      assert.ok(body.explanations[0].rules.includes('aud.issuer_only'));
      assert.equal(body.parsed.error_codes, undefined, 'a code found by its message was not in the text');
    }
    const iss = await explain("Client assertion application identifier doesnt match client_id parameter");
    assert.equal(iss.explanations[0].code, 'AADSTS700021');
    const okta = await explain('Invalid token provided');
    assert.deepEqual([okta.source, okta.explanations[0].code], ['okta', 'E0000011']);
    const keycloak = await explain('token   reuse detected!');
    assert.equal(keycloak.explanations[0].code, 'Token reuse detected');
    // With a code in the text the code decides: the wording of 50012 is also 700027's, which is not added.
    const coded = await explain('AADSTS50012: Client assertion contains an invalid signature.');
    assert.deepEqual(coded.explanations.map((e: any) => e.code), ['AADSTS50012']);
  });

  test('bare OAuth errors: invalid_client and friends, with a note per IdP family', async () => {
    const body = await explain('invalid_client');
    assert.equal(body.recognized, true);
    assert.equal(body.source, 'oauth');
    assert.equal(body.explanations[0].code, 'invalid_client');
    assert.equal(body.parsed.error, 'invalid_client');
    const notes = Object.fromEntries(body.explanations[0].per_idp.map((n: any) => [n.idp, n]));
    assert.deepEqual(Object.keys(notes).sort(), ['auth0', 'entra', 'keycloak', 'okta']);
    assert.match(notes.keycloak.fix, /CLIENT_LOGIN_ERROR/);
    assert.match(notes.entra.fix, /AADSTS/);
    assert.match(notes.okta.cause, /oauth2\/v1\/token/);
    assert.match(notes.auth0.cause, /trailing slash/);
    for (const code of ['invalid_grant', 'unauthorized_client', 'invalid_scope']) {
      const res = await explain(`token request failed: error=${code}`);
      assert.deepEqual([res.recognized, res.source, res.explanations[0].code], [true, 'oauth', code]);
    }
    assert.match((await explain('unauthorized_client')).explanations[0].per_idp.find((n: any) => n.idp === 'auth0').fix, /Grant Types/);
    // Keycloak's event field is not the OAuth code.
    assert.equal((await explain('error=invalid_client_credentials')).recognized, false);
  });

  test('a pasted token or assertion is not echoed back', async () => {
    const jws = forumAssertion();
    const body = await explain(JSON.stringify({ error: 'invalid_client', error_description: `AADSTS700023: bad assertion ${jws}` }));
    assert.doesNotMatch(JSON.stringify(body), new RegExp(jws.split('.')[2]!.slice(0, 30)));
    assert.match(body.parsed.error_description, /\[JWT removed\]/);
  });

  test('bad input: 400', async () => {
    assert.equal((await diag('POST', '/v1/diagnostics/explain', { error: '' })).status, 400);
    assert.equal((await diag('POST', '/v1/diagnostics/explain', { text: 'x' })).status, 400);
  });
});

describe('the hard rules', () => {
  test('a pasted assertion with a token endpoint pointing at a listening server triggers no request to it', async () => {
    let hits = 0;
    const server: Server = createServer((_req, res) => {
      hits++;
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const assertion = forumAssertion();
      for (const body of [
        { assertion, token_endpoint: `${url}/oauth2/token` },
        { assertion, token_endpoint: `${url}/realms/x/protocol/openid-connect/token`, provider: 'keycloak', client_id: 'x' },
        { assertion, token_endpoint: `${url}/token`, credential: 'cdr-discovered' },
      ]) {
        const res = await diag('POST', '/v1/diagnostics/assertion', body);
        assert.equal(res.status, 200, res.text);
      }
      await diag('POST', '/v1/diagnostics/explain', { error: `{"error":"invalid_client","error_uri":"${url}/why","error_description":"see ${url}/.well-known/openid-configuration"}` });
      await sleep(150);
      assert.equal(hits, 0, 'the broker made no request to the URL given');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('no response and no log line contains a token, an assertion (or its signature) or key material', () => {
    assert.ok(responses.length >= 30, `${responses.length} responses seen`);
    const secrets: [string, string][] = [];
    for (const [i, a] of pasted.entries()) secrets.push([`pasted assertion #${i} signature`, a.split('.')[2]!], [`pasted assertion #${i}`, a]);
    for (const [i, r] of entra.requests.entries()) {
      const a = r.form.client_assertion;
      if (a) secrets.push([`assertion #${i} sent to Entra (signature)`, a.split('.')[2]!]);
    }
    for (const idp of [generic, keycloak, auth0]) {
      for (const [i, c] of idp.captured.entries()) secrets.push([`assertion #${i} sent to ${idp.issuer} (signature)`, c.assertion.split('.')[2]!]);
    }
    for (const [name, f] of Object.entries(files)) {
      const body = f.cert.keyPem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
      for (let i = 0; i + 40 <= body.length; i += 200) secrets.push([`${name} key slice ${i}`, body.slice(i, i + 40)]);
      const d = createPrivateKey(f.cert.keyPem).export({ format: 'jwk' }).d!;
      secrets.push([`${name} key d`, d.slice(0, 40)]);
    }
    const haystacks: [string, string][] = [...responses.map((r, i) => [`response #${i}`, r] as [string, string]), ...tb.logs.lines.map((l, i) => [`log line #${i}`, l] as [string, string])];
    for (const [where, text] of haystacks) {
      assert.doesNotMatch(text, /PRIVATE KEY/, where);
      // Any compact JWS (a token or an assertion): three base64url parts starting with a JSON header.
      assert.doesNotMatch(text, /eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}/, `${where}: ${text.slice(0, 200)}`);
      for (const [label, secret] of secrets) assert.ok(!text.includes(secret), `${where} contains ${label}`);
    }
    assert.ok(tb.logs.entries().some((e) => e.msg === 'diagnostic probe'), 'probes are logged (so the search covered them)');
  });
});
