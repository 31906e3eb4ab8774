// The clientSecret kind on its own: what the loader accepts and refuses (without ever quoting the
// secret), how client_secret_basic encodes, and what a rotation leaves at hand for one retry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { basicAuthorization, ClientSecretAuthentication, ClientSecretLoadError, describeClientSecretMaterial, loadClientSecret } from '../../src/client-auth/client-secret.ts';
import { loadClientAuthMaterial } from '../../src/client-auth/create-client-authentication.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { LogCapture } from '../helpers/test-broker.ts';
import { tempDir } from '../helpers/credential-files.ts';
import { manualClock } from '../helpers/manual-clock.ts';

const rules = { keyTypeProblem: () => undefined };

function problemsFor(content: string | Buffer | undefined, extra: Record<string, string> = {}) {
  const dir = tempDir();
  try {
    if (content !== undefined) dir.write('secret', content);
    return loadClientAuthMaterial({ clientSecret: { file: 'secret', ...extra } }, dir.path, new Date(), rules).problems;
  } finally {
    dir.remove();
  }
}

test('one trailing newline (\\n or \\r\\n) is not part of the secret; spaces and the rest of printable ASCII are', () => {
  const dir = tempDir();
  try {
    for (const [content, expected] of [
      ['s3cr3t\n', 's3cr3t'],
      ['s3cr3t\r\n', 's3cr3t'],
      ['s3cr3t', 's3cr3t'],
      [' a+b/c:d%e=f g ', ' a+b/c:d%e=f g '],
    ] as const) {
      dir.write('secret', content);
      assert.equal(loadClientSecret({ file: 'secret' }, dir.path).current.value, expected);
    }
  } finally {
    dir.remove();
  }
});

test('an empty file, a second line, a non-ASCII character, a BOM or a missing file are problems naming the file, never the value', () => {
  const cases: [string | Buffer | undefined, RegExp][] = [
    ['', /is empty/],
    ['\n', /is empty/],
    ['plugh-1\n\n', /more than one line/],
    ['plugh-2\nplugh-3', /more than one line/],
    ['plugh\t4', /outside printable ASCII/],
    ['plugh-caf\u00e9', /outside printable ASCII/],
    ['\uFEFFplugh-5', /byte-order mark/],
    [undefined, /file not found/],
  ];
  for (const [content, message] of cases) {
    const problems = problemsFor(content);
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]!.path, 'clientSecret.file');
    assert.match(problems[0]!.message, message);
    assert.match(problems[0]!.message, /[/\\]secret\b/, 'names the file');
    assert.doesNotMatch(problems[0]!.message, /plugh/);
  }
});

test('previousFile is read too: its problems are reported with the file ones, on clientSecret.previousFile', () => {
  const problems = problemsFor('', { previousFile: 'old-secret' });
  assert.deepEqual(
    problems.map((p) => p.path),
    ['clientSecret.file', 'clientSecret.previousFile'],
  );
  assert.match(problems[1]!.message, /file not found: .*old-secret/);
});

test('client_secret_basic form-urlencodes id and secret before base64 (RFC 6749 §2.3.1, appendix B)', () => {
  const header = basicAuthorization('my client:1', 'a+b/c:d%e=f g');
  assert.ok(header.startsWith('Basic '));
  assert.equal(Buffer.from(header.slice(6), 'base64').toString('utf8'), 'my+client%3A1:a%2Bb%2Fc%3Ad%25e%3Df+g');
});

test('config check line: file, length and time, never the value', () => {
  const dir = tempDir();
  try {
    dir.write('secret', 'the-secret-value\n');
    dir.write('old', 'older-secret\n');
    const m = loadClientSecret({ file: 'secret', previousFile: 'old', method: 'client_secret_post' }, dir.path);
    const line = describeClientSecretMaterial(m);
    assert.match(line, /^client secret \(client_secret_post\) from .*secret, 16 characters, modified .*; previous from .*old, 12 characters/);
    assert.doesNotMatch(line, /the-secret-value|older-secret/);
  } finally {
    dir.remove();
  }
});

