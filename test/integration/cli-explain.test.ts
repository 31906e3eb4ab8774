// `token-broker explain` as an engineer runs it: the forum thread's error without its AADSTS prefix,
// a bare invalid_client from stdin, JSON output, text nobody knows, and usage errors.
// Exit 0 explained / 1 not recognised / 2 usage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/run-cli.ts';


const run = (args: string[], stdin?: string) => runCli(['explain', ...args], stdin);

test('the forum thread\'s error without its code: AADSTS700023, the cause and the fix; exit 0', async () => {
  const { code, stdout, stderr } = await run(['Client assertion audience claim does not match Realm issuer']);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^AADSTS700023 \(Entra ID\): client assertion audience does not match the token endpoint$/m);
  assert.match(stdout, /^ {2}fix {7}set aud to the exact token URL you POST to/m);
  assert.match(stdout, /^ {2}matched {3}by its wording/m);
  assert.match(stdout, /^ {2}rules {5}.*aud\.issuer_only/m);
  // Unquoted words are one message.
  const words = await run('client assertion audience claim does not match realm issuer.'.split(' '));
  assert.equal(words.code, 0, words.stderr);
  assert.match(words.stdout, /^AADSTS700023 /m);
});

test('a bare invalid_client from stdin: the generic reading and a note per IdP family', async () => {
  const { code, stdout, stderr } = await run(['-'], 'invalid_client\n');
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^invalid_client \(OAuth 2\.0, RFC 6749 §5\.2\): client authentication failed$/m);
  for (const idp of ['Entra ID', 'Keycloak', 'Okta', 'Auth0']) assert.match(stdout, new RegExp(`^ {2}at ${idp}:$`, 'm'));
  assert.match(stdout, /CLIENT_LOGIN_ERROR/);
});

test('--json prints the /v1/diagnostics/explain result; a pasted assertion is not echoed', async () => {
  const jws = `eyJhbGciOiJSUzI1NiJ9.${Buffer.from('{"aud":"x"}').toString('base64url')}.${'s'.repeat(60)}`;
  const body = JSON.stringify({ error: 'invalid_client', error_description: `AADSTS700027: Client assertion contains an invalid signature. ${jws}`, error_codes: [700027], trace_id: 't-1' });
  const { code, stdout, stderr } = await run(['--json', '-'], body);
  assert.equal(code, 0, stderr);
  const result = JSON.parse(stdout);
  assert.equal(result.recognized, true);
  assert.equal(result.explanations[0].code, 'AADSTS700027');
  assert.deepEqual(result.parsed.error_codes, [700027]);
  assert.ok(!stdout.includes('s'.repeat(60)), 'the signature is not printed');
  const human = await run(['-'], body);
  assert.match(human.stdout, /^trace id {2}t-1$/m);
  assert.ok(!human.stdout.includes('s'.repeat(60)));
});

test('text nobody knows: one line, exit 1 (and recognized false with --json)', async () => {
  const { code, stdout } = await run(['the printer is on fire']);
  assert.equal(code, 1);
  assert.equal(stdout, 'token-broker explain: not recognised (no AADSTS code, known IdP message or OAuth error in the text)\n');
  const json = await run(['--json', 'the printer is on fire']);
  assert.equal(json.code, 1);
  assert.equal(JSON.parse(json.stdout).recognized, false);
});

test('usage errors exit 2 with the usage text; --help exits 0', async () => {
  for (const [args, stdin, message] of [
    [[], undefined, /explain takes the error text/],
    [['-'], '  \n', /the error text is empty/],
    [['--frobnicate', 'x'], undefined, /Unknown option '--frobnicate'/],
    [['-', 'invalid_client'], undefined, /not both/],
  ] as const) {
    const { code, stderr } = await run([...args], stdin);
    assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
    assert.match(stderr, message);
    assert.match(stderr, /usage: token-broker explain/);
  }
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: token-broker explain <text \| -> \[--json\]/);
});
