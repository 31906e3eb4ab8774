// The federated token kind on its own: what the loader accepts and how it reports a bad file, that
// every exchange reads the file afresh, that an expired token is never handed out, and what
// /readyz and diagnostics see. The token itself appears in no message and no log line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { chmodSync, rmSync } from 'node:fs';
import jwt from 'jsonwebtoken';
import { validateConfig } from '../../src/config/load.ts';
import { ConfigError, CredentialUnavailable } from '../../src/kernel/errors.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { FederatedTokenAuthentication, MIN_REMAINING_MS, loadFederatedTokenMaterial, type FederatedTokenMaterial } from '../../src/client-auth/federated-token.ts';
import { sha256Hex, tempDir, type TempDir } from '../helpers/credential-files.ts';
import { manualClock, type ManualClock } from '../helpers/manual-clock.ts';
import { LogCapture } from '../helpers/test-broker.ts';

const ISS = 'https://oidc.prod-aks.azure.com/2b5f6a4e-0000-4000-8000-000000000001/';
const SUB = 'system:serviceaccount:bi:token-broker';
const AUD = 'api://AzureADTokenExchange';

let dir: TempDir;
let key: KeyObject;

function mint(claims: Record<string, unknown>, nowMs = Date.now(), lifetimeSeconds = 3600, header: Record<string, unknown> = { kid: 'k1' }): string {
  const iat = Math.floor(nowMs / 1000);
  return jwt.sign({ iss: ISS, sub: SUB, aud: AUD, iat, nbf: iat, exp: iat + lifetimeSeconds, jti: randomUUID(), ...claims }, key, { algorithm: 'RS256', header: { alg: 'RS256', ...header } });
}

function material(file: string, now = new Date()): FederatedTokenMaterial {
  const { material, problems } = loadFederatedTokenMaterial({ file }, dir.path, now);
  assert.deepEqual(problems, []);
  return material!;
}

function fixture(name: string, token: string, clock: ManualClock = manualClock()) {
  const file = dir.write(name, `${token}\n`);
  const logs = new LogCapture();
  const auth = new FederatedTokenAuthentication(material(file, new Date(clock.now())), { credentialId: name, clock, logger: createLogger({ level: 'debug', destination: logs }) });
  return { file, auth, logs, clock };
}

before(() => {
  dir = tempDir();
  key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
});
after(() => dir.remove());

