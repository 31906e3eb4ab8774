// /openapi.json describes every route; real responses from a running broker validate against it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { createFederatedIssuer } from '../fakes/federated-issuer.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';
import { ROUTES } from '../../src/http/route-table.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '3f1e2d4c-5b6a-4789-9abc-def012345678';
const KEY = 'openapi-key';
const SECRET = 'openapi-client-secret-value';
const SUB = 'system:serviceaccount:bi:token-broker';

let dir: TempDir;
let idp: SandboxIdp;
let entra: EntraStandIn;
let tb: TestBroker;
let doc: any;
let ajv: Ajv2020;

before(async () => {
  dir = tempDir();
  const good = await writeCredentialFiles(dir, 'good');
  const stranger = await writeCredentialFiles(dir, 'stranger');
  idp = await startSandboxIdp({ clients: [{ clientId: 'cdr', certificatePem: good.cert.certPem }, { clientId: 'refused', certificatePem: good.cert.certPem }] });
  const issuer = createFederatedIssuer();
  entra = await startEntraStandIn({ apps: [{ tenantId: TENANT, clientId: CLIENT, certificates: [good.cert.certPem], secrets: [SECRET], federatedCredentials: [{ issuer: issuer.issuer, subject: SUB }] }] });
  entra.registerIssuer(issuer.issuer, issuer.jwks);
  const entraWith = (id: string, auth: Record<string, unknown>) => ({ id, provider: 'entra', tenantId: TENANT, clientId: CLIENT, authorityHost: entra.url, scopes: ['https://analysis.windows.net/powerbi/api/.default'], ...auth });
  tb = await startTestBroker(
    {
      credentials: [
        { id: 'cdr', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr', certificate: { certFile: good.certFile, keyFile: good.keyFile }, scopes: ['api.read'] },
        { id: 'refused', provider: 'oidc', issuer: idp.issuer, clientId: 'refused', certificate: { certFile: stranger.certFile, keyFile: stranger.keyFile } },
        { id: 'powerbi', provider: 'entra', tenantId: TENANT, clientId: CLIENT, authorityHost: entra.url, certificate: { certFile: good.certFile, keyFile: good.keyFile }, scopes: ['https://analysis.windows.net/powerbi/api/.default'] },
        entraWith('powerbi-secret', { clientSecret: { file: dir.write('powerbi-secret', SECRET) } }),
        entraWith('powerbi-wi', { federatedToken: { file: dir.write('powerbi-wi.jwt', issuer.mint({ sub: SUB })) } }),
        entraWith('powerbi-wi-wrong', { federatedToken: { file: dir.write('powerbi-wi-wrong.jwt', issuer.mint({ sub: 'system:serviceaccount:bi:other' })) } }),
        // Delegated: the sandbox has no device flow, and nobody signs in here; the answers are what is checked.
        { id: 'cdr-user', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr-user', publicClient: true, signIn: { flow: 'authorization_code', redirectUri: 'https://broker.example/v1/sign-in/callback' }, scopes: ['api.read'] },
        { id: 'cdr-device', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr-device', publicClient: true, signIn: { flow: 'device_code' }, scopes: ['api.read'] },
      ],
      cache: { encryptionKeyFile: dir.write('keys', `${'ab'.repeat(32)}\n`), stateFile: `${dir.path}/state.enc` },
      callers: [
        { id: 'jobs', apiKeySha256: sha256Hex(KEY), identityHeaderSha256: sha256Hex('id-header'), allow: [{ credential: 'cdr' }, { credential: 'refused' }, { credential: 'powerbi' }, { credential: 'cdr-user' }], defaultCredential: 'powerbi', diagnostics: true, signIn: true },
        { id: 'plain', apiKeySha256: sha256Hex('plain-key'), allow: [{ credential: 'cdr' }] },
      ],
    },
    dir.path,
  );
  doc = await (await fetch(`${tb.url}/openapi.json`)).json();
  ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'openapi', components: doc.components });
});

after(async () => {
  await tb.close();
  await idp.close();
  await entra.close();
  dir.remove();
});

/** The response schema the document gives for this path, method and status, with refs resolved by ajv. */
function validate(path: string, method: string, status: number, body: unknown) {
  // A method a path does not have is answered 405 (its Problem405 response); any other status needs the operation.
  const operation = doc.paths[path]?.[method] ?? (status === 405 && doc.paths[path] ? { responses: { '405': { $ref: '#/components/responses/Problem405' } } } : undefined);
  assert.ok(operation, `no ${method.toUpperCase()} ${path} in the document`);
  let response = operation.responses[String(status)] ?? operation.responses.default;
  assert.ok(response, `${method.toUpperCase()} ${path} has no response ${status}`);
  if (response.$ref) response = doc.components.responses[response.$ref.split('/').pop()];
  const media = response.content['application/problem+json'] ?? response.content['application/json'];
  const schema = JSON.parse(JSON.stringify(media.schema).replaceAll('"#/components/', '"openapi#/components/'));
  const check = ajv.compile(schema);
  assert.ok(check(body), `${method.toUpperCase()} ${path} ${status}: ${ajv.errorsText(check.errors)}\n${JSON.stringify(body).slice(0, 500)}`);
}

async function call(method: string, path: string, opts: { key?: string; body?: unknown; headers?: Record<string, string>; docPath?: string } = {}) {
  const res = await fetch(`${tb.url}${path}`, {
    method: method.toUpperCase(),
    headers: { ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
    body: opts.body !== undefined ? (typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body)) : undefined,
  });
  const body = await res.json();
  validate(opts.docPath ?? path.split('?')[0]!, method, res.status, body);
  return res.status;
}

test('the document is OpenAPI 3.1 and names every route the app serves', () => {
  assert.equal(doc.openapi, '3.1.0');
  for (const path of ['/v1/token', '/v1/credentials', '/msi/token', '/metadata/identity/oauth2/token', '/v1/diagnostics/assertion', '/v1/diagnostics/explain', '/v1/diagnostics/credentials/{id}', '/v1/diagnostics/credentials/{id}/probe', '/diagnostics', '/livez', '/readyz', '/metrics', '/openapi.json']) {
    assert.ok(doc.paths[path], path);
  }
});

test("the document's paths and methods are exactly the route table's, path parameters documented", () => {
  const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, operations]) => Object.keys(operations).map((m) => `${m.toUpperCase()} ${path}`));
  const table = ROUTES.map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`);
  assert.deepEqual([...documented].sort(), [...table].sort());
  for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, { parameters?: { name: string; in: string; required: boolean }[] }>>)) {
    const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    for (const operation of Object.values(operations)) {
      const inPath = (operation.parameters ?? []).filter((p) => p.in === 'path');
      assert.deepEqual(inPath.map((p) => p.name), names, path);
      assert.ok(inPath.every((p) => p.required), `${path}: OpenAPI 3.1 requires path parameters to be required: true`);
    }
  }
});

test('real responses validate: tokens, credentials, health', async () => {
  const statuses = [
    await call('post', '/v1/token', { key: KEY, body: { credential: 'cdr' } }),
    await call('post', '/v1/token', { key: KEY, body: { credential: 'cdr' } }),
    await call('get', '/v1/credentials', { key: KEY }),
    await call('get', '/livez'),
    await call('get', '/readyz'),
  ];
  assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
});

test('real problem responses validate: 400, 401, 403, 404, 405, 413, 415, 502', async () => {
  const statuses = [
    await call('post', '/v1/token', { key: KEY, body: { credential: 7 } }),
    await call('post', '/v1/token', { key: 'wrong', body: { credential: 'cdr' } }),
    await call('post', '/v1/token', { key: 'plain-key', body: { credential: 'refused' } }),
    await call('post', '/v1/token', { key: KEY, body: { credential: 'nope' } }),
    await call('get', '/v1/token', { key: KEY }),
    await call('post', '/v1/token', { key: KEY, body: JSON.stringify({ credential: 'cdr', scope: 'x'.repeat(20_000) }) }),
    await call('post', '/v1/token', { key: KEY, body: '{}', headers: { 'content-type': 'text/plain' } }),
    await call('post', '/v1/token', { key: KEY, body: { credential: 'refused' } }),
  ];
  assert.deepEqual(statuses, [400, 401, 403, 404, 405, 413, 415, 502]);
});

test('real sign-in responses validate: start, status, end, and 409 sign_in_required', async () => {
  const doc = '/v1/credentials/{id}/sign-in';
  const statuses = [
    await call('get', '/v1/credentials/cdr-user/sign-in', { key: KEY, docPath: doc }),
    await call('post', '/v1/token', { key: KEY, body: { credential: 'cdr-user' } }),
    await call('post', '/v1/credentials/cdr-user/sign-in', { key: KEY, docPath: doc }),
    await call('get', '/v1/credentials/cdr-user/sign-in', { key: KEY, docPath: doc }),
    await call('post', '/v1/credentials/cdr-device/sign-in', { key: KEY, docPath: doc }),
    await call('post', '/v1/credentials/cdr/sign-in', { key: KEY, docPath: doc }),
    await call('post', '/v1/credentials/cdr-user/sign-in', { key: 'plain-key', docPath: doc }),
    await call('delete', '/v1/credentials/cdr-user/sign-in', { key: KEY, docPath: doc }),
  ];
  // The sandbox publishes no device_authorization_endpoint (400), cdr has no signIn (400), plain may not (403).
  assert.deepEqual(statuses, [200, 409, 200, 200, 400, 400, 403, 200]);
});

test('real managed-identity responses validate, success and error', async () => {
  const resource = encodeURIComponent('https://analysis.windows.net/powerbi/api');
  assert.equal(await call('get', `/msi/token?resource=${resource}&api-version=2019-08-01`, { headers: { 'x-identity-header': 'id-header' } }), 200);
  assert.equal(await call('get', `/msi/token?resource=${resource}&api-version=2019-08-01`, { headers: { 'x-identity-header': 'nope' } }), 401);
});

test('real diagnostics responses validate', async () => {
  const assertion = `${Buffer.from('{"alg":"RS256","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ aud: 'https://login.microsoftonline.com/x', iss: 'a', sub: 'a', exp: 1 })).toString('base64url')}.c2ln`;
  const statuses = [
    await call('post', '/v1/diagnostics/assertion', { key: KEY, body: { assertion, provider: 'entra' } }),
    await call('post', '/v1/diagnostics/explain', { key: KEY, body: { error: 'AADSTS700023: Client assertion audience claim does not match Realm issuer.' } }),
    await call('get', '/v1/diagnostics/credentials/powerbi', { key: KEY, docPath: '/v1/diagnostics/credentials/{id}' }),
    await call('post', '/v1/diagnostics/credentials/powerbi/probe', { key: KEY, docPath: '/v1/diagnostics/credentials/{id}/probe' }),
    await call('post', '/v1/diagnostics/credentials/refused/probe', { key: KEY, docPath: '/v1/diagnostics/credentials/{id}/probe' }),
    await call('post', '/v1/diagnostics/explain', { key: 'plain-key', body: { error: 'x' } }),
  ];
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 403]);
});

