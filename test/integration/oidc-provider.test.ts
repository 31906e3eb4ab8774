// The broker against a real OAuth 2.0 server (oidc-provider): it enforces aud, exp, signature,
// alg and single-use jti, so a token here means the assertion was right.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const KEY = 'integration-key';
let dir: TempDir;
const files: Record<string, CredentialFiles> = {};

function credential(id: string, cert: string, extra: Record<string, unknown>) {
  return { id, provider: 'oidc', clientId: id, certificate: { certFile: files[cert]!.certFile, keyFile: files[cert]!.keyFile }, ...extra };
}

function config(credentials: Record<string, unknown>[]) {
  return {
    credentials,
    callers: [{ id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: credentials.map((c) => ({ credential: c.id })) }],
  };
}

async function verifyWithJwks(idp: SandboxIdp, token: string) {
  const jwks = (await (await fetch(idp.jwksUri)).json()) as { keys: (JsonWebKey & { kid: string })[] };
  const kid = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid;
  const jwk = jwks.keys.find((k) => k.kid === kid);
  assert.ok(jwk, 'the token is signed by a key in the provider JWKS');
  return jwt.verify(token, createPublicKey({ key: jwk, format: 'jwk' }), { issuer: idp.issuer, algorithms: ['RS256'] }) as jwt.JwtPayload;
}

before(async () => {
  dir = tempDir();
  files.rsa = await writeCredentialFiles(dir, 'rsa');
  files.ec = await writeCredentialFiles(dir, 'ec', { keyType: 'ec' });
  files.stranger = await writeCredentialFiles(dir, 'stranger');
});
after(() => dir.remove());

describe('against oidc-provider', () => {
  let idp: SandboxIdp;
  let tb: TestBroker;

  before(async () => {
    idp = await startSandboxIdp({
      clients: [
        { clientId: 'rs256', certificatePem: files.rsa!.cert.certPem },
        { clientId: 'twice', certificatePem: files.rsa!.cert.certPem },
        { clientId: 'ps256', certificatePem: files.rsa!.cert.certPem },
        { clientId: 'es256', certificatePem: files.ec!.cert.certPem },
        { clientId: 'discovered', certificatePem: files.rsa!.cert.certPem },
        { clientId: 'refused', certificatePem: files.rsa!.cert.certPem },
      ],
    });
    tb = await startTestBroker(
      config([
        credential('rs256', 'rsa', { tokenEndpoint: idp.tokenEndpoint, assertion: { algorithm: 'RS256' }, scopes: ['api.read'] }),
        credential('twice', 'rsa', { tokenEndpoint: idp.tokenEndpoint, scopes: ['api.read', 'api.write'] }),
        credential('ps256', 'rsa', { tokenEndpoint: idp.tokenEndpoint, assertion: { algorithm: 'PS256' }, scopes: ['api.read'] }),
        credential('es256', 'ec', { tokenEndpoint: idp.tokenEndpoint, scopes: ['api.read'] }),
        credential('discovered', 'rsa', { issuer: idp.issuer, scopes: ['api.read', 'api.write'] }),
        // The IdP knows this client with another certificate: a real refusal.
        credential('refused', 'stranger', { tokenEndpoint: idp.tokenEndpoint }),
      ]),
      dir.path,
    );
  });
  after(async () => {
    await tb.close();
    await idp.close();
  });

  for (const alg of ['RS256', 'PS256', 'ES256']) {
    test(`${alg}: the credential gets a token that verifies against the provider's JWKS`, async () => {
      const id = alg.toLowerCase();
      const res = await tb.token(KEY, { credential: id });
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.credential, id);
      assert.equal(body.cache, 'miss');
      assert.equal(body.scope, 'api.read');
      const claims = await verifyWithJwks(idp, body.access_token as string);
      assert.equal(claims.client_id, id);
      assert.ok((body.expires_in as number) > 3500 && (body.expires_in as number) <= 3600);
      const seen = idp.captured.filter((c) => c.clientId === id).at(-1)!;
      assert.equal(seen.header.alg, alg);
      assert.equal(seen.status, 200);
    });
  }

  test('two exchanges back to back (two scopes of one credential) both succeed: jti is never reused', async () => {
    const before = idp.captured.filter((c) => c.clientId === 'twice').length;
    for (const scope of ['api.read', 'api.write']) {
      const res = await tb.token(KEY, { credential: 'twice', scope });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(((await res.json()) as { cache: string }).cache, 'miss');
    }
    const seen = idp.captured.filter((c) => c.clientId === 'twice').slice(before);
    assert.equal(seen.length, 2);
    assert.ok(seen.every((c) => c.status === 200));
    assert.notEqual(seen[0]!.claims.jti, seen[1]!.claims.jti);
  });

  test('discovery from the issuer runs once, then is reused', async () => {
    for (const scope of ['api.read', 'api.write', 'api.read']) {
      const res = await tb.token(KEY, { credential: 'discovered', scope, min_ttl_seconds: 86_400 });
      assert.equal(res.status, 200);
    }
    assert.equal(idp.requests.filter((r) => r === 'GET /.well-known/openid-configuration').length, 1);
  });

  test('a refusal by the IdP is 502 idp_rejected with the IdP error and a hint', async () => {
    const res = await tb.token(KEY, { credential: 'refused' });
    assert.equal(res.status, 502);
    assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    const body = (await res.json()) as Record<string, any>;
    assert.equal(body.code, 'idp_rejected');
    assert.equal(body.idp_error, 'invalid_client');
    assert.match(body.hint, /registered key/);
    assert.equal(body.idp.http_status, 401);
    assert.equal(idp.captured.at(-1)!.errorDetail, 'signature verification failed');
  });
});

