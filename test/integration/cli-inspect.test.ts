// `token-broker inspect` as an engineer runs it: the forum-thread assertion as a table and as JSON,
// a good assertion read from stdin with its certificate, and usage errors. Exit 0 ok / 1 will fail / 2 usage.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/run-cli.ts';
import { createPrivateKey, randomUUID, sign, constants } from 'node:crypto';
import { join } from 'node:path';
import { computeThumbprints } from '../../src/credentials/thumbprints.ts';
import { tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';

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
