// The assertion lint (docs/design.md §5.4, issue 5): a table of faulty assertions, each built
// and signed here with throw-away keys and mapped to the finding ids it must produce; good
// assertions for every IdP that must produce no error; and the forum-thread case.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, constants, createHash, createHmac, createPrivateKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import { lintAssertion, type LintResult } from '../../src/diagnostics/assertion-linter.ts';
import { ASSERTION_RULES, ruleById, ruleCounts } from '../../src/diagnostics/assertion-rules.ts';
import type { CheckedCertificate, IdpProfileName } from '../../src/diagnostics/assertion-rule.ts';
import type { TargetInput } from '../../src/diagnostics/assertion-target.ts';
import { computeThumbprints } from '../../src/client-auth/certificate/thumbprints.ts';
import { createThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';

const T = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const C = '3f1e2d4c-5b6a-4789-9abc-def012345678';
const ENTRA_V2 = `https://login.microsoftonline.com/${T}/oauth2/v2.0/token`;
const ENTRA_V1 = `https://login.microsoftonline.com/${T}/oauth2/token`;
const KC_ISSUER = 'https://kc.example.org/realms/ehr';
const KC_TOKEN = `${KC_ISSUER}/protocol/openid-connect/token`;
const OKTA_TOKEN = 'https://acme.okta.com/oauth2/v1/token';
const AUTH0_TOKEN = 'https://acme.eu.auth0.com/oauth/token';
const AUTH0_AUD = 'https://acme.eu.auth0.com/';
const GENERIC_TOKEN = 'https://idp.example.net/oauth2/token';
const NOW_MS = Date.UTC(2026, 2, 1, 12, 0, 0);
const NOW = NOW_MS / 1000;

interface Key {
  key: KeyObject;
  cert: CheckedCertificate;
}
let rsa: Key;
let other: Key;
let ec: Key;

async function makeKey(keyType: 'rsa' | 'ec' = 'rsa'): Promise<Key> {
  const t = await createThrowawayCertificate({ keyType, notBefore: new Date(NOW_MS - 86_400_000), notAfter: new Date(NOW_MS + 90 * 86_400_000) });
  const leaf = new X509Certificate(t.certPem);
  return { key: createPrivateKey(t.keyPem), cert: { leaf, thumbprints: computeThumbprints(leaf.raw), keyBits: 0 } };
}

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function signature(alg: string, input: Buffer, key: KeyObject): Buffer {
  if (alg === 'none') return Buffer.alloc(0);
  const hash = `sha${alg.slice(2)}`;
  if (alg.startsWith('HS')) return createHmac(hash, 'a shared secret').update(input).digest();
  if (alg.startsWith('RS')) return sign(hash, input, { key, padding: constants.RSA_PKCS1_PADDING });
  if (alg.startsWith('PS')) return sign(hash, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  return sign(hash, input, { key, dsaEncoding: 'ieee-p1363' });
}

/** A compact JWS signed with `key` (default: the RSA test key) whatever the header says. */
function jws(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject = rsa.key): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${signature(String(header.alg), Buffer.from(input), key).toString('base64url')}`;
}

// ── good shapes per IdP ──────────────────────────────────────────────────────────────────────

const entraHeader = () => ({ alg: 'PS256', typ: 'JWT', 'x5t#S256': rsa.cert.thumbprints.x5tS256 });
const claimsFor = (aud: unknown, clientId = C) => ({ aud, iss: clientId, sub: clientId, jti: randomUUID(), iat: NOW, nbf: NOW, exp: NOW + 600 });
const entraClaims = (extra: Record<string, unknown> = {}) => ({ ...claimsFor(ENTRA_V2), ...extra });

function lint(assertion: string, target: TargetInput, certificate?: CheckedCertificate): LintResult {
  return lintAssertion({ assertion, target, certificate, nowMs: NOW_MS });
}

function ids(result: LintResult, severity?: string): string[] {
  return result.findings.filter((f) => !severity || f.severity === severity).map((f) => f.id);
}

before(async () => {
  [rsa, other, ec] = await Promise.all([makeKey(), makeKey(), makeKey('ec')]);
});

describe('good assertions: no error finding', () => {
  const cases: { name: string; build: () => { assertion: string; target: TargetInput; cert?: CheckedCertificate } }[] = [
    { name: 'Entra v2, PS256 + x5t#S256 (what MSAL sends since 2024)', build: () => ({ assertion: jws(entraHeader(), entraClaims()), target: { tokenEndpoint: ENTRA_V2, clientId: C }, cert: rsa.cert }) },
    {
      name: 'Entra v1, RS256 + x5t',
      build: () => ({ assertion: jws({ alg: 'RS256', typ: 'JWT', x5t: rsa.cert.thumbprints.x5t }, claimsFor(ENTRA_V1)), target: { tokenEndpoint: ENTRA_V1, clientId: C }, cert: rsa.cert }),
    },
    {
      name: 'Entra China cloud, v2',
      build: () => {
        const url = `https://login.partner.microsoftonline.cn/${T}/oauth2/v2.0/token`;
        return { assertion: jws(entraHeader(), claimsFor(url)), target: { tokenEndpoint: url, clientId: C } };
      },
    },
    {
      name: 'Entra US Gov High, v2, with x5c',
      build: () => {
        const url = `https://login.microsoftonline.us/${T}/oauth2/v2.0/token`;
        return { assertion: jws({ ...entraHeader(), x5c: [rsa.cert.leaf.raw.toString('base64')] }, claimsFor(url)), target: { tokenEndpoint: url, clientId: C }, cert: rsa.cert };
      },
    },
    { name: 'Keycloak, aud = realm issuer', build: () => ({ assertion: jws({ alg: 'RS256', typ: 'JWT', kid: 'k1' }, claimsFor(KC_ISSUER, 'cdr-broker')), target: { tokenEndpoint: KC_TOKEN, clientId: 'cdr-broker' }, cert: rsa.cert }) },
    { name: 'Keycloak, aud = token endpoint', build: () => ({ assertion: jws({ alg: 'RS256', typ: 'JWT' }, claimsFor(KC_TOKEN, 'cdr-broker')), target: { tokenEndpoint: KC_TOKEN } }) },
    { name: 'Okta, aud = token endpoint, 5 min', build: () => ({ assertion: jws({ alg: 'RS256', typ: 'JWT', kid: 'k1' }, { ...claimsFor(OKTA_TOKEN, '0oar95zt9zIpYuz6A0h7'), exp: NOW + 300 }), target: { tokenEndpoint: OKTA_TOKEN, clientId: '0oar95zt9zIpYuz6A0h7' } }) },
    { name: 'Auth0, aud = tenant URL with slash, 1 min', build: () => ({ assertion: jws({ alg: 'PS256', typ: 'JWT' }, { ...claimsFor(AUTH0_AUD, 'm2m-app'), exp: NOW + 60 }), target: { tokenEndpoint: AUTH0_TOKEN, clientId: 'm2m-app' }, cert: rsa.cert }) },
    { name: 'generic OIDC, ES256', build: () => ({ assertion: jws({ alg: 'ES256', typ: 'JWT' }, claimsFor(GENERIC_TOKEN, 'svc'), ec.key), target: { tokenEndpoint: GENERIC_TOKEN, clientId: 'svc' }, cert: ec.cert }) },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { assertion, target, cert } = c.build();
      const result = lint(assertion, target, cert);
      assert.deepEqual(ids(result, 'error'), [], JSON.stringify(result.findings, null, 1));
      assert.equal(result.verdict, 'ok');
      if (cert) assert.deepEqual({ checked: result.signature.checked, valid: result.signature.valid }, { checked: true, valid: true });
      assert.ok(ids(result).includes('target.assumed'));
    });
  }
});

