// Unmodified Azure SDK clients (@azure/identity) against the broker's managed-identity endpoint,
// each in its own process with a clean environment; plus the endpoint's error shapes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import jwt from 'jsonwebtoken';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { POWERBI_SCOPE as POWERBI, TEST_CLIENT as POWERBI_APP, TEST_TENANT as TENANT } from '../helpers/entra-fixture.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const run = promisify(execFile);
const OTHER_APP = '9a8b7c6d-5e4f-4321-8765-0fedcba98765';
const IDENTITY_HEADER = 'identity-header-secret';

let dir: TempDir;
let entra: EntraStandIn;
let tb: TestBroker;

/** Runs the SDK in a child process whose environment holds nothing but what the scenario sets. */
async function sdk(kind: 'mi' | 'dac', scope: string, env: Record<string, string>, clientId?: string) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(AZURE_|IDENTITY_|MSI_|IMDS_|IDENTITY_SERVER)/.test(k)),
  ) as Record<string, string>;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'test/helpers/azure-identity-client.ts', kind, scope, ...(clientId ? [clientId] : [])], {
    env: { ...clean, ...env },
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { token?: string; expiresOnTimestamp?: number; error?: string; message?: string };
}

before(async () => {
  dir = tempDir();
  const a = await writeCredentialFiles(dir, 'powerbi');
  const b = await writeCredentialFiles(dir, 'other');
  entra = await startEntraStandIn({
    apps: [
      { tenantId: TENANT, clientId: POWERBI_APP, certificates: [a.cert.certPem] },
      { tenantId: TENANT, clientId: OTHER_APP, certificates: [b.cert.certPem] },
    ],
  });
  const entraCredential = (id: string, clientId: string, files: typeof a) => ({
    id,
    provider: 'entra',
    tenantId: TENANT,
    clientId,
    authorityHost: entra.url,
    certificate: { certFile: files.certFile, keyFile: files.keyFile },
    scopes: [POWERBI],
  });
  tb = await startTestBroker(
    {
      server: { host: '127.0.0.1', imdsSidecar: { enabled: true, caller: 'sidecar-app' } },
      credentials: [entraCredential('powerbi', POWERBI_APP, a), entraCredential('other', OTHER_APP, b)],
      callers: [
        { id: 'azure-sdk-jobs', identityHeaderSha256: sha256Hex(IDENTITY_HEADER), allow: [{ credential: 'powerbi' }, { credential: 'other' }], defaultCredential: 'powerbi' },
        { id: 'single', identityHeaderSha256: sha256Hex('single-secret'), allow: [{ credential: 'other' }] },
        { id: 'sidecar-app', apiKeySha256: sha256Hex('unused-key'), allow: [{ credential: 'powerbi' }] },
      ],
    },
    dir.path,
  );
});

after(async () => {
  await tb.close();
  await entra.close();
  dir.remove();
});

const appService = () => ({ IDENTITY_ENDPOINT: `${tb.url}/msi/token`, IDENTITY_HEADER });

describe('@azure/identity against /msi/token', () => {
  test('ManagedIdentityCredential gets a Power BI token', async () => {
    const result = await sdk('mi', POWERBI, appService());
    assert.ok(result.token, JSON.stringify(result));
    const claims = jwt.decode(result.token) as jwt.JwtPayload;
    assert.equal(claims.aud, 'https://analysis.windows.net/powerbi/api');
    assert.equal(claims.appid, POWERBI_APP);
    assert.ok(result.expiresOnTimestamp! > Date.now() + 3000_000, 'expires_on understood (not "now")');
  });

  test('DefaultAzureCredential finds the endpoint and gets the token', async () => {
    const result = await sdk('dac', POWERBI, appService());
    assert.ok(result.token, JSON.stringify(result));
    assert.equal((jwt.decode(result.token) as jwt.JwtPayload).appid, POWERBI_APP);
  });

  test('client_id selects between two credentials', async () => {
    const other = await sdk('mi', POWERBI, appService(), OTHER_APP);
    assert.equal((jwt.decode(other.token!) as jwt.JwtPayload).appid, OTHER_APP, JSON.stringify(other));
    const viaDac = await sdk('dac', POWERBI, appService(), OTHER_APP);
    assert.equal((jwt.decode(viaDac.token!) as jwt.JwtPayload).appid, OTHER_APP, JSON.stringify(viaDac));
  });

  test('a wrong IDENTITY_HEADER surfaces as the SDK authentication error', async () => {
    const result = await sdk('mi', POWERBI, { ...appService(), IDENTITY_HEADER: 'wrong' });
    assert.equal(result.token, undefined);
    assert.match(result.error!, /CredentialUnavailableError|AuthenticationError/);
    assert.match(result.message!, /401|X-IDENTITY-HEADER|unauthorized/i);
  });
});