test('a changed file: the new secret is used, the old one is at hand for one retry during the rotation window, then forgotten', async () => {
  const dir = tempDir();
  const clock = manualClock();
  const logs = new LogCapture();
  try {
    dir.write('secret', 'secret-one\n');
    const spec = { file: 'secret' };
    const auth = new ClientSecretAuthentication(spec, loadClientSecret(spec, dir.path), {
      credentialId: 'c',
      baseDir: dir.path,
      clock,
      logger: createLogger({ level: 'debug', destination: logs }),
      intervalMs: 60_000,
    });
    const target = { clientId: 'client', tokenEndpoint: 'http://idp/token', audience: 'http://idp/token' };
    const sent = async (use?: 'previous', formOnly?: boolean) => (await auth.authenticate({ ...target, formOnly }, use)).form.client_secret;
    assert.equal(auth.hasPrevious(), false);
    assert.equal((await auth.authenticate(target)).authorization, basicAuthorization('client', 'secret-one'));
    assert.equal(await sent(undefined, true), 'secret-one', 'formOnly: a form field whatever the method');

    writeFileSync(join(dir.path, 'secret'), 'secret-two\n');
    auth.check();
    assert.equal(await sent(undefined, true), 'secret-two');
    assert.equal(await sent('previous', true), 'secret-one');
    assert.equal(auth.hasPrevious(), true);
    assert.deepEqual(auth.redactions().sort(), [basicAuthorization('client', 'secret-one').slice(6), basicAuthorization('client', 'secret-two').slice(6), 'secret-one', 'secret-two'].sort());
    assert.equal(auth.identity(), 'client_secret', 'the cache identity does not depend on the secret');

    // An emptied file keeps the last good secret and says so.
    writeFileSync(join(dir.path, 'secret'), '');
    auth.check();
    assert.equal(await sent(undefined, true), 'secret-two');
    assert.match(String(auth.status(clock.now()).detail.reload_problem), /clientSecret\.file: .*secret is empty/);
    assert.equal(auth.status(clock.now()).status, 'ok');

    clock.advance(15 * 60_000 + 1);
    assert.equal(auth.hasPrevious(), false, 'the rotation window is over');
    assert.equal(await sent('previous', true), 'secret-two', 'no previous: the current secret');

    const described = JSON.stringify([auth.describe(clock.now()), auth.status(clock.now())]);
    assert.doesNotMatch(described, /secret-one|secret-two/);
    assert.doesNotMatch(logs.text, /secret-one|secret-two/);
    assert.match(logs.text, /client secret reloaded/);
  } finally {
    dir.remove();
  }
});

test('previousFile is always a previous; one equal to the current secret is not', async () => {
  const dir = tempDir();
  try {
    dir.write('secret', 'secret-new\n');
    dir.write('old', 'secret-new\n');
    const spec = { file: 'secret', previousFile: 'old', method: 'client_secret_post' as const };
    const auth = new ClientSecretAuthentication(spec, loadClientSecret(spec, dir.path), {
      credentialId: 'c',
      baseDir: dir.path,
      clock: manualClock(),
      logger: createLogger({ level: 'silent' }),
      intervalMs: 60_000,
    });
    assert.equal(auth.hasPrevious(), false);
    writeFileSync(join(dir.path, 'old'), 'secret-old\n');
    auth.check();
    assert.equal(auth.hasPrevious(), true);
    const target = { clientId: 'client', tokenEndpoint: 'http://idp/token', audience: 'http://idp/token' };
    assert.deepEqual(await auth.authenticate(target, 'previous'), { form: { client_secret: 'secret-old' } });
    assert.deepEqual(await auth.authenticate(target), { form: { client_secret: 'secret-new' } });
  } finally {
    dir.remove();
  }
});

test('ClientSecretLoadError lists every problem', () => {
  const dir = tempDir();
  try {
    assert.throws(
      () => loadClientSecret({ file: 'nope', previousFile: 'nope-either' }, dir.path),
      (err: unknown) => err instanceof ClientSecretLoadError && err.problems.length === 2,
    );
  } finally {
    dir.remove();
  }
});