describe('loading the token file (startup, config check)', () => {
  test('a JWT with one trailing newline loads, with its public claims and header', () => {
    const now = Date.now();
    const file = dir.write('ok.jwt', `${mint({}, now)}\n`);
    const m = material(file);
    assert.equal(m.file, file);
    assert.equal(m.expired, false);
    assert.equal(m.token.iss, ISS);
    assert.equal(m.token.sub, SUB);
    assert.equal(m.token.aud, AUD);
    assert.equal(m.token.exp, Math.floor(now / 1000) + 3600);
    assert.deepEqual(m.token.header, { alg: 'RS256', typ: 'JWT', kid: 'k1' });
  });

  test('a relative path resolves against the config folder', () => {
    dir.write('relative.jwt', mint({}));
    assert.equal(material('relative.jwt').file, `${dir.path}/relative.jwt`);
  });

  const SECRET_LOOKING = 'c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw';
  const bad: [string, string, RegExp][] = [
    ['missing', '', /does not exist/],
    ['empty', '\n', /is empty/],
    ['not a JWT', `${SECRET_LOOKING}\n`, /does not hold a JWT: .*1 part/],
    ['a JWE', `${SECRET_LOOKING}.a.b.c.d`, /five parts: an encrypted JWE/],
    ['header not JSON', `${SECRET_LOOKING}.${Buffer.from('{}').toString('base64url')}.sig`, /its header is not base64url-encoded JSON/],
    ['unsigned', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: ISS, sub: SUB, aud: AUD, exp: 9e9 })).toString('base64url')}.${SECRET_LOOKING}`, /not signed \(alg 'none'\)/],
  ];
  for (const [name, content, message] of bad) {
    test(`${name}: a problem on federatedToken.file naming the file, never its content`, () => {
      const file = name === 'missing' ? `${dir.path}/nowhere.jwt` : dir.write(`${name}.jwt`, content);
      const { material: m, problems } = loadFederatedTokenMaterial({ file }, dir.path, new Date());
      assert.equal(m, undefined);
      assert.equal(problems.length, 1);
      assert.equal(problems[0]!.path, 'federatedToken.file');
      assert.match(problems[0]!.message, message);
      assert.ok(problems[0]!.message.includes(file), problems[0]!.message);
      assert.ok(!problems[0]!.message.includes(SECRET_LOOKING));
    });
  }

  test('a JWT without the claims RFC 7523 requires is refused, naming them', () => {
    const token = jwt.sign({ iss: ISS, aud: [] }, key, { algorithm: 'RS256', noTimestamp: true });
    const file = dir.write('claimless.jwt', token);
    const { problems } = loadFederatedTokenMaterial({ file }, dir.path, new Date());
    assert.match(problems[0]!.message, /has no usable sub, aud, exp \(RFC 7523 §3/);
    assert.ok(!problems[0]!.message.includes(token.split('.')[2]!));
  });

  test('an expired token is reported, not refused: the writer may rewrite it any second', () => {
    const file = dir.write('old.jwt', mint({}, Date.now() - 7200_000));
    const m = material(file);
    assert.equal(m.expired, true);
  });

  test('in a config: the problem carries the credential path; a good file becomes the material', () => {
    const good = dir.write('cfg-good.jwt', mint({}));
    const config = (file: string) => ({
      credentials: [{ id: 'wi', provider: 'entra', tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47', clientId: '3f1e2d4c-5b6a-4789-9abc-def012345678', federatedToken: { file }, scopes: ['https://x.example/.default'] }],
      callers: [{ id: 'c', apiKeySha256: sha256Hex('k'), allow: [{ credential: 'wi' }] }],
    });
    const loaded = validateConfig(config(good), dir.path);
    assert.equal(loaded.materials.get('wi')?.kind, 'federatedToken');
    assert.throws(
      () => validateConfig(config('gone.jwt'), dir.path),
      (err: ConfigError) => err.problems.some((p) => p.path === 'credentials[0].federatedToken.file' && p.message.includes(`${dir.path}/gone.jwt`)),
    );
  });
});

describe('FederatedTokenAuthentication', () => {
  test('every exchange reads the file: a rewritten token is sent by the next one', async () => {
    const first = mint({});
    const { file, auth } = fixture('rewrite.jwt', first);
    const parts = await auth.authenticate();
    assert.deepEqual(parts, { form: { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: first } });
    const second = mint({});
    dir.write('rewrite.jwt', second);
    assert.equal((await auth.authenticate()).form.client_assertion, second);
    assert.equal(file, auth.file);
    // An IdP that echoes either token back has it scrubbed.
    assert.deepEqual(auth.redactions().sort(), [first, second].sort());
  });

  test('an expired token is never handed out: CredentialUnavailable naming the file and the exp', async () => {
    const clock = manualClock();
    const token = mint({}, clock.now(), 600);
    const { file, auth } = fixture('expiring.jwt', token, clock);
    const exp = new Date((Math.floor(clock.now() / 1000) + 600) * 1000).toISOString();
    await auth.authenticate();
    // Within the margin: it would expire on the way, so it is not sent either.
    clock.advance(600_000 - MIN_REMAINING_MS + 1000);
    await assert.rejects(auth.authenticate(), (err: CredentialUnavailable) => {
      assert.ok(err instanceof CredentialUnavailable);
      assert.equal(err.status, 503);
      assert.equal(err.code, 'idp_unavailable');
      assert.ok(err.message.includes(file) && err.message.includes(`expires at ${exp}`), err.message);
      assert.ok(!err.message.includes(token));
      return true;
    });
    clock.advance(3600_000);
    await assert.rejects(auth.authenticate(), (err: Error) => err instanceof CredentialUnavailable && err.message.includes(`expired at ${exp}`) && err.message.includes(file));
    assert.equal(auth.status(clock.now()).status, 'expired');
    assert.equal(auth.status(clock.now()).detail.expires_at, exp);
  });

  test('a file that becomes unreadable or garbage: CredentialUnavailable, status unavailable, identity kept', async () => {
    const { file, auth } = fixture('breaks.jwt', mint({}));
    const identity = auth.identity();
    assert.equal(identity, `federated:${ISS}|${SUB}`);
    dir.write('breaks.jwt', 'not-a-token');
    await assert.rejects(auth.authenticate(), (err: Error) => err instanceof CredentialUnavailable && /does not hold a JWT/.test(err.message) && err.message.includes(file));
    assert.equal(auth.status(Date.now()).status, 'unavailable');
    assert.equal(auth.identity(), identity);
    if (process.getuid?.() !== 0) {
      dir.write('breaks.jwt', mint({}));
      chmodSync(file, 0o000);
      await assert.rejects(auth.authenticate(), (err: Error) => err instanceof CredentialUnavailable && err.message.includes('EACCES'));
      chmodSync(file, 0o600);
    }
    rmSync(file);
    await assert.rejects(auth.authenticate(), (err: Error) => err instanceof CredentialUnavailable && err.message.includes(`${file} does not exist`));
  });

  test('status: ok, expiring_soon once the 80 % rewrite is overdue, expired; detail never holds the token', () => {
    const clock = manualClock();
    const token = mint({}, clock.now(), 3600);
    const { auth, file } = fixture('status.jwt', token, clock);
    const at = (elapsedMs: number) => {
      clock.advance(elapsedMs);
      return auth.status(clock.now());
    };
    const ok = at(0);
    assert.equal(ok.status, 'ok');
    assert.deepEqual(Object.keys(ok.detail).sort(), ['expires_at', 'file', 'iss', 'seconds_left', 'sub']);
    assert.equal(ok.detail.file, file);
    assert.equal(at(0.85 * 3600_000).status, 'ok'); // the kubelet may still be on its way
    assert.equal(at(0.06 * 3600_000).status, 'expiring_soon'); // 91 %: overdue
    assert.equal(at(0.09 * 3600_000).status, 'expired');
    assert.ok(!JSON.stringify(auth.describe(clock.now())).includes(token.split('.')[2]!));
  });

  test('identity: the same workload across rewrites, another one when iss or sub change', async () => {
    const { auth } = fixture('identity.jwt', mint({}));
    const before = auth.identity();
    dir.write('identity.jwt', mint({}));
    await auth.authenticate();
    assert.equal(auth.identity(), before);
    dir.write('identity.jwt', mint({ sub: 'system:serviceaccount:bi:other' }));
    await auth.authenticate();
    assert.equal(auth.identity(), `federated:${ISS}|system:serviceaccount:bi:other`);
  });

  test('diagnostics: the decoded header and claims, signed by the external issuer; the alg is the token\'s', () => {
    const token = mint({}, Date.now(), 3600, { kid: 'issuer-key' });
    const { auth } = fixture('preview.jwt', token);
    const preview = auth.previewAssertion();
    assert.equal(preview.signedBy, 'external issuer');
    assert.equal(preview.header.kid, 'issuer-key');
    assert.equal(preview.claims?.sub, SUB);
    assert.equal(auth.assertionAlgorithm(), 'RS256');
    const described = auth.describe(Date.now());
    assert.equal(described.kind, 'federatedToken');
    assert.deepEqual(Object.keys(described.claims as object).sort(), ['aud', 'exp', 'iat', 'iss', 'nbf', 'sub']);
  });

  test('logs: one line per new token, a warning when it expires or the file breaks, never the token', async () => {
    const clock = manualClock();
    const first = mint({}, clock.now(), 600);
    const { auth, logs } = fixture('logs.jwt', first, clock);
    auth.start();
    await auth.authenticate();
    await auth.authenticate();
    const second = mint({}, clock.now() + 1000, 600);
    dir.write('logs.jwt', second);
    await auth.authenticate();
    clock.advance(700_000);
    await assert.rejects(auth.authenticate());
    dir.write('logs.jwt', 'garbage');
    await assert.rejects(auth.authenticate());
    const messages = logs.entries().map((e) => `${e.level} ${e.msg}`);
    assert.deepEqual(messages, [
      'info federated token read from the file',
      'info federated token read from the file',
      'warn the federated token in the file has expired: it is not sent until the file holds a newer one',
      'warn federated token file unusable: nothing is sent to the identity provider until it is fixed',
    ]);
    for (const token of [first, second]) assert.ok(!logs.text.includes(token.split('.')[2]!));
  });
});
