// Proves each validation rule of the Entra stand-in fires with the AADSTS code real Entra uses
// (docs/design.md §8.5 for the stand-in, §10 and §11 for what Entra does).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomUUID, sign as cryptoSign } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { createThrowawayCertificate, type ThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { createFederatedIssuer, type FederatedIssuer } from '../fakes/federated-issuer.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const OTHER_TENANT = '0a1b2c3d-0000-4000-8000-000000000000';
const APP = '11111111-aaaa-4bbb-8ccc-000000000001';
const EC_APP = '11111111-aaaa-4bbb-8ccc-000000000002';
const EXPIRED_APP = '11111111-aaaa-4bbb-8ccc-000000000003';
const SNI_APP = '11111111-aaaa-4bbb-8ccc-000000000004';
const POWER_BI = 'https://analysis.windows.net/powerbi/api';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const DAY = 86_400_000;

// Certificates are generated once for the whole file (RSA key generation dominates runtime).
let rsa: ThrowawayCertificate;
let unregistered: ThrowawayCertificate;
let ec: ThrowawayCertificate;
let expired: ThrowawayCertificate;
let sniCa: ThrowawayCertificate;
let sniLeaf: ThrowawayCertificate;
const certsReady = (async () => {
  [rsa, unregistered, ec, expired, sniCa] = await Promise.all([
    createThrowawayCertificate({ keyType: 'rsa', commonName: 'broker-app' }),
    createThrowawayCertificate({ keyType: 'rsa', commonName: 'not-uploaded' }),
    createThrowawayCertificate({ keyType: 'ec', commonName: 'ec-app' }),
    createThrowawayCertificate({ keyType: 'rsa', notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) }),
    createThrowawayCertificate({ keyType: 'rsa', commonName: 'sni-ca', isCa: true }),
  ]);
  sniLeaf = await createThrowawayCertificate({ keyType: 'rsa', commonName: 'sni-leaf', issuer: sniCa });
})();

// ── helpers ──────────────────────────────────────────────────────────────────────────────────

const sha1 = (der: Buffer): Buffer => createHash('sha1').update(der).digest();
const sha256 = (der: Buffer): Buffer => createHash('sha256').update(der).digest();
const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');
const nowSec = (): number => Math.floor(Date.now() / 1000);

async function standIn(): Promise<EntraStandIn> {
  await certsReady;
  return startEntraStandIn({
    apps: [
      { tenantId: TENANT, clientId: APP, certificates: [rsa.certPem] },
      { tenantId: TENANT, clientId: EC_APP, certificates: [ec.certPem] },
      { tenantId: TENANT, clientId: EXPIRED_APP, certificates: [expired.certPem] },
      { tenantId: TENANT, clientId: SNI_APP, certificates: [sniCa.certPem], sni: true },
    ],
  });
}

type Version = 'v1' | 'v2';
const tokenPath = (v: Version, tenant = TENANT): string => (v === 'v2' ? `/${tenant}/oauth2/v2.0/token` : `/${tenant}/oauth2/token`);
const audFor = (si: EntraStandIn, v: Version = 'v2', tenant = TENANT): string => `${si.url}${tokenPath(v, tenant)}`;

interface AssertionOptions {
  cert?: ThrowawayCertificate;
  alg?: jwt.Algorithm;
  thumb?: 'x5t' | 'x5t#S256';
  aud: string;
  clientId?: string;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
}

/** A client assertion shaped like MSAL's (docs/design.md §10.6), signed with jsonwebtoken. */
function assertion(o: AssertionOptions): string {
  const cert = o.cert ?? rsa;
  const alg = o.alg ?? 'PS256';
  const thumb = o.thumb ?? (alg === 'RS256' ? 'x5t' : 'x5t#S256');
  const now = nowSec();
  const payload = { aud: o.aud, iss: o.clientId ?? APP, sub: o.clientId ?? APP, jti: randomUUID(), nbf: now, exp: now + 600, ...o.claims };
  const header = { alg, typ: 'JWT', [thumb]: b64url(thumb === 'x5t' ? sha1(cert.der) : sha256(cert.der)), ...o.header };
  return jwt.sign(payload, cert.keyPem, { algorithm: alg, header: header as jwt.JwtHeader });
}

/** Hand-built compact JWS, for shapes jsonwebtoken refuses to produce (no exp, string exp, alg none). */
function rawJws(header: Record<string, unknown>, payload: Record<string, unknown>, keyPem?: string): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const sig = keyPem ? cryptoSign('sha256', Buffer.from(input), keyPem).toString('base64url') : '';
  return `${input}.${sig}`;
}

function form(si: EntraStandIn, v: Version, extra: Record<string, string | undefined> = {}, a?: string): Record<string, string | undefined> {
  return {
    grant_type: 'client_credentials',
    client_id: APP,
    client_assertion_type: JWT_BEARER,
    client_assertion: a ?? assertion({ aud: audFor(si, v) }),
    ...(v === 'v2' ? { scope: `${POWER_BI}/.default` } : { resource: POWER_BI }),
    ...extra,
  };
}

interface Answer {
  status: number;
  headers: Headers;
  json: Record<string, unknown>;
}