test('real responses validate for every kind of client authentication: credential views, probes, /readyz', async () => {
  const view = (id: string) => call('get', `/v1/diagnostics/credentials/${id}`, { key: KEY, docPath: '/v1/diagnostics/credentials/{id}' });
  const probe = (id: string) => call('post', `/v1/diagnostics/credentials/${id}/probe`, { key: KEY, docPath: '/v1/diagnostics/credentials/{id}/probe' });
  const statuses = [
    await view('powerbi-secret'),
    await view('powerbi-wi'),
    await probe('powerbi-secret'),
    await probe('powerbi-wi'),
    await probe('powerbi-wi-wrong'),
    await call('get', '/readyz'),
  ];
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
  // The schema says what is nullable: a secret has neither certificate nor assertion.
  const secret = await (await fetch(`${tb.url}/v1/diagnostics/credentials/powerbi-secret`, { headers: { authorization: `Bearer ${KEY}` } })).json();
  assert.deepEqual([secret.certificate, secret.assertion, secret.client_authentication.kind], [null, null, 'clientSecret']);
  const readiness = await (await fetch(`${tb.url}/readyz`)).json();
  assert.deepEqual(readiness.checks.client_authentication.map((c: any) => c.kind).sort(), ['certificate', 'certificate', 'certificate', 'clientSecret', 'federatedToken', 'federatedToken', 'publicClient', 'publicClient']);
});

test('the schemas reject what must never be in a credential view: a null kind, a signed assertion', () => {
  const check = ajv.compile({ $ref: 'openapi#/components/schemas/CredentialView' });
  const base = { credential: 'x', provider: 'entra', client_id: 'c', token_endpoint: null, audience: null, certificate: null, assertion: null, delegated: null, findings: [], verdict: 'ok' };
  assert.ok(check({ ...base, client_authentication: { kind: 'clientSecret' } }), ajv.errorsText(check.errors));
  assert.ok(!check({ ...base, client_authentication: { kind: 'clientSecret', secret: 'x' } }), 'a secret field');
  assert.ok(!check({ ...base, client_authentication: {} }), 'no kind');
  assert.ok(check({ ...base, client_authentication: { kind: 'publicClient' }, delegated: { state: 'signed_in', subject: 'alice' } }), ajv.errorsText(check.errors));
  assert.ok(!check({ ...base, client_authentication: { kind: 'publicClient' }, delegated: { state: 'signed_in', refresh_token: 'x' } }), 'a refresh token in the grant view');
  assert.ok(!check({ ...base, client_authentication: { kind: 'federatedToken' }, assertion: { header: {}, claims: {}, signed: true, signed_by: 'external issuer' } }), 'signed');
});
