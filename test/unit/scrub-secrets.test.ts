// What scrubSecrets removes from IdP error text, and what it leaves for the engineer reading it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scrubSecrets } from '../../src/idps/scrub-secrets.ts';

const JWS = 'eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJjbGllbnQiLCJqdGkiOiIxIn0.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYW5kLW1vcmU';

test('a JWS, whole or cut short, becomes [JWT removed]', () => {
  assert.equal(scrubSecrets(`bad assertion ${JWS} for client`), 'bad assertion [JWT removed] for client');
  assert.equal(scrubSecrets(`truncated ${JWS.slice(0, 30)}`), 'truncated [JWT removed]');
});

test('secret-bearing fields lose their value, in forms and in JSON', () => {
  assert.equal(scrubSecrets('client_secret=s3cr3t~x&grant_type=client_credentials'), 'client_secret=[removed]&grant_type=client_credentials');
  assert.equal(scrubSecrets('{"client_secret":"s3cr3t","refresh_token":"abc"}'), '{"client_secret":"[removed]","refresh_token":"[removed]"}');
  assert.equal(scrubSecrets(`client_assertion=${JWS}&client_id=x`), 'client_assertion=[JWT removed]&client_id=x');
});

test('long opaque runs go; thumbprints, GUIDs, URLs and prose stay', () => {
  assert.equal(scrubSecrets(`token ${'Zq9_'.repeat(20)} end`), 'token [removed] end');
  const kept = [
    "AADSTS700027: Client assertion failed signature validation. Thumbprint of key used by client: '1A2B3C4D5E6F7A8B9C0D1A2B3C4D5E6F7A8B9C0D'.",
    `SHA-256 ${'ab'.repeat(32)}`,
    'Trace ID: 2b6f1c1e-3c1d-4a6e-9a1b-1f2e3d4c5b6a Correlation ID: 0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f',
    'see https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token for details',
    'Client assertion: the audience claim does not match',
  ];
  for (const text of kept) assert.equal(scrubSecrets(text), text);
});
