// `token-broker inspect` as an engineer runs it: the forum-thread assertion as a table and as JSON,
// a good assertion read from stdin with its certificate, and usage errors. Exit 0 ok / 1 will fail / 2 usage.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/run-cli.ts';
import { createPrivateKey, randomUUID, sign, constants } from 'node:crypto';
import { join } from 'node:path';
import { computeThumbprints } from '../../src/client-auth/certificate/thumbprints.ts';
import { tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { createFederatedIssuer } from '../fakes/federated-issuer.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '3f1e2d4c-5b6a-4789-9abc-def012345678';
const POSTED_TO = `https://login.windows.net/${TENANT}/oauth2/token`;

let dir: TempDir;
let cert: CredentialFiles;

const run = (args: string[], stdin?: string) => runCli(['inspect', ...args], stdin);

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function signed(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  const key = createPrivateKey(cert.cert.keyPem);
  const sig = header.alg === 'PS256' ? sign('sha256', Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }) : sign('sha256', Buffer.from(input), key);
  return `${input}.${sig.toString('base64url')}`;
}

function forum(): string {
  const now = Math.floor(Date.now() / 1000);
  return signed({ typ: 'JWT', alg: 'RS256', x5t: 'SSL_FINGERPRINT', kid: 'SSL_FINGERPRINT' }, { iss: CLIENT, sub: CLIENT, aud: `https://login.microsoftonline.com/${TENANT}`, jti: 'UNIQUE TOKEN', iat: now, nbf: now + 60, exp: now + 3600 });
}

before(async () => {
  dir = tempDir();
  cert = await writeCredentialFiles(dir, 'cli');
});
after(() => dir.remove());

test('the forum-thread assertion: a table with the aud error, AADSTS700023 and the value to use; exit 1', async () => {
  const { code, stdout, stderr } = await run([forum(), '--token-endpoint', POSTED_TO]);
  assert.equal(code, 1, stderr);
  assert.match(stdout, /^token-broker inspect: checked against Entra ID v1/);
  assert.match(stdout, /^SEVERITY\s+ID\s+CLAIM\s+IDP ERROR\s+FINDING$/m);
  assert.match(stdout, /^error\s+aud\.issuer_only\s+aud\s+AADSTS700023\s+aud is the tenant authority URL/m);
  assert.ok(stdout.includes(`expected: ${POSTED_TO}`), stdout);
  assert.match(stdout, /^warning\s+nbf\.after_iat\s+nbf\s+/m);
  assert.match(stdout, /signature\s+not checked/);
  assert.match(stdout, /^verdict: will_fail \(2 errors, \d+ warnings, \d+ notes\)$/m);
  assert.ok(!stdout.includes(forum().split('.')[2]!.slice(0, 20)), 'the signature is not printed');
});

test('--json: the /v1/diagnostics/assertion response; exit 1', async () => {
  const { code, stdout } = await run([forum(), '--token-endpoint', POSTED_TO, '--json']);
  assert.equal(code, 1);
  const body = JSON.parse(stdout);
  assert.deepEqual(Object.keys(body).sort(), ['claims', 'findings', 'header', 'signature', 'verdict']);
  assert.equal(body.verdict, 'will_fail');
  const aud = body.findings.find((f: any) => f.id === 'aud.issuer_only');
  assert.equal(aud.idp_error, 'AADSTS700023');
  assert.equal(aud.expected, POSTED_TO);
});

test('a good assertion from stdin, checked against its certificate: exit 0', async () => {
  const now = Math.floor(Date.now() / 1000);
  const aud = `https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`;
  const x5tS256 = computeThumbprints(Buffer.from(cert.cert.der)).x5tS256;
  const jws = signed({ alg: 'PS256', typ: 'JWT', 'x5t#S256': x5tS256 }, { aud, iss: CLIENT, sub: CLIENT, jti: randomUUID(), iat: now, nbf: now, exp: now + 600 });
  const { code, stdout, stderr } = await run(['-', '--token-endpoint', aud, '--client-id', CLIENT, '--cert', cert.certFile], `${jws}\n`);
  assert.equal(code, 0, stdout + stderr);
  assert.match(stdout, /signature\s+valid \(certificate CN=cli/);
  assert.match(stdout, /^verdict: ok \(0 errors/m);
});

test('usage errors: exit 2 with the usage text', async () => {
  const cases = [[], ['a.b.c', '--provider', 'ping'], ['a.b.c', '--cert', join(dir.path, 'missing.pem')], ['a.b.c', '--token-endpoint', 'not a url'], ['a.b.c', '--bogus']];
  const results = await Promise.all(cases.map((args) => run(args)));
  results.forEach(({ code, stderr }, i) => {
    assert.equal(code, 2, `${cases[i]!.join(' ')}: ${stderr}`);
    assert.match(stderr, /usage: token-broker inspect/);
  });
});

describe('federated tokens', () => {
  const issuer = createFederatedIssuer({ issuer: 'https://oidc.prod-aks.example/72f988bf/cluster/' });
  const SUB = 'system:serviceaccount:bi:token-broker';

  test('a Kubernetes token is recognised by its aud and issuer and checked against Entra\'s federated-credential rules; exit 0', async () => {
    const token = issuer.mint({ sub: SUB });
    const { code, stdout, stderr } = await run([token]);
    assert.equal(code, 0, stdout + stderr);
    assert.match(stdout, /^token-broker inspect: checked as a federated token against Entra ID/);
    assert.match(stdout, /signature\s+not checked here \(signed by its issuer/);
    assert.match(stdout, /^info\s+federated\.register\s+iss\s+AADSTS70021\s+/m);
    // Details wrap under the ID column; compare them unwrapped.
    const unwrapped = stdout.replace(/\n {10,}/g, ' ');
    assert.ok(unwrapped.includes(`expected: issuer ${issuer.issuer} · subject ${SUB} · audience api://AzureADTokenExchange`), stdout);
    assert.match(stdout, /^verdict: ok \(0 errors, 0 warnings/m);
    assert.ok(!stdout.includes(token.split('.')[2]!.slice(0, 20)), 'the signature is not printed');
  });

  test('--federated: the default service-account token (aud the API server) gets AADSTS700212; exit 1', async () => {
    const { code, stdout } = await run([issuer.mint({ sub: SUB, aud: ['https://kubernetes.default.svc'] }), '--federated', '--json']);
    assert.equal(code, 1);
    const body = JSON.parse(stdout);
    const aud = body.findings.find((f: any) => f.id === 'federated.aud_not_token_exchange');
    assert.deepEqual([aud.severity, aud.idp_error, aud.expected], ['error', 'AADSTS700212', 'api://AzureADTokenExchange']);
    assert.deepEqual(body.signature, { checked: false, valid: null });
  });

  test('--cert with a federated token is a usage error: the issuer signed it', async () => {
    const results = await Promise.all([run([issuer.mint({ sub: SUB }), '--cert', cert.certFile]), run(['a.b.c', '--federated', '--cert', cert.certFile])]);
    for (const { code, stderr } of results) {
      assert.equal(code, 2, stderr);
      assert.match(stderr, /a federated token is signed by its issuer|signed by its issuer: --cert checks client assertions only/);
    }
  });
});