describe('presets put the aud each IdP requires', () => {
  const cases = [
    { preset: 'keycloak', issuerPath: '/realms/ehr', expected: (idp: SandboxIdp) => idp.issuer },
    { preset: 'okta', issuerPath: '/oauth2/default', expected: (idp: SandboxIdp) => idp.tokenEndpoint },
    { preset: 'auth0', issuerPath: '/', expected: (idp: SandboxIdp) => `${new URL(idp.issuer).origin}/` },
    { preset: 'generic', issuerPath: '', expected: (idp: SandboxIdp) => idp.tokenEndpoint },
  ];
  for (const c of cases) {
    test(`${c.preset}: aud = ${c.preset === 'keycloak' ? 'realm issuer' : c.preset === 'auth0' ? 'tenant URL with trailing slash' : 'token endpoint URL'}, accepted by the server`, async () => {
      const idp = await startSandboxIdp({ clients: [{ clientId: `${c.preset}-client`, certificatePem: files.rsa!.cert.certPem }], issuerPath: c.issuerPath });
      const tb = await startTestBroker(config([credential(`${c.preset}-client`, 'rsa', { preset: c.preset, issuer: idp.issuer })]), dir.path);
      try {
        const res = await tb.token(KEY, { credential: `${c.preset}-client` });
        assert.equal(res.status, 200, await res.clone().text());
        const seen = idp.captured.at(-1)!;
        assert.equal(seen.claims.aud, c.expected(idp));
        assert.equal(typeof seen.claims.aud, 'string');
        assert.equal(seen.claims.iss, `${c.preset}-client`);
        assert.equal(seen.claims.sub, `${c.preset}-client`);
      } finally {
        await tb.close();
        await idp.close();
      }
    });
  }
});

describe('token endpoint edge cases', () => {
  let server: Server;
  let url: string;
  const forms: URLSearchParams[] = [];
  let mode: 'ok' | 'hang' | 'html500' | 'string-expiry' = 'ok';

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        forms.push(new URLSearchParams(body));
        if (mode === 'hang') return; // never answers
        if (mode === 'html500') {
          res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: `tok-${forms.length}`, token_type: 'Bearer', expires_in: mode === 'string-expiry' ? '1200' : 600 }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth/token`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('tokenParams reach the token endpoint (Auth0 audience) next to the broker fields', async () => {
    mode = 'ok';
    const tb = await startTestBroker(
      config([credential('a0', 'rsa', { preset: 'auth0', tokenEndpoint: url, tokenParams: { audience: 'https://cdr.example/api' } })]),
      dir.path,
    );
    try {
      assert.equal((await tb.token(KEY, { credential: 'a0' })).status, 200);
      const form = forms.at(-1)!;
      assert.equal(form.get('audience'), 'https://cdr.example/api');
      assert.equal(form.get('grant_type'), 'client_credentials');
      assert.equal(form.get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      assert.equal(form.get('client_id'), 'a0');
      assert.equal(form.get('scope'), null, 'no scope configured, none sent');
    } finally {
      await tb.close();
    }
  });

  test('expires_in as a string is understood', async () => {
    mode = 'string-expiry';
    const tb = await startTestBroker(config([credential('s', 'rsa', { tokenEndpoint: url })]), dir.path);
    try {
      const body = (await (await tb.token(KEY, { credential: 's' })).json()) as { expires_in: number };
      assert.ok(body.expires_in > 1190 && body.expires_in <= 1200);
    } finally {
      await tb.close();
    }
  });

  test('a hanging IdP times out into 503 idp_unavailable with Retry-After', async () => {
    mode = 'hang';
    const tb = await startTestBroker(config([credential('slow', 'rsa', { tokenEndpoint: url, timeoutMs: 300 })]), dir.path);
    try {
      const res = await tb.token(KEY, { credential: 'slow' });
      assert.equal(res.status, 503);
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      const body = (await res.json()) as Record<string, string>;
      assert.equal(body.code, 'idp_unavailable');
      assert.match(body.detail!, /timed out after 300 ms/);
    } finally {
      await tb.close();
    }
  });

  test('an HTML 502 from a proxy is idp_unavailable, and an unreachable IdP too', async () => {
    mode = 'html500';
    const tb = await startTestBroker(
      config([credential('proxy', 'rsa', { tokenEndpoint: url }), credential('gone', 'rsa', { tokenEndpoint: 'http://127.0.0.1:9/token', timeoutMs: 2000 })]),
      dir.path,
    );
    try {
      for (const id of ['proxy', 'gone']) {
        const res = await tb.token(KEY, { credential: id });
        assert.equal(res.status, 503, id);
        assert.equal(((await res.json()) as { code: string }).code, 'idp_unavailable');
      }
    } finally {
      await tb.close();
    }
  });
});