describe('/msi/token protocol details', () => {
  const get = (query: string, headers: Record<string, string>) => fetch(`${tb.url}/msi/token?${query}`, { headers });
  const resource = encodeURIComponent('https://analysis.windows.net/powerbi/api');

  test('the response has every field as a string, as App Service answers', async () => {
    const res = await get(`resource=${resource}&api-version=2019-08-01`, { 'x-identity-header': IDENTITY_HEADER });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as Record<string, unknown>;
    for (const field of ['access_token', 'expires_on', 'expires_in', 'not_before', 'resource', 'token_type', 'client_id']) {
      assert.equal(typeof body[field], 'string', field);
    }
    assert.equal(body.resource, 'https://analysis.windows.net/powerbi/api');
    assert.equal(body.client_id, POWERBI_APP);
    assert.match(body.expires_on as string, /^\d{10}$/);
  });

  test('the 2017-09-01 variant with a secret header and clientid', async () => {
    const res = await get(`resource=${resource}&api-version=2017-09-01&clientid=${OTHER_APP}`, { secret: IDENTITY_HEADER });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { client_id: string }).client_id, OTHER_APP);
  });

  const errors: { name: string; query: string; headers: Record<string, string>; status: number; error: string }[] = [
    { name: 'no header', query: `resource=${resource}&api-version=2019-08-01`, headers: {}, status: 401, error: 'unauthorized_client' },
    { name: 'wrong header', query: `resource=${resource}&api-version=2019-08-01`, headers: { 'x-identity-header': 'nope' }, status: 401, error: 'unauthorized_client' },
    { name: 'missing resource', query: 'api-version=2019-08-01', headers: { 'x-identity-header': IDENTITY_HEADER }, status: 400, error: 'invalid_request' },
    { name: 'unknown api-version', query: `resource=${resource}&api-version=2030-01-01`, headers: { 'x-identity-header': IDENTITY_HEADER }, status: 400, error: 'invalid_request' },
    { name: 'client_id of no allowed credential', query: `resource=${resource}&api-version=2019-08-01&client_id=00000000-0000-0000-0000-000000000000`, headers: { 'x-identity-header': IDENTITY_HEADER }, status: 400, error: 'invalid_request' },
    { name: 'mi_res_id is not supported', query: `resource=${resource}&api-version=2019-08-01&mi_res_id=%2Fsubscriptions%2Fx`, headers: { 'x-identity-header': IDENTITY_HEADER }, status: 400, error: 'invalid_request' },
    { name: 'resource not configured', query: `resource=${encodeURIComponent('https://graph.microsoft.com')}&api-version=2019-08-01`, headers: { 'x-identity-header': IDENTITY_HEADER }, status: 403, error: 'access_denied' },
    { name: 'a repeated parameter', query: `resource=${resource}&resource=${resource}&api-version=2019-08-01`, headers: { 'x-identity-header': IDENTITY_HEADER }, status: 400, error: 'invalid_request' },
  ];
  for (const e of errors) {
    test(`error: ${e.name} → ${e.status} ${e.error}`, async () => {
      const res = await get(e.query, e.headers);
      assert.equal(res.status, e.status);
      const body = (await res.json()) as Record<string, string>;
      assert.equal(body.error, e.error);
      assert.equal(typeof body.error_description, 'string');
    });
  }

  test('a caller with one credential needs no client_id', async () => {
    const res = await get(`resource=${resource}&api-version=2019-08-01`, { 'x-identity-header': 'single-secret' });
    assert.equal(((await res.json()) as { client_id: string }).client_id, OTHER_APP);
  });
});

describe('IMDS sidecar mode', () => {
  test('Metadata: true is required; the bound caller gets its token', async () => {
    const url = `${tb.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent('https://analysis.windows.net/powerbi/api')}`;
    const refused = await fetch(url);
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as { error_description: string }).error_description, /metadata header/i);
    const res = await fetch(url, { headers: { metadata: 'true' } });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { client_id: string }).client_id, POWERBI_APP);
  });

  test('the config refuses the sidecar mode on a non-loopback listener', async () => {
    const { validateConfig } = await import('../../src/config/load.ts');
    const { ConfigError } = await import('../../src/kernel/errors.ts');
    const files = await writeCredentialFiles(dir, 'imds');
    assert.throws(
      () =>
        validateConfig(
          {
            server: { host: '0.0.0.0', imdsSidecar: { enabled: true, caller: 'x' } },
            credentials: [{ id: 'c', provider: 'oidc', tokenEndpoint: 'https://idp/token', clientId: 'c', certificate: { certFile: files.certFile, keyFile: files.keyFile } }],
            callers: [{ id: 'x', apiKeySha256: sha256Hex('k'), allow: [{ credential: 'c' }] }],
          },
          dir.path,
        ),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.path === 'server.imdsSidecar.enabled' && /loopback/.test(p.message)),
    );
  });
});
