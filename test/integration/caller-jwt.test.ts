// Callers proving who they are with a JWT (a Kubernetes projected service-account token, say),
// verified against a JWKS served by the test as the API server would serve it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const SUBJECT = 'system:serviceaccount:bi:gateway';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}
const rsaKey = (): SigningKey => ({ kid: randomUUID(), ...generateKeyPairSync('rsa', { modulusLength: 2048 }) });
const ecKey = (): SigningKey => ({ kid: randomUUID(), ...generateKeyPairSync('ec', { namedCurve: 'P-256' }) });

let dir: TempDir;
let idp: SandboxIdp;
let tb: TestBroker;
let jwksServer: Server;
let served: SigningKey[];
let jwksFetches = 0;

function serviceAccountToken(key: SigningKey, claims: Record<string, unknown> = {}, options: jwt.SignOptions = {}) {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign(
    { iss: ISSUER, sub: SUBJECT, aud: ['token-broker'], iat: now, nbf: now, exp: now + 600, 'kubernetes.io': { namespace: 'bi' }, ...claims },
    key.privateKey,
    { algorithm: key.privateKey.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256', keyid: key.kid, ...options },
  );
}

const post = (token: string) =>
  fetch(`${tb.url}/v1/token`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ credential: 'cdr' }) });

before(async () => {
  dir = tempDir();
  served = [rsaKey(), ecKey()];
  jwksServer = createServer((req, res) => {
    jwksFetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: served.map((k) => ({ ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, use: 'sig' })) }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const files = await writeCredentialFiles(dir, 'cdr');
  idp = await startSandboxIdp({ clients: [{ clientId: 'cdr', certificatePem: files.cert.certPem }] });
  tb = await startTestBroker(
    {
      credentials: [{ id: 'cdr', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr', certificate: { certFile: files.certFile, keyFile: files.keyFile }, scopes: ['api.read'] }],
      callers: [
        {
          id: 'gateway',
          jwt: {
            issuer: ISSUER,
            jwksUri: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/openid/v1/jwks`,
            audience: 'token-broker',
            subject: 'system:serviceaccount:bi:*',
            claims: {},
          },
          allow: [{ credential: 'cdr' }],
        },
        { id: 'jobs', apiKeySha256: sha256Hex('jobs-key'), allow: [{ credential: 'cdr' }] },
      ],
    },
    dir.path,
  );
});

after(async () => {
  await tb.close();
  await idp.close();
  jwksServer.close();
  dir.remove();
});

describe('caller JWTs', () => {
  test('a service-account token from the issuer is accepted (RS256 and ES256); API keys still work', async () => {
    for (const key of served) {
      const res = await post(serviceAccountToken(key));
      assert.equal(res.status, 200, await res.clone().text());
    }
    assert.equal((await post('jobs-key')).status, 200);
    const audit = tb.logs.entries().filter((e) => e.event === 'token_served');
    assert.equal(audit[0]!.callerId, 'gateway');
  });

  const refusals: { name: string; token: () => string }[] = [
    { name: 'expired', token: () => serviceAccountToken(served[0]!, { exp: Math.floor(Date.now() / 1000) - 120, iat: Math.floor(Date.now() / 1000) - 720, nbf: Math.floor(Date.now() / 1000) - 720 }) },
    { name: 'no exp (a permanent token)', token: () => jwt.sign({ iss: ISSUER, sub: SUBJECT, aud: 'token-broker', iat: Math.floor(Date.now() / 1000) }, served[0]!.privateKey, { algorithm: 'RS256', keyid: served[0]!.kid }) },
    { name: 'not yet valid', token: () => serviceAccountToken(served[0]!, { nbf: Math.floor(Date.now() / 1000) + 300 }) },
    { name: 'wrong audience', token: () => serviceAccountToken(served[0]!, { aud: 'https://kubernetes.default.svc' }) },
    { name: 'wrong issuer', token: () => serviceAccountToken(served[0]!, { iss: 'https://evil.example' }) },
    { name: 'subject outside the pattern', token: () => serviceAccountToken(served[0]!, { sub: 'system:serviceaccount:other:gateway' }) },
    { name: 'unknown kid (a key the issuer never published)', token: () => serviceAccountToken(rsaKey()) },
    { name: 'signed by another key under a known kid', token: () => serviceAccountToken({ ...rsaKey(), kid: served[0]!.kid }) },
    {
      name: 'alg none',
      token: () => {
        const [, payload] = serviceAccountToken(served[0]!).split('.');
        return `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT', kid: served[0]!.kid })).toString('base64url')}.${payload}.`;
      },
    },
    {
      name: 'HMAC confusion: HS256 keyed with the public key',
      token: () => {
        const pem = served[0]!.publicKey.export({ format: 'pem', type: 'spki' }) as string;
        const [, payload] = serviceAccountToken(served[0]!).split('.');
        const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: served[0]!.kid })).toString('base64url');
        const signature = createHmac('sha256', pem).update(`${header}.${payload}`).digest('base64url');
        return `${header}.${payload}.${signature}`;
      },
    },
    { name: 'RS384, not in the allow-list', token: () => serviceAccountToken(served[0]!, {}, { algorithm: 'RS384' }) },
    { name: 'tampered payload', token: () => { const [h, , s] = serviceAccountToken(served[0]!).split('.'); return `${h}.${Buffer.from(JSON.stringify({ iss: ISSUER, sub: SUBJECT, aud: 'token-broker', exp: 9999999999 })).toString('base64url')}.${s}`; } },
  ];
  for (const r of refusals) {
    test(`refused with the uniform 401: ${r.name}`, async () => {
      const res = await post(r.token());
      assert.equal(res.status, 401);
      const body = (await res.json()) as Record<string, string>;
      assert.equal(body.code, 'unauthenticated');
      assert.equal(body.detail, 'a valid caller credential is required (Authorization: Bearer <api key>)');
    });
  }

  test('made-up kids do not turn into a flood of JWKS fetches', async () => {
    const stranger = rsaKey();
    const tokens = Array.from({ length: 30 }, () => serviceAccountToken({ ...stranger, kid: randomUUID() }));
    const before = jwksFetches;
    const statuses = await Promise.all(tokens.map(async (t) => (await post(t)).status));
    assert.deepEqual([...new Set(statuses)], [401]);
    assert.ok(jwksFetches - before <= 1, `${jwksFetches - before} fetches`);
  });

  test('a key rotation at the issuer is picked up without a restart', async () => {
    const next = rsaKey();
    served = [next];
    await sleep(5200); // the JWKS is refetched at most every 5 s
    const res = await post(serviceAccountToken(next));
    assert.equal(res.status, 200, await res.clone().text());
  });
});