// ── the faulty table ─────────────────────────────────────────────────────────────────────────

interface Row {
  name: string;
  target: TargetInput;
  build: () => string;
  expect: string[];
  /** Default will_fail; ok where every expected finding is a warning or note. */
  verdict?: 'ok' | 'will_fail';
  cert?: () => CheckedCertificate;
  /** The IdP error the first expected finding must name. */
  idpError?: string;
}

const entra = { tokenEndpoint: ENTRA_V2, clientId: C };
const rows: Row[] = [
  // aud
  { name: 'aud as an array (openid-client 4.5.2)', target: entra, build: () => jws(entraHeader(), entraClaims({ aud: [`https://login.microsoftonline.com/${T}/v2.0`, ENTRA_V2] })), expect: ['aud.array'], idpError: 'AADSTS50027' },
  { name: 'aud /common token URL', target: entra, build: () => jws(entraHeader(), entraClaims({ aud: 'https://login.microsoftonline.com/common/oauth2/v2.0/token' })), expect: ['aud.common_tenant'], idpError: 'AADSTS700023' },
  { name: 'aud on an alias host', target: entra, build: () => jws(entraHeader(), entraClaims({ aud: `https://login.windows.net/${T}/oauth2/v2.0/token` })), expect: ['aud.host_alias'], idpError: 'AADSTS700023' },
  { name: 'aud sts.windows.net issuer (MSAL.NET #3352)', target: entra, build: () => jws(entraHeader(), entraClaims({ aud: `https://sts.windows.net/${T}/` })), expect: ['aud.issuer_only'], idpError: 'AADSTS700023' },
  { name: 'aud of another tenant', target: entra, build: () => jws(entraHeader(), entraClaims({ aud: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token' })), expect: ['aud.wrong_tenant'] },
  { name: 'aud v1 URL posted to v2', target: entra, build: () => jws(entraHeader(), entraClaims({ aud: ENTRA_V1 })), expect: ['aud.version_mismatch'] },
  { name: 'aud …/{tenant}/v2.0 (old documentation)', target: entra, build: () => jws(entraHeader(), entraClaims({ aud: `https://login.microsoftonline.com/${T}/v2.0` })), expect: ['aud.issuer_only'] },
  { name: 'aud on the China cloud host, posted to public', target: entra, build: () => jws(entraHeader(), entraClaims({ aud: `https://login.partner.microsoftonline.cn/${T}/oauth2/v2.0/token` })), expect: ['aud.wrong_cloud'] },
  { name: 'aud with a trailing slash', target: entra, build: () => jws(entraHeader(), entraClaims({ aud: `${ENTRA_V2}/` })), expect: ['aud.trailing_slash'] },
  { name: 'aud missing', target: entra, build: () => jws(entraHeader(), entraClaims({ aud: undefined })), expect: ['aud.missing'] },
  { name: 'posted to /common', target: { tokenEndpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/token', clientId: C }, build: () => jws(entraHeader(), entraClaims({ aud: 'https://login.microsoftonline.com/common/oauth2/v2.0/token' })), expect: ['endpoint.common_tenant'], idpError: 'AADSTS700023' },
  { name: 'no token endpoint: aud is the tenant authority', target: {}, build: () => jws(entraHeader(), entraClaims({ aud: `https://login.microsoftonline.com/${T}` })), expect: ['aud.issuer_only'] },
  // iss / sub / client_id / jti
  { name: 'sub differs from iss', target: entra, build: () => jws(entraHeader(), entraClaims({ sub: '00000000-0000-0000-0000-000000000001' })), expect: ['iss.sub_mismatch'], idpError: 'AADSTS50048' },
  { name: 'iss = sub = another app id than client_id', target: entra, build: () => jws(entraHeader(), entraClaims({ iss: '00000000-0000-0000-0000-000000000001', sub: '00000000-0000-0000-0000-000000000001' })), expect: ['iss.not_client_id'], idpError: 'AADSTS700021' },
  { name: 'iss is a URL (read as a federated credential)', target: { tokenEndpoint: ENTRA_V2 }, build: () => jws(entraHeader(), entraClaims({ iss: 'https://token.actions.githubusercontent.com', sub: 'https://token.actions.githubusercontent.com' })), expect: ['iss.not_guid'], idpError: 'AADSTS70021' },
  { name: 'iss and sub missing', target: entra, build: () => jws(entraHeader(), entraClaims({ iss: undefined, sub: undefined })), expect: ['iss.missing', 'sub.missing'] },
  { name: 'Entra: jti missing (documented, not enforced)', target: entra, build: () => jws(entraHeader(), entraClaims({ jti: undefined })), expect: ['jti.missing'], verdict: 'ok' },
  { name: 'Keycloak: jti missing', target: { tokenEndpoint: KC_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, { ...claimsFor(KC_ISSUER, 'cdr'), jti: undefined }), expect: ['jti.missing'], idpError: 'Token jti claim is required' },
  { name: 'Keycloak: constant jti', target: { tokenEndpoint: KC_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, { ...claimsFor(KC_ISSUER, 'cdr'), jti: '1' }), expect: ['jti.weak', 'jti.single_use'], verdict: 'ok' },
  // time
  { name: 'expired 10 minutes ago', target: entra, build: () => jws(entraHeader(), entraClaims({ iat: NOW - 1200, nbf: NOW - 1200, exp: NOW - 600 })), expect: ['exp.expired'], idpError: 'AADSTS700024' },
  { name: 'nbf 20 minutes ahead', target: entra, build: () => jws(entraHeader(), entraClaims({ nbf: NOW + 1200, exp: NOW + 1800 })), expect: ['nbf.in_future', 'nbf.after_iat'] },
  { name: 'local time UTC+2 used as UTC', target: entra, build: () => jws(entraHeader(), entraClaims({ iat: NOW + 7200, nbf: NOW + 7200, exp: NOW + 7800 })), expect: ['time.local_clock', 'nbf.in_future'] },
  { name: 'local time UTC−5 used as UTC', target: entra, build: () => jws(entraHeader(), entraClaims({ iat: NOW - 18000 + 30, nbf: NOW - 18000 + 30, exp: NOW - 18000 + 630 })), expect: ['time.local_clock', 'exp.expired'] },
  { name: 'times as JSON strings (MSAL.NET style) at oidc-provider', target: { tokenEndpoint: GENERIC_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, { ...claimsFor(GENERIC_TOKEN, 'svc'), nbf: String(NOW), exp: String(NOW + 600) }), expect: ['time.not_numeric'] },
  { name: 'times with microseconds (lcobucci/jwt)', target: entra, build: () => jws(entraHeader(), entraClaims({ iat: NOW + 0.002124, nbf: NOW + 0.002124, exp: NOW + 600.002124 })), expect: ['time.fractional'], verdict: 'ok' },
  { name: 'times in milliseconds', target: entra, build: () => jws(entraHeader(), entraClaims({ iat: NOW_MS, nbf: NOW_MS, exp: NOW_MS + 600_000 })), expect: ['time.milliseconds'] },
  { name: 'exp missing', target: entra, build: () => jws(entraHeader(), entraClaims({ exp: undefined })), expect: ['exp.missing'] },
  { name: 'exp before nbf', target: entra, build: () => jws(entraHeader(), entraClaims({ iat: NOW - 10, nbf: NOW - 10, exp: NOW - 20 })), expect: ['exp.before_start', 'exp.expired'] },
  { name: 'Entra: one-hour lifetime (over the recommended 10 min)', target: entra, build: () => jws(entraHeader(), entraClaims({ exp: NOW + 3600 })), expect: ['lifetime.too_long'], verdict: 'ok' },
  { name: 'Okta: exp two hours ahead', target: { tokenEndpoint: OKTA_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, { ...claimsFor(OKTA_TOKEN, 'okta-app'), exp: NOW + 7200 }), expect: ['lifetime.too_long'], idpError: 'invalid_client' },
  { name: 'Auth0: ten-minute lifetime (max 5)', target: { tokenEndpoint: AUTH0_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, claimsFor(AUTH0_AUD, 'm2m')), expect: ['lifetime.too_long'] },
  { name: 'Keycloak: iat 60 s in the future', target: { tokenEndpoint: KC_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, { ...claimsFor(KC_ISSUER, 'cdr'), iat: NOW + 60, nbf: NOW }), expect: ['iat.in_future'], idpError: 'Token was issued in the future' },
  { name: 'Keycloak: nbf 20 s ahead (skew 15 s)', target: { tokenEndpoint: KC_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, { ...claimsFor(KC_ISSUER, 'cdr'), nbf: NOW + 20 }), expect: ['nbf.in_future'], idpError: 'Token is not active' },
  { name: 'Keycloak: no iat, exp 10 min ahead', target: { tokenEndpoint: KC_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, { ...claimsFor(KC_ISSUER, 'cdr'), iat: undefined }), expect: ['iat.missing'], idpError: 'Token expiration is too far in the future and iat claim not present in token' },
  // header
  { name: 'alg none, unsigned', target: entra, build: () => jws({ alg: 'none', typ: 'JWT', 'x5t#S256': rsa.cert.thumbprints.x5tS256 }, entraClaims()), expect: ['alg.none'], idpError: 'AADSTS50027' },
  { name: 'HS256 (client_secret_jwt) to Keycloak', target: { tokenEndpoint: KC_TOKEN }, build: () => jws({ alg: 'HS256', typ: 'JWT' }, claimsFor(KC_ISSUER, 'cdr')), expect: ['alg.hmac'], idpError: 'Invalid signature algorithm' },
  { name: 'ES256 to Entra', target: entra, build: () => jws({ alg: 'ES256', typ: 'JWT', 'x5t#S256': ec.cert.thumbprints.x5tS256 }, entraClaims(), ec.key), expect: ['alg.not_accepted'], idpError: 'AADSTS5002738' },
  { name: 'PS256 to Okta', target: { tokenEndpoint: OKTA_TOKEN }, build: () => jws({ alg: 'PS256', typ: 'JWT' }, claimsFor(OKTA_TOKEN, 'okta-app')), expect: ['alg.not_accepted'] },
  { name: 'ES256 to Auth0', target: { tokenEndpoint: AUTH0_TOKEN }, build: () => jws({ alg: 'ES256', typ: 'JWT' }, { ...claimsFor(AUTH0_AUD, 'm2m'), exp: NOW + 60 }, ec.key), expect: ['alg.not_accepted'] },
  { name: 'no thumbprint header (MSAL.NET #124)', target: entra, build: () => jws({ alg: 'PS256', typ: 'JWT', kid: 'whatever' }, entraClaims()), expect: ['thumbprint.missing', 'kid.ignored'], idpError: 'AADSTS50027' },
  {
    name: 'x5t = base64 of the hex thumbprint text (ADAL 3.9)',
    target: entra,
    build: () => jws({ alg: 'RS256', typ: 'JWT', x5t: Buffer.from(rsa.cert.thumbprints.sha1Hex).toString('base64') }, entraClaims()),
    expect: ['x5t.hex_as_text'],
    idpError: 'AADSTS700027',
  },
  { name: 'x5t = the hex thumbprint as the portal shows it', target: entra, build: () => jws({ alg: 'RS256', typ: 'JWT', x5t: rsa.cert.thumbprints.sha1Hex }, entraClaims()), expect: ['x5t.raw_hex'] },
  { name: 'SHA-256 value in x5t (entra-docs #1607)', target: entra, build: () => jws({ alg: 'RS256', typ: 'JWT', x5t: rsa.cert.thumbprints.x5tS256 }, entraClaims()), expect: ['x5t.sha256_value'] },
  { name: 'SHA-1 value in x5t#S256', target: entra, build: () => jws({ alg: 'PS256', typ: 'JWT', 'x5t#S256': rsa.cert.thumbprints.x5t }, entraClaims()), expect: ['x5t_s256.sha1_value'] },
  { name: 'x5t in standard base64 with padding', target: entra, build: () => jws({ alg: 'RS256', typ: 'JWT', x5t: createHash('sha1').update(rsa.cert.leaf.raw).digest('base64') }, entraClaims()), expect: ['x5t.not_base64url'], verdict: 'ok' },
  { name: 'x5c that is not base64 DER', target: entra, build: () => jws({ ...entraHeader(), x5c: ['not a certificate'] }, entraClaims()), expect: ['x5c.malformed'] },
  { name: 'typ missing (and PS256 + x5t only)', target: entra, build: () => jws({ alg: 'PS256', x5t: rsa.cert.thumbprints.x5t }, entraClaims()), expect: ['typ.not_jwt', 'thumbprint.unusual_pairing'], verdict: 'ok' },
  // signature and certificate
  { name: 'signed by another key than the certificate', target: entra, cert: () => rsa.cert, build: () => jws(entraHeader(), entraClaims(), other.key), expect: ['signature.invalid'], idpError: 'AADSTS700027' },
  { name: 'thumbprint of another certificate', target: entra, cert: () => rsa.cert, build: () => jws({ ...entraHeader(), 'x5t#S256': other.cert.thumbprints.x5tS256 }, entraClaims()), expect: ['thumbprint.wrong_certificate'], idpError: 'AADSTS700027' },
  { name: 'x5c leaf is another certificate', target: entra, build: () => jws({ ...entraHeader(), x5c: [other.cert.leaf.raw.toString('base64')] }, entraClaims()), expect: ['x5c.leaf_mismatch'] },
  { name: 'RS256 header with an EC certificate', target: { tokenEndpoint: GENERIC_TOKEN }, cert: () => ec.cert, build: () => jws({ alg: 'RS256', typ: 'JWT' }, claimsFor(GENERIC_TOKEN, 'svc')), expect: ['alg.key_mismatch', 'signature.invalid'] },
  { name: 'not a JWS at all', target: entra, build: () => 'this.is not-a-jwt', expect: ['jws.malformed'], idpError: 'AADSTS50027' },
  { name: 'empty signature part', target: entra, build: () => jws(entraHeader(), entraClaims()).replace(/\.[^.]+$/, '.'), expect: ['signature.missing'] },
  // Keycloak / Okta / Auth0 / generic audiences
  { name: 'Keycloak: two audiences (single since 26.2)', target: { tokenEndpoint: KC_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, claimsFor([KC_ISSUER, KC_TOKEN], 'cdr')), expect: ['aud.multiple'], idpError: 'Multiple audiences not allowed' },
  { name: 'Keycloak: another realm', target: { tokenEndpoint: KC_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, claimsFor('https://kc.example.org/realms/master', 'cdr')), expect: ['aud.not_accepted'], idpError: 'Invalid token audience' },
  { name: 'Okta: aud = issuer', target: { tokenEndpoint: OKTA_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, claimsFor('https://acme.okta.com', 'okta-app')), expect: ['aud.issuer_only'] },
  { name: 'Auth0: tenant URL without the trailing slash', target: { tokenEndpoint: AUTH0_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, { ...claimsFor('https://acme.eu.auth0.com', 'm2m'), exp: NOW + 60 }), expect: ['aud.trailing_slash'] },
  { name: 'generic: aud of another server', target: { tokenEndpoint: GENERIC_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, claimsFor('https://elsewhere.example.com/token', 'svc')), expect: ['aud.not_token_endpoint'] },
  { name: 'generic: jti missing', target: { provider: 'generic', tokenEndpoint: GENERIC_TOKEN }, build: () => jws({ alg: 'RS256', typ: 'JWT' }, { ...claimsFor(GENERIC_TOKEN, 'svc'), jti: undefined }), expect: ['jti.missing'] },
];

describe('faulty assertions: each produces its findings', () => {
  test('the table has at least 25 faulty assertions and covers every IdP', () => {
    assert.ok(rows.length >= 25, `${rows.length} rows`);
    const idps = new Set(rows.map((r) => lint(r.build(), r.target, r.cert?.()).target.idp));
    assert.deepEqual([...idps].sort(), ['auth0', 'entra', 'generic', 'keycloak', 'okta']);
  });

  for (const row of rows) {
    test(`${row.name} → ${row.expect.join(', ')}`, () => {
      const result = lint(row.build(), row.target, row.cert?.());
      const found = ids(result);
      for (const id of row.expect) {
        assert.ok(ruleById(id), `${id} is in the rule catalogue`);
        assert.ok(found.includes(id), `expected ${id} in ${JSON.stringify(result.findings, null, 1)}`);
      }
      assert.equal(result.verdict, row.verdict ?? 'will_fail', JSON.stringify(result.findings.filter((f) => f.severity === 'error'), null, 1));
      if (row.idpError) assert.equal(result.findings.find((f) => f.id === row.expect[0])!.idp_error, row.idpError);
      for (const f of result.findings) {
        assert.ok(ruleById(f.id), `finding ${f.id} comes from the catalogue`);
        assert.ok(f.message.length > 0);
      }
    });
  }
});

describe('the forum-thread assertion (Power BI, "audience claim does not match Realm issuer")', () => {
  // docs/design.md §10.12: RS256 + x5t/kid "SSL_FINGERPRINT", aud = the tenant
  // authority, nbf = iat + 60 s, exp = iat + 1 h, POSTed to the v1 endpoint on login.windows.net.
  const POSTED_TO = `https://login.windows.net/${T}/oauth2/token`;
  const forum = () =>
    jws(
      { typ: 'JWT', alg: 'RS256', x5t: 'SSL_FINGERPRINT', kid: 'SSL_FINGERPRINT' },
      { iss: C, sub: C, aud: `https://login.microsoftonline.com/${T}`, jti: 'UNIQUE TOKEN', iat: NOW, nbf: NOW + 60, exp: NOW + 3600 },
    );

  test('an error on aud naming AADSTS700023 and the exact value to use, and a finding on nbf', () => {
    const result = lint(forum(), { tokenEndpoint: POSTED_TO });
    assert.equal(result.verdict, 'will_fail');
    const aud = result.findings.find((f) => f.claim === 'aud' && f.severity === 'error');
    assert.ok(aud, JSON.stringify(result.findings, null, 1));
    assert.equal(aud.id, 'aud.issuer_only');
    assert.equal(aud.idp_error, 'AADSTS700023');
    assert.equal(aud.expected, POSTED_TO, 'the exact URL the assertion is POSTed to');
    assert.equal(aud.actual, `https://login.microsoftonline.com/${T}`);
    assert.match(aud.fix!, new RegExp(POSTED_TO.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    const nbf = result.findings.filter((f) => f.claim === 'nbf').map((f) => f.id);
    assert.ok(nbf.includes('nbf.after_iat'), `nbf findings: ${nbf}`);
    // And the rest of what is wrong with it.
    const all = ids(result);
    for (const id of ['x5t.malformed', 'endpoint.host_alias', 'lifetime.too_long', 'kid.ignored']) assert.ok(all.includes(id), `${id} in ${all}`);
  });

  test('with aud as the one-element array Lcobucci printed: aud.array as well', () => {
    const input = `${b64url({ typ: 'JWT', alg: 'RS256', x5t: rsa.cert.thumbprints.x5t })}.${b64url({ iss: C, sub: C, aud: [`https://login.microsoftonline.com/${T}`], jti: randomUUID(), iat: NOW, nbf: NOW + 60, exp: NOW + 3600 })}`;
    const result = lint(`${input}.${signature('RS256', Buffer.from(input), rsa.key).toString('base64url')}`, { tokenEndpoint: POSTED_TO });
    const found = ids(result, 'error');
    assert.ok(found.includes('aud.array') && found.includes('aud.issuer_only'), found.join(', '));
  });
});

describe('the rule catalogue', () => {
  test('every rule has a stable id, a summary and IdPs; ids are unique', () => {
    const idsSeen = new Set<string>();
    for (const rule of ASSERTION_RULES) {
      assert.match(rule.id, /^[a-z0-9_]+\.[a-z0-9_]+$/, rule.id);
      assert.ok(!idsSeen.has(rule.id), `duplicate ${rule.id}`);
      idsSeen.add(rule.id);
      assert.ok(rule.summary.length > 10, rule.id);
      assert.ok(rule.idps.length > 0, rule.id);
    }
  });

  test('rules per IdP', (t) => {
    const counts = ruleCounts();
    t.diagnostic(`rules per IdP: ${JSON.stringify(counts)}`);
    for (const idp of ['entra', 'keycloak', 'okta', 'auth0', 'generic'] as IdpProfileName[]) assert.ok(counts[idp] >= 30, `${idp}: ${counts[idp]}`);
  });
});

test('a token endpoint that is not a token URL is reported once, and a right-looking aud is not blamed for it', () => {
  const result = lint(jws(entraHeader(), entraClaims()), { tokenEndpoint: `https://login.microsoftonline.com/${T}`, clientId: C });
  assert.deepEqual(ids(result, 'error'), ['endpoint.not_token_url']);
  assert.equal(result.findings[0]!.expected, ENTRA_V2);
});