async function post(
  si: EntraStandIn,
  v: Version,
  fields: Record<string, string | undefined>,
  o: { tenant?: string; query?: string; contentType?: string; body?: string; authorization?: string } = {},
): Promise<Answer> {
  const clean = Object.fromEntries(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined));
  const res = await fetch(`${si.url}${tokenPath(v, o.tenant)}${o.query ?? ''}`, {
    method: 'POST',
    headers: {
      'content-type': o.contentType ?? 'application/x-www-form-urlencoded;charset=utf-8',
      ...(o.authorization !== undefined ? { authorization: o.authorization } : {}),
    },
    body: o.body ?? new URLSearchParams(clean).toString(),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

/** Checks the AADSTS body shape real Entra returns (docs/design.md §8.5, §11.1). */
function assertAadsts(a: Answer, code: number, status: number, error?: string): string {
  assert.equal(a.status, status, `status for AADSTS${code}: ${JSON.stringify(a.json)}`);
  assert.deepEqual(a.json['error_codes'], [code], JSON.stringify(a.json));
  if (error) assert.equal(a.json['error'], error);
  const d = String(a.json['error_description']);
  assert.match(d, new RegExp(`^AADSTS${code}: .+ Trace ID: [0-9a-f-]{36} Correlation ID: [0-9a-f-]{36} Timestamp: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ$`));
  assert.equal(a.json['error_uri'], `https://login.microsoftonline.com/error?code=${code}`);
  assert.match(String(a.json['trace_id']), /^[0-9a-f-]{36}$/);
  assert.match(String(a.json['correlation_id']), /^[0-9a-f-]{36}$/);
  assert.match(String(a.json['timestamp']), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  return d;
}

// ── tests ────────────────────────────────────────────────────────────────────────────────────

describe('entra stand-in: good assertions', () => {
  let si: EntraStandIn;
  before(async () => (si = await standIn()));
  after(() => si.close());

  it('v2 + PS256 + x5t#S256 gets a v2-shaped token signed by the stand-in', async () => {
    const a = await post(si, 'v2', form(si, 'v2', {}, assertion({ aud: audFor(si, 'v2'), alg: 'PS256', thumb: 'x5t#S256' })));
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.equal(a.json['token_type'], 'Bearer');
    assert.equal(a.json['expires_in'], 3599); // integers on v2 (docs/design.md §10.7)
    assert.equal(a.json['ext_expires_in'], 3599);
    assert.equal('refresh_in' in a.json, false);
    assert.equal('resource' in a.json, false);
    const claims = jwt.verify(String(a.json['access_token']), si.publicKey, { algorithms: ['RS256'] }) as jwt.JwtPayload;
    assert.equal(claims.aud, POWER_BI);
    assert.equal(claims['iss'], `https://sts.windows.net/${TENANT}/`);
    assert.equal(claims['tid'], TENANT);
    assert.equal(claims['appid'], APP);
    assert.deepEqual(claims['roles'], []);
    assert.equal(claims['ver'], '1.0'); // Power BI tokens are v1 from either endpoint (see stand-in)
    assert.equal(claims.exp! - claims.iat!, 3599);
  });

  it('v1 + RS256 + x5t gets a v1-shaped token with string numbers', async () => {
    const a = await post(si, 'v1', form(si, 'v1', {}, assertion({ aud: audFor(si, 'v1'), alg: 'RS256', thumb: 'x5t' })));
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.equal(a.json['token_type'], 'Bearer');
    assert.equal(a.json['expires_in'], '3599'); // strings on v1 (docs/design.md §10.7)
    assert.equal(a.json['ext_expires_in'], '3599');
    assert.match(String(a.json['expires_on']), /^\d+$/);
    assert.match(String(a.json['not_before']), /^\d+$/);
    assert.equal(Number(a.json['expires_on']) - Number(a.json['not_before']), 3599);
    assert.equal(a.json['resource'], POWER_BI);
    const claims = jwt.verify(String(a.json['access_token']), si.publicKey) as jwt.JwtPayload;
    assert.equal(claims.aud, POWER_BI);
    assert.equal(claims['appid'], APP);
  });

  it('ES256 with a registered EC certificate is refused like Entra does (AADSTS5002738), not issued', async () => {
    // Deliberate: Entra accepts only RSA certificate credentials (docs/design.md §10.5; see
    // ACCEPTED_ALGS in the stand-in for the sources).
    const a = await post(si, 'v2', form(si, 'v2', { client_id: EC_APP }, assertion({ cert: ec, alg: 'ES256', clientId: EC_APP, aud: audFor(si, 'v2') })));
    const d = assertAadsts(a, 5002738, 400, 'invalid_request');
    assert.match(d, /'ES256' is not a supported signature algorithm/);
  });

  it('tolerates MSAL.NET-style string exp and a string nbf (docs/design.md §10.2)', async () => {
    const now = nowSec();
    const a = rawJws(
      { alg: 'RS256', typ: 'JWT', x5t: b64url(sha1(rsa.der)) },
      { aud: audFor(si, 'v2'), iss: APP, sub: APP, jti: randomUUID(), nbf: String(now), exp: String(now + 600) },
      rsa.keyPem,
    );
    const r = await post(si, 'v2', form(si, 'v2', {}, a));
    assert.equal(r.status, 200, JSON.stringify(r.json));
  });

  it('issues tokens for the other Power BI clouds (docs/design.md §10.8) and honours setTokenLifetime/refresh_in', async () => {
    si.setTokenLifetime(4000, { refreshInSeconds: 2000 });
    try {
      const a = await post(si, 'v2', form(si, 'v2', { scope: 'https://high.analysis.usgovcloudapi.net/powerbi/api/.default' }));
      assert.equal(a.status, 200, JSON.stringify(a.json));
      assert.equal(a.json['expires_in'], 4000);
      assert.equal(a.json['refresh_in'], 2000);
      const claims = jwt.decode(String(a.json['access_token'])) as jwt.JwtPayload;
      assert.equal(claims.aud, 'https://high.analysis.usgovcloudapi.net/powerbi/api');
    } finally {
      si.setTokenLifetime(3599);
    }
  });

  it('serves v2 OpenID metadata pointing at itself, and 90002 for an unknown tenant', async () => {
    const res = await fetch(`${si.url}/${TENANT}/v2.0/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as Record<string, unknown>;
    assert.equal(doc['token_endpoint'], audFor(si, 'v2'));
    assert.equal(doc['issuer'], `${si.url}/${TENANT}/v2.0`);
    const bad = await fetch(`${si.url}/${OTHER_TENANT}/v2.0/.well-known/openid-configuration`);
    assert.equal(bad.status, 400);
    assert.deepEqual(((await bad.json()) as Record<string, unknown>)['error_codes'], [90002]);
  });

  it('records token requests with the decoded assertion', async () => {
    const before = si.requests.length;
    await post(si, 'v2', form(si, 'v2'));
    const rec = si.requests[before];
    assert.ok(rec);
    assert.equal(rec.path, tokenPath('v2'));
    assert.equal(rec.host, new URL(si.url).host);
    assert.equal(rec.form['client_id'], APP);
    assert.equal(rec.header?.['alg'], 'PS256');
    assert.equal(rec.claims?.['iss'], APP);
    assert.equal(rec.outcome, 200);
    assert.equal(rec.aadsts, undefined);
  });
});

describe('entra stand-in: request checks (steps 2-5)', () => {
  let si: EntraStandIn;
  before(async () => (si = await standIn()));
  after(() => si.close());

  it('a non-form body is read as an empty form: 400 invalid_request AADSTS900144', async () => {
    const a = await post(si, 'v2', {}, { contentType: 'application/json', body: JSON.stringify(form(si, 'v2')) });
    const d = assertAadsts(a, 900144, 400, 'invalid_request');
    assert.match(d, /'grant_type'/);
  });

  it('GET on the token endpoint is refused (AADSTS900561)', async () => {
    const res = await fetch(audFor(si, 'v2'));
    assert.equal(res.status, 400);
    assert.deepEqual(((await res.json()) as Record<string, unknown>)['error_codes'], [900561]);
  });

  it('unknown tenant: 400 invalid_request AADSTS90002', async () => {
    const a = await post(si, 'v2', form(si, 'v2', {}, assertion({ aud: audFor(si, 'v2', OTHER_TENANT) })), { tenant: OTHER_TENANT });
    const d = assertAadsts(a, 90002, 400, 'invalid_request');
    assert.match(d, new RegExp(`Tenant '${OTHER_TENANT}' not found`));
  });

  it('grant_type other than client_credentials: 400 unsupported_grant_type AADSTS70003', async () => {
    assertAadsts(await post(si, 'v2', form(si, 'v2', { grant_type: 'password' })), 70003, 400, 'unsupported_grant_type');
  });

  it('missing client_id: 400 AADSTS900144', async () => {
    const d = assertAadsts(await post(si, 'v2', form(si, 'v2', { client_id: undefined })), 900144, 400, 'invalid_request');
    assert.match(d, /'client_id'/);
  });

  it('unknown client_id in the tenant: 400 unauthorized_client AADSTS700016', async () => {
    const other = '99999999-aaaa-4bbb-8ccc-000000000009';
    const d = assertAadsts(await post(si, 'v2', form(si, 'v2', { client_id: other })), 700016, 400, 'unauthorized_client');
    assert.match(d, new RegExp(`Application with identifier '${other}' was not found in the directory '${TENANT}'`));
  });

  it('removeApp makes the client unknown (700016)', async () => {
    const id = '11111111-aaaa-4bbb-8ccc-00000000000a';
    si.addApp({ tenantId: TENANT, clientId: id, certificates: [rsa.certPem] });
    const f = form(si, 'v2', { client_id: id }, assertion({ aud: audFor(si, 'v2'), clientId: id }));
    assert.equal((await post(si, 'v2', f)).status, 200);
    si.removeApp(id);
    assertAadsts(await post(si, 'v2', f), 700016, 400);
  });

  it('client_secret present: 401 invalid_client AADSTS7000215', async () => {
    assertAadsts(await post(si, 'v2', form(si, 'v2', { client_secret: 's3cret' })), 7000215, 401, 'invalid_client');
  });

  it('no client_assertion: 401 invalid_client AADSTS7000218', async () => {
    assertAadsts(await post(si, 'v2', form(si, 'v2', { client_assertion: undefined })), 7000218, 401, 'invalid_client');
  });

  it('wrong client_assertion_type: 400 invalid_request', async () => {
    const a = await post(si, 'v2', form(si, 'v2', { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' }));
    assertAadsts(a, 90011, 400, 'invalid_request');
    const missing = await post(si, 'v2', form(si, 'v2', { client_assertion_type: undefined }));
    assertAadsts(missing, 900144, 400, 'invalid_request');
  });
});

describe('entra stand-in: assertion checks (steps 6-11)', () => {
  let si: EntraStandIn;
  before(async () => (si = await standIn()));
  after(() => si.close());

  it('not a compact JWS: 401 invalid_client AADSTS50027', async () => {
    for (const bad of ['not-a-jwt', 'a.b', `${b64url('{"alg":"RS256"')}.${b64url('{}')}.sig`, 'e30.e30.e30.e30.e30']) {
      const d = assertAadsts(await post(si, 'v2', form(si, 'v2', {}, bad)), 50027, 401, 'invalid_client');
      assert.match(d, /JWT token is invalid or malformed/);
    }
  });

  it('aud as an array: AADSTS50027 (docs/design.md §10.3)', async () => {
    const a = assertion({ aud: audFor(si, 'v2'), claims: { aud: [audFor(si, 'v2'), `${si.url}/${TENANT}/v2.0`] } });
    assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 50027, 401);
  });

  it('alg none and HS256: AADSTS50027', async () => {
    const payload = { aud: audFor(si, 'v2'), iss: APP, sub: APP, exp: nowSec() + 600 };
    const none = rawJws({ alg: 'none', x5t: b64url(sha1(rsa.der)) }, payload);
    assertAadsts(await post(si, 'v2', form(si, 'v2', {}, none)), 50027, 401);
    const hs = jwt.sign(payload, 'shared-secret-shared-secret-shared', { algorithm: 'HS256', header: { alg: 'HS256', x5t: b64url(sha1(rsa.der)) } });
    assertAadsts(await post(si, 'v2', form(si, 'v2', {}, hs)), 50027, 401);
  });

  it('no x5t / x5t#S256: AADSTS50027 "No certificate thumbprint specified in token header"', async () => {
    const a = jwt.sign({ aud: audFor(si, 'v2'), iss: APP, sub: APP, exp: nowSec() + 600 }, rsa.keyPem, { algorithm: 'RS256', keyid: 'some-kid' });
    const d = assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 50027, 401);
    assert.match(d, /No certificate thumbprint specified in token header/);
  });

  it('iss != sub: AADSTS50048', async () => {
    const a = assertion({ aud: audFor(si, 'v2'), claims: { sub: 'someone-else' } });
    assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 50048, 401, 'invalid_client');
  });

  it('iss != client_id: AADSTS700021', async () => {
    const a = assertion({ aud: audFor(si, 'v2'), clientId: EC_APP });
    const d = assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 700021, 401, 'invalid_client');
    assert.match(d, /Client assertion application identifier doesn't match 'client_id' parameter/);
  });

  it('aud must be the exact URL posted to: other host, v1 URL on v2, login host → AADSTS700023', async () => {
    const wrong = [
      `http://localhost:${si.port}${tokenPath('v2')}`, // alias host (docs/design.md §10.3)
      audFor(si, 'v1'), // v1 aud posted to v2
      `https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`,
      `${audFor(si, 'v2')}?client-request-id=x`,
      `${si.url}/${TENANT}/v2.0`, // pre-2022 documented value (docs/design.md §10.3)
    ];
    for (const aud of wrong) {
      const d = assertAadsts(await post(si, 'v2', form(si, 'v2', {}, assertion({ aud }))), 700023, 401, 'invalid_client');
      assert.match(d, /Client assertion audience claim does not match Realm issuer/);
    }
  });

  it('aud comparison ignores the query string MSAL appends to the v2 URL', async () => {
    const crid = randomUUID();
    const a = await post(si, 'v2', form(si, 'v2'), { query: `?client-request-id=${crid}` });
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.equal(a.headers.get('client-request-id'), crid);
    assert.equal(si.requests.at(-1)?.path, tokenPath('v2'));
  });

  it('/common with a certificate: AADSTS700023 (docs/design.md §10.3)', async () => {
    const a = await post(si, 'v2', form(si, 'v2', {}, assertion({ aud: audFor(si, 'v2', 'common') })), { tenant: 'common' });
    assertAadsts(a, 700023, 401);
  });

  it('thumbprint of an unregistered certificate: AADSTS700027 echoing its SHA-1', async () => {
    const a = assertion({ cert: unregistered, alg: 'RS256', aud: audFor(si, 'v2') });
    const d = assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 700027, 401, 'invalid_client');
    assert.ok(d.includes(`Thumbprint of key used by client: '${sha1(unregistered.der).toString('hex').toUpperCase()}'`), d);
    assert.match(d, /\[Reason - The key was not found\./);
    assert.ok(d.includes(`configured keys for app Id '${APP}'`));
  });

  it('x5t#S256 of an unregistered certificate: AADSTS700027 without a derivable SHA-1', async () => {
    const a = assertion({ cert: unregistered, alg: 'PS256', aud: audFor(si, 'v2') });
    const d = assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 700027, 401);
    assert.doesNotMatch(d, /Thumbprint of key used by client/);
  });

  it('x5t as base64url of the hex string instead of the digest: AADSTS700027 (docs/design.md §10.1)', async () => {
    const hexText = sha1(rsa.der).toString('hex');
    const a = assertion({ alg: 'RS256', aud: audFor(si, 'v2'), header: { x5t: b64url(hexText) } });
    const d = assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 700027, 401);
    assert.ok(d.includes(`Thumbprint of key used by client: '${Buffer.from(hexText).toString('hex').toUpperCase()}'`), d);
  });

  it('SHA-256 value in x5t: AADSTS700027 (docs/design.md §10.1, entra-docs PR #1607)', async () => {
    const a = assertion({ alg: 'RS256', aud: audFor(si, 'v2'), header: { x5t: b64url(sha256(rsa.der)) } });
    assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 700027, 401);
  });

  it('standard base64 thumbprint instead of base64url: AADSTS700027', async () => {
    const a = assertion({ alg: 'RS256', aud: audFor(si, 'v2'), header: { x5t: sha1(rsa.der).toString('base64') } });
    assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 700027, 401);
  });

  it('registered thumbprint but signed with another key: AADSTS700027 invalid signature', async () => {
    const a = assertion({ cert: unregistered, alg: 'PS256', aud: audFor(si, 'v2'), header: { 'x5t#S256': b64url(sha256(rsa.der)) } });
    const d = assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 700027, 401);
    assert.match(d, /^AADSTS700027: Client assertion contains an invalid signature\. \[Reason - The provided signature value did not match/);
    assert.ok(d.includes(`Thumbprint of key used by client: '${sha1(rsa.der).toString('hex').toUpperCase()}'`));
    assert.match(d, /Found key 'Start=\d\d\/\d\d\/\d{4} \d\d:\d\d:\d\d, End=/);
  });

  it('PS256 header over an RS256 (PKCS#1) signature: AADSTS700027', async () => {
    const rs = assertion({ alg: 'RS256', thumb: 'x5t#S256', aud: audFor(si, 'v2') });
    const [, p, s] = rs.split('.');
    const forged = `${b64url(JSON.stringify({ alg: 'PS256', typ: 'JWT', 'x5t#S256': b64url(sha256(rsa.der)) }))}.${p}.${s}`;
    assertAadsts(await post(si, 'v2', form(si, 'v2', {}, forged)), 700027, 401);
  });

  it('registered certificate expired: AADSTS700027 "The key used is expired"', async () => {
    const a = assertion({ cert: expired, alg: 'RS256', clientId: EXPIRED_APP, aud: audFor(si, 'v2') });
    const d = assertAadsts(await post(si, 'v2', form(si, 'v2', { client_id: EXPIRED_APP }, a)), 700027, 401);
    assert.match(d, /\[Reason - The key used is expired\./);
  });

  it('SNI app without x5c: AADSTS700027 with the SNI wording; with x5c of a CA-issued leaf: token', async () => {
    const base = { cert: sniLeaf, clientId: SNI_APP, aud: audFor(si, 'v2') };
    const noX5c = await post(si, 'v2', form(si, 'v2', { client_id: SNI_APP }, assertion(base)));
    const d = assertAadsts(noX5c, 700027, 401);
    assert.match(d, /SNI may be configured on the app\. Please ensure that client assertion is being sent with the x5c claim/);
    const withX5c = assertion({ ...base, header: { x5c: [sniLeaf.der.toString('base64'), sniCa.der.toString('base64')] } });
    const ok = await post(si, 'v2', form(si, 'v2', { client_id: SNI_APP }, withX5c));
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    const foreign = assertion({ cert: unregistered, clientId: SNI_APP, aud: audFor(si, 'v2'), header: { x5c: unregistered.der.toString('base64') } });
    assertAadsts(await post(si, 'v2', form(si, 'v2', { client_id: SNI_APP }, foreign)), 700027, 401);
  });

  it('exp in the past (beyond 5 min skew): AADSTS700024 with the real wording', async () => {
    const now = nowSec();
    const a = assertion({ aud: audFor(si, 'v2'), claims: { nbf: now - 1000, exp: now - 400 } });
    const d = assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 700024, 401, 'invalid_client');
    assert.match(
      d,
      /Client assertion is not within its valid time range\. Current time: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z, assertion valid from \d{4}-.+Z, expiry time of assertion \d{4}-.+Z\./,
    );
    assert.ok(d.includes(new Date((now - 400) * 1000).toISOString().slice(0, 19)));
  });

  it('exp 4 minutes ago is still inside the skew allowance', async () => {
    const now = nowSec();
    const a = assertion({ aud: audFor(si, 'v2'), claims: { nbf: now - 600, exp: now - 240 } });
    assert.equal((await post(si, 'v2', form(si, 'v2', {}, a))).status, 200);
  });

  it('nbf in the future (beyond skew): AADSTS700024', async () => {
    const now = nowSec();
    const a = assertion({ aud: audFor(si, 'v2'), claims: { nbf: now + 900, exp: now + 1500 } });
    assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 700024, 401);
  });

  it('exp missing: AADSTS50027', async () => {
    const a = rawJws({ alg: 'RS256', typ: 'JWT', x5t: b64url(sha1(rsa.der)) }, { aud: audFor(si, 'v2'), iss: APP, sub: APP, nbf: nowSec() }, rsa.keyPem);
    assertAadsts(await post(si, 'v2', form(si, 'v2', {}, a)), 50027, 401);
  });

  it('stand-in clock offset makes a fresh assertion expired: AADSTS700024', async () => {
    si.setClockOffset(3600);
    try {
      const d = assertAadsts(await post(si, 'v2', form(si, 'v2')), 700024, 401);
      assert.ok(d.includes(`Current time: ${new Date(Date.now() + 3600_000).toISOString().slice(0, 15)}`), d);
    } finally {
      si.setClockOffset(0);
    }
    assert.equal((await post(si, 'v2', form(si, 'v2'))).status, 200);
  });
});

describe('entra stand-in: target checks (step 12)', () => {
  let si: EntraStandIn;
  before(async () => (si = await standIn()));
  after(() => si.close());

  it('v2 without scope: 400 invalid_scope AADSTS70011', async () => {
    assertAadsts(await post(si, 'v2', form(si, 'v2', { scope: undefined })), 70011, 400, 'invalid_scope');
  });

  it('resource on v2: 400 invalid_request AADSTS901002', async () => {
    assertAadsts(await post(si, 'v2', form(si, 'v2', { resource: POWER_BI })), 901002, 400, 'invalid_request');
  });

  it('v2 scope without /.default: 400 invalid_scope (AADSTS1002012, what Entra sends today)', async () => {
    const d = assertAadsts(await post(si, 'v2', form(si, 'v2', { scope: POWER_BI })), 1002012, 400, 'invalid_scope');
    assert.match(d, /Client credential flows must have a scope value with \/\.default suffixed/);
  });

  it('v2 scopes for two resources: AADSTS700022', async () => {
    const scope = `${POWER_BI}/.default https://analysis.usgovcloudapi.net/powerbi/api/.default`;
    assertAadsts(await post(si, 'v2', form(si, 'v2', { scope })), 700022, 400, 'invalid_scope');
  });

  it('v1 without resource: AADSTS900144', async () => {
    const d = assertAadsts(await post(si, 'v1', form(si, 'v1', { resource: undefined })), 900144, 400);
    assert.match(d, /'resource'/);
  });

  it('resource not known: 400 invalid_resource AADSTS500011 (v1 and v2)', async () => {
    const d = assertAadsts(await post(si, 'v1', form(si, 'v1', { resource: 'https://analysis.windows.net' })), 500011, 400, 'invalid_resource');
    assert.match(d, new RegExp(`The resource principal named https://analysis.windows.net was not found in the tenant named ${TENANT}`));
    assertAadsts(await post(si, 'v2', form(si, 'v2', { scope: 'https://analysis.windows.net/.default' })), 500011, 400);
  });

  it('knownResources can be extended by a test', async () => {
    si.knownResources.add('api://custom-api');
    assert.equal((await post(si, 'v2', form(si, 'v2', { scope: 'api://custom-api/.default' }))).status, 200);
  });
});

describe('entra stand-in: faults and recording', () => {
  let si: EntraStandIn;
  before(async () => (si = await standIn()));
  after(() => si.close());

  it('503 with Retry-After, then back to normal', async () => {
    si.inject({ status: 503, retryAfterSeconds: 7 });
    const a = await post(si, 'v2', form(si, 'v2'));
    assert.equal(a.status, 503);
    assert.equal(a.headers.get('retry-after'), '7');
    assert.equal(a.json['error'], 'temporarily_unavailable');
    assert.equal(a.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal((await post(si, 'v2', form(si, 'v2'))).status, 200);
  });

  it('dropConnection makes fetch reject', async () => {
    si.inject({ dropConnection: true });
    await assert.rejects(post(si, 'v2', form(si, 'v2')));
    assert.equal(si.requests.at(-1)?.outcome, 0);
    assert.equal((await post(si, 'v2', form(si, 'v2'))).status, 200);
  });

  it('times: a fault applies to exactly that many token requests; clearFaults empties the queue', async () => {
    si.inject({ status: 500, times: 2 });
    assert.equal((await post(si, 'v2', form(si, 'v2'))).status, 500);
    assert.equal((await post(si, 'v2', form(si, 'v2'))).status, 500);
    assert.equal((await post(si, 'v2', form(si, 'v2'))).status, 200);
    si.inject({ status: 429, times: Infinity });
    assert.equal((await post(si, 'v2', form(si, 'v2'))).status, 429);
    si.clearFaults();
    assert.equal((await post(si, 'v2', form(si, 'v2'))).status, 200);
  });

  it('aadsts alone takes the status that code has in Entra; status + aadsts overrides it', async () => {
    si.inject({ aadsts: 700027 });
    assertAadsts(await post(si, 'v2', form(si, 'v2')), 700027, 401, 'invalid_client');
    si.inject({ aadsts: 7000112 });
    assertAadsts(await post(si, 'v2', form(si, 'v2')), 7000112, 400);
    si.inject({ aadsts: 50027, status: 400 });
    assertAadsts(await post(si, 'v2', form(si, 'v2')), 50027, 400);
  });

  it('latency delays the answer without changing it', async () => {
    si.inject({ latencyMs: 150 });
    const t0 = Date.now();
    const a = await post(si, 'v2', form(si, 'v2'));
    assert.equal(a.status, 200);
    assert.ok(Date.now() - t0 >= 140);
  });

  it('any other path is a 404 and is recorded (e.g. instance discovery)', async () => {
    const res = await fetch(`${si.url}/common/discovery/instance?api-version=1.1&authorization_endpoint=x`);
    assert.equal(res.status, 404);
    await res.text();
    const rec = si.requests.at(-1);
    assert.equal(rec?.path, '/common/discovery/instance');
    assert.equal(rec?.outcome, 404);
    assert.ok(si.requests.some((r) => r.path === '/common/discovery/instance'));
  });
});

// ── client secrets (docs/design.md §9.1) ─────────────────────────────────────────────────────

const SECRET_APP = '22222222-aaaa-4bbb-8ccc-000000000001';
const SECRET = 'Qx8Q~s3cret.value_0123456789abcdefABCDEF';
// Every character RFC 6749 §2.3.1 clients get wrong when they skip the form-urlencoding, and a space.
const AWKWARD_SECRET = 'a+b/c:d%e=f g~h';

/** RFC 6749 §2.3.1: form-urlencode each half, then base64. */
const basicAuth = (id: string, secret: string): string =>
  `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;
const formEncode = (s: string): string => new URLSearchParams({ s }).toString().slice(2);

function secretForm(v: Version, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    grant_type: 'client_credentials',
    client_id: SECRET_APP,
    client_secret: SECRET,
    ...(v === 'v2' ? { scope: `${POWER_BI}/.default` } : { resource: POWER_BI }),
    ...extra,
  };
}

describe('entra stand-in: client secrets', () => {
  let si: EntraStandIn;
  before(async () => {
    si = await standIn();
    si.addApp({ tenantId: TENANT, clientId: SECRET_APP, secrets: [SECRET, AWKWARD_SECRET] });
  });
  after(() => si.close());

  for (const v of ['v1', 'v2'] as const) {
    it(`${v}: client_secret in the body gets a token (appidacr 1), and the secret is not recorded`, async () => {
      const a = await post(si, v, secretForm(v));
      assert.equal(a.status, 200, JSON.stringify(a.json));
      const claims = jwt.verify(String(a.json['access_token']), si.publicKey) as jwt.JwtPayload;
      assert.equal(claims['appid'], SECRET_APP);
      assert.equal(claims['appidacr'], '1');
      const rec = si.requests.at(-1)!;
      assert.deepEqual(rec.clientAuth, ['client_secret_post']);
      assert.equal(rec.form['client_secret'], '[redacted]');
      assert.ok(!JSON.stringify(si.requests).includes(SECRET), 'secret value kept in requests');
    });

    it(`${v}: client_secret_basic with + / : % = and a space in the secret, urlencoded per RFC 6749 §2.3.1`, async () => {
      const a = await post(si, v, secretForm(v, { client_id: undefined, client_secret: undefined }), { authorization: basicAuth(SECRET_APP, AWKWARD_SECRET) });
      assert.equal(a.status, 200, JSON.stringify(a.json));
      assert.equal((jwt.decode(String(a.json['access_token'])) as jwt.JwtPayload)['appidacr'], '1');
      const rec = si.requests.at(-1)!;
      assert.deepEqual(rec.clientAuth, ['client_secret_basic']);
      assert.ok(!JSON.stringify(rec).includes(AWKWARD_SECRET));
      // The same in the body (URLSearchParams encodes it) and with a client_id in the body too.
      assert.equal((await post(si, v, secretForm(v, { client_secret: AWKWARD_SECRET }))).status, 200);
      assert.equal((await post(si, v, secretForm(v, { client_secret: undefined }), { authorization: basicAuth(SECRET_APP, AWKWARD_SECRET) })).status, 200);
    });

    it(`${v}: wrong secret (also: a trailing newline, or Basic without the urlencoding) is 401 invalid_client AADSTS7000215`, async () => {
      const d = assertAadsts(await post(si, v, secretForm(v, { client_secret: 'not-the-secret' })), 7000215, 401, 'invalid_client');
      assert.ok(d.includes(`Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${SECRET_APP}'.`), d);
      assertAadsts(await post(si, v, secretForm(v, { client_secret: `${SECRET}\n` })), 7000215, 401);
      // A client that skips the form-urlencoding: '+' decodes to a space, so the secret differs.
      si.addSecret(SECRET_APP, 'plus+sign');
      const raw = `Basic ${Buffer.from(`${SECRET_APP}:plus+sign`).toString('base64')}`;
      assertAadsts(await post(si, v, secretForm(v, { client_id: undefined, client_secret: undefined }), { authorization: raw }), 7000215, 401);
      si.removeSecret(SECRET_APP, 'plus+sign');
    });
  }

  it('expired secret (on the stand-in clock): 401 invalid_client AADSTS7000222 on v1 and v2', async () => {
    const id = '22222222-aaaa-4bbb-8ccc-000000000002';
    si.addApp({ tenantId: TENANT, clientId: id, secrets: [{ value: 'old', expiresAt: new Date(Date.now() - DAY) }, { value: 'soon', expiresAt: new Date(Date.now() + 3600_000) }] });
    for (const v of ['v1', 'v2'] as const) {
      const d = assertAadsts(await post(si, v, secretForm(v, { client_id: id, client_secret: 'old' })), 7000222, 401, 'invalid_client');
      assert.ok(d.includes(`The provided client secret keys for app '${id}' are expired.`), d);
      assert.equal((await post(si, v, secretForm(v, { client_id: id, client_secret: 'soon' }))).status, 200);
    }
    si.setClockOffset(7200);
    try {
      assertAadsts(await post(si, 'v2', secretForm('v2', { client_id: id, client_secret: 'soon' })), 7000222, 401);
    } finally {
      si.setClockOffset(0);
    }
  });

  it('rotation: setSecrets replaces the secrets mid-run; two side by side both work', async () => {
    const id = '22222222-aaaa-4bbb-8ccc-000000000003';
    si.addApp({ tenantId: TENANT, clientId: id, secrets: ['first'] });
    const withSecret = (secret: string): Record<string, string | undefined> => secretForm('v2', { client_id: id, client_secret: secret });
    assert.equal((await post(si, 'v2', withSecret('first'))).status, 200);
    si.addSecret(id, 'second');
    assert.equal((await post(si, 'v2', withSecret('first'))).status, 200);
    assert.equal((await post(si, 'v2', withSecret('second'))).status, 200);
    si.setSecrets(id, ['third']);
    assertAadsts(await post(si, 'v2', withSecret('first')), 7000215, 401);
    assertAadsts(await post(si, 'v2', withSecret('second')), 7000215, 401);
    assert.equal((await post(si, 'v2', withSecret('third'))).status, 200);
    si.removeSecret(id, 'third');
    assertAadsts(await post(si, 'v2', withSecret('third')), 7000215, 401);
    assert.throws(() => si.addSecret('99999999-aaaa-4bbb-8ccc-000000000009', 'x'), /no app/);
  });

  it('more than one authentication method is 400 invalid_request (RFC 6749 §2.3)', async () => {
    // A valid secret plus a (valid) certificate assertion, on an app that has both.
    const id = '22222222-aaaa-4bbb-8ccc-000000000004';
    si.addApp({ tenantId: TENANT, clientId: id, certificates: [rsa.certPem], secrets: [SECRET] });
    const both = { ...form(si, 'v2', { client_id: id }, assertion({ aud: audFor(si, 'v2'), clientId: id })), client_secret: SECRET };
    const d = assertAadsts(await post(si, 'v2', both), 9002313, 400, 'invalid_request');
    assert.match(d, /both a client secret and a client assertion/);
    assert.deepEqual(si.requests.at(-1)!.clientAuth, ['client_secret_post', 'certificate']);
    // The secret in the header and in the body.
    const twice = await post(si, 'v2', secretForm('v2'), { authorization: basicAuth(SECRET_APP, SECRET) });
    assert.match(assertAadsts(twice, 9002313, 400, 'invalid_request'), /both in the Authorization header and in the body/);
    // A body client_id that is not the Basic one.
    const mismatch = await post(si, 'v2', secretForm('v2', { client_id: APP, client_secret: undefined }), { authorization: basicAuth(SECRET_APP, SECRET) });
    assertAadsts(mismatch, 9002313, 400, 'invalid_request');
    // A Basic header that is not base64 of "id:secret".
    const malformed = await post(si, 'v2', secretForm('v2', { client_secret: undefined }), { authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` });
    assertAadsts(malformed, 9002313, 400, 'invalid_request');
  });

  it('a secret on /common or /organizations is refused (no tenant to authenticate in)', async () => {
    assertAadsts(await post(si, 'v2', secretForm('v2'), { tenant: 'common' }), 9001023, 400, 'invalid_request');
    assertAadsts(await post(si, 'v2', secretForm('v2'), { tenant: 'organizations' }), 9002313, 400, 'invalid_request');
  });

  it('an app with secrets still refuses a request without any credential (7000218)', async () => {
    assertAadsts(await post(si, 'v2', secretForm('v2', { client_secret: undefined })), 7000218, 401, 'invalid_client');
  });
});

// ── federated tokens (workload identity federation, docs/design.md §9.1) ─────────────────────

const FED_APP = '33333333-aaaa-4bbb-8ccc-000000000001';
const NO_FIC_APP = '33333333-aaaa-4bbb-8ccc-000000000002';
const SA = 'system:serviceaccount:reports:token-broker';

function fedForm(v: Version, token: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    grant_type: 'client_credentials',
    client_id: FED_APP,
    client_assertion_type: JWT_BEARER,
    client_assertion: token,
    ...(v === 'v2' ? { scope: `${POWER_BI}/.default` } : { resource: POWER_BI }),
    ...extra,
  };
}

describe('entra stand-in: federated tokens', () => {
  let si: EntraStandIn;
  let idp: FederatedIssuer;
  before(async () => {
    idp = createFederatedIssuer({ issuer: 'https://oidc.prod-aks.azure.test/11111111-2222-4333-8444-555555555555/' });
    si = await standIn();
    si.addApp({ tenantId: TENANT, clientId: FED_APP, federatedCredentials: [{ issuer: idp.issuer, subject: SA }] });
    si.addApp({ tenantId: TENANT, clientId: NO_FIC_APP, certificates: [rsa.certPem] });
    si.registerIssuer(idp.issuer, idp.jwks);
  });
  after(() => si.close());

  for (const v of ['v1', 'v2'] as const) {
    it(`${v}: a Kubernetes-shaped token (aud array, kid, no x5t) gets a token; the request shows it was federated`, async () => {
      const token = idp.mint({ sub: SA });
      const a = await post(si, v, fedForm(v, token));
      assert.equal(a.status, 200, JSON.stringify(a.json));
      const claims = jwt.verify(String(a.json['access_token']), si.publicKey) as jwt.JwtPayload;
      assert.equal(claims['appid'], FED_APP);
      assert.equal(claims['appidacr'], '2');
      const rec = si.requests.at(-1)!;
      assert.deepEqual(rec.clientAuth, ['federated']);
      assert.equal(rec.claims?.['iss'], idp.issuer);
      assert.equal(rec.claims?.['sub'], SA);
      assert.equal(rec.header?.['x5t'], undefined);
      // aud as a plain string works too.
      assert.equal((await post(si, v, fedForm(v, idp.mint({ sub: SA, aud: 'api://AzureADTokenExchange' })))).status, 200);
    });

    it(`${v}: an app without federated credentials answers 70021 with the presented issuer, subject and audience`, async () => {
      const d = assertAadsts(await post(si, v, fedForm(v, idp.mint({ sub: SA }), { client_id: NO_FIC_APP })), 70021, 401, 'invalid_client');
      assert.ok(d.includes(`No matching federated identity record found for presented assertion. Assertion Issuer: '${idp.issuer}'. Assertion Subject: '${SA}'. Assertion Audience: 'api://AzureADTokenExchange'.`), d);
    });

    it(`${v}: issuer matched exactly and case-sensitively (700211)`, async () => {
      for (const iss of [idp.issuer.slice(0, -1), idp.issuer.toUpperCase(), ` ${idp.issuer}`, 'https://token.actions.githubusercontent.com']) {
        const d = assertAadsts(await post(si, v, fedForm(v, idp.mint({ sub: SA, iss }))), 700211, 401, 'invalid_client');
        assert.ok(d.includes(`No matching federated identity record found for presented assertion issuer '${iss}'.`), d);
      }
    });

    it(`${v}: subject matched exactly and case-sensitively (700213)`, async () => {
      for (const sub of [SA.toUpperCase(), `${SA} `, 'system:serviceaccount:reports:other']) {
        const d = assertAadsts(await post(si, v, fedForm(v, idp.mint({ sub }))), 700213, 401, 'invalid_client');
        assert.ok(d.includes(`presented assertion subject '${sub}'`), d);
      }
    });

    it(`${v}: exactly one aud, the credential's audience (700212)`, async () => {
      for (const aud of ['api://AzureADTokenExchangeX', ['api://AzureADTokenExchange', 'https://kubernetes.default.svc'], 'API://AzureADTokenExchange', []]) {
        assertAadsts(await post(si, v, fedForm(v, idp.mint({ sub: SA, aud }))), 700212, 401, 'invalid_client');
      }
    });
  }

  it('RS256 only: PS256 is 5002738, none and HS256 are 50027', async () => {
    const d = assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, alg: 'PS256' }))), 5002738, 400, 'invalid_request');
    assert.match(d, /'PS256' is not a supported signature algorithm/);
    const [h, p] = idp.mint({ sub: SA }).split('.');
    const none = `${b64url(JSON.stringify({ ...JSON.parse(Buffer.from(h!, 'base64url').toString()), alg: 'none' }))}.${p}.`;
    assertAadsts(await post(si, 'v2', fedForm('v2', none)), 50027, 401);
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const hs = jwt.sign(claims, 'shared-secret-shared-secret-shared', { algorithm: 'HS256', keyid: idp.kid });
    assertAadsts(await post(si, 'v2', fedForm('v2', hs)), 50027, 401);
  });

  it('signature: unknown or missing kid is 7000272, another key is 50027, an unregistered issuer is 7000272', async () => {
    const d = assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, header: { kid: 'not-published' } }))), 7000272, 401, 'invalid_client');
    assert.ok(d.includes(`The certificate with identifier not-published used to sign the federated credential could not be found in the metadata of identity provider ${idp.issuer}.`), d);
    assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, header: { kid: undefined } }))), 7000272, 401);
    const forged = assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, signWith: idp.strangerKey() }))), 50027, 401, 'invalid_client');
    assert.match(forged, /External ID token from issuer failed signature verification/);
    // Payload altered after signing.
    const [h, , sig] = idp.mint({ sub: SA }).split('.');
    const altered = `${h}.${b64url(JSON.stringify({ iss: idp.issuer, sub: SA, aud: ['api://AzureADTokenExchange'], exp: nowSec() + 86_400 }))}.${sig}`;
    assertAadsts(await post(si, 'v2', fedForm('v2', altered)), 50027, 401);

    const other = createFederatedIssuer({ issuer: 'https://oidc.unregistered.test' });
    si.addFederatedCredential(FED_APP, { issuer: other.issuer, subject: SA });
    try {
      assertAadsts(await post(si, 'v2', fedForm('v2', other.mint({ sub: SA }))), 7000272, 401);
    } finally {
      si.removeFederatedCredential(FED_APP, other.issuer, SA);
    }
    assertAadsts(await post(si, 'v2', fedForm('v2', other.mint({ sub: SA }))), 700211, 401);
  });

  it('key rotation at the issuer: a new kid fails until the stand-in is given the new JWKS', async () => {
    const rotating = createFederatedIssuer({ issuer: 'https://oidc.rotating.test' });
    const id = '33333333-aaaa-4bbb-8ccc-000000000003';
    si.addApp({ tenantId: TENANT, clientId: id, federatedCredentials: [{ issuer: rotating.issuer, subject: SA }] });
    si.registerIssuer(rotating.issuer, rotating.jwks);
    const old = rotating.mint({ sub: SA });
    rotating.rotateKey();
    const fresh = rotating.mint({ sub: SA });
    assertAadsts(await post(si, 'v2', fedForm('v2', fresh, { client_id: id })), 7000272, 401);
    si.registerIssuer(rotating.issuer, rotating.jwks);
    assert.equal((await post(si, 'v2', fedForm('v2', fresh, { client_id: id }))).status, 200);
    assert.equal((await post(si, 'v2', fedForm('v2', old, { client_id: id }))).status, 200);
    rotating.rotateKey({ dropOld: true });
    si.registerIssuer(rotating.issuer, rotating.jwks);
    assertAadsts(await post(si, 'v2', fedForm('v2', old, { client_id: id })), 7000272, 401);
  });

  it('time window: expired or not yet valid beyond 300 s skew is 700024; inside the skew is accepted', async () => {
    const now = nowSec();
    const d = assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, iat: now - 7200, nbf: now - 7200, exp: now - 400 }))), 700024, 401, 'invalid_client');
    assert.match(d, /Client assertion is not within its valid time range\. Current time: /);
    assert.equal((await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, iat: now - 3600, nbf: now - 3600, exp: now - 240 })))).status, 200);
    assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, nbf: now + 900 }))), 700024, 401);
    assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, iat: now + 900, nbf: null }))), 700024, 401);
    // A long-lived token is accepted: Entra documents no maximum lifetime.
    assert.equal((await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, lifetimeSeconds: 48 * 3600 })))).status, 200);
    // On the stand-in clock.
    si.setClockOffset(2 * 3600);
    try {
      assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA }))), 700024, 401);
    } finally {
      si.setClockOffset(0);
    }
  });

  it('exp missing or not a number: 50027', async () => {
    assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, exp: null }))), 50027, 401);
    assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, exp: null, claims: { exp: String(nowSec() + 600) } }))), 50027, 401);
  });

  it('a custom audience on the credential is what the token must carry', async () => {
    const id = '33333333-aaaa-4bbb-8ccc-000000000004';
    si.addApp({ tenantId: TENANT, clientId: id, federatedCredentials: [{ issuer: idp.issuer, subject: SA, audiences: ['api://AzureADTokenExchangeUSGov'] }] });
    assert.equal((await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA, aud: ['api://AzureADTokenExchangeUSGov'] }), { client_id: id }))).status, 200);
    assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA }), { client_id: id })), 700212, 401);
  });

  it('federated credentials can be set at runtime; 70021 while there are none', async () => {
    const id = '33333333-aaaa-4bbb-8ccc-000000000005';
    si.addApp({ tenantId: TENANT, clientId: id, federatedCredentials: [] });
    const f = fedForm('v2', idp.mint({ sub: SA }), { client_id: id });
    assertAadsts(await post(si, 'v2', f), 70021, 401);
    si.setFederatedCredentials(id, [{ issuer: idp.issuer, subject: SA }]);
    assert.equal((await post(si, 'v2', f)).status, 200);
    si.removeFederatedCredential(id, idp.issuer, SA);
    assertAadsts(await post(si, 'v2', f), 70021, 401);
  });

  it('refuses registrations Graph refuses: two audiences, a duplicate issuer+subject, more than 20', () => {
    const id = '33333333-aaaa-4bbb-8ccc-000000000006';
    assert.throws(() => si.addApp({ tenantId: TENANT, clientId: id, federatedCredentials: [{ issuer: idp.issuer, subject: SA, audiences: ['a', 'b'] }] }), /exactly one audience/);
    assert.throws(
      () => si.addApp({ tenantId: TENANT, clientId: id, federatedCredentials: [{ issuer: idp.issuer, subject: SA }, { issuer: idp.issuer, subject: SA }] }),
      /already exists/,
    );
    const many = Array.from({ length: 21 }, (_, i) => ({ issuer: idp.issuer, subject: `sub-${i}` }));
    assert.throws(() => si.addApp({ tenantId: TENANT, clientId: id, federatedCredentials: many }), /at most 20/);
  });

  it('issuer keys may be given at start-up, as PEM by kid', async () => {
    const pemIssuer = createFederatedIssuer({ issuer: 'https://oidc.pem.test' });
    const jwk = pemIssuer.jwks.keys[0]!;
    const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
    const other = await startEntraStandIn({
      apps: [{ tenantId: TENANT, clientId: FED_APP, federatedCredentials: [{ issuer: pemIssuer.issuer, subject: SA }] }],
      issuers: [{ issuer: pemIssuer.issuer, keys: { [pemIssuer.kid]: pem } }],
    });
    try {
      assert.equal((await post(other, 'v2', fedForm('v2', pemIssuer.mint({ sub: SA })))).status, 200);
    } finally {
      await other.close();
    }
  });

  it('a federated token on /common is refused; a federated token with a secret is refused', async () => {
    assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA })), { tenant: 'common' }), 9001023, 400, 'invalid_request');
    si.addSecret(FED_APP, SECRET);
    try {
      const d = assertAadsts(await post(si, 'v2', fedForm('v2', idp.mint({ sub: SA }), { client_secret: SECRET })), 9002313, 400, 'invalid_request');
      assert.match(d, /both a client secret and a client assertion/);
      assert.deepEqual(si.requests.at(-1)!.clientAuth, ['client_secret_post', 'federated']);
    } finally {
      si.removeSecret(FED_APP, SECRET);
    }
  });

  it('a certificate assertion whose iss is an object id (neither sub nor client_id) is taken as federated: 70021', async () => {
    // The reading of public 70021 reports in docs/design.md §11.1; iss = sub ≠ client_id keeps 700021.
    const a = assertion({ aud: audFor(si, 'v2'), clientId: NO_FIC_APP, claims: { iss: '44444444-aaaa-4bbb-8ccc-000000000001' } });
    assertAadsts(await post(si, 'v2', form(si, 'v2', { client_id: NO_FIC_APP }, a)), 70021, 401);
  });
});
