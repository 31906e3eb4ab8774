// The federated-token lint (issue 10): decoded federated tokens (the shape a Kubernetes projected
// service-account token has), each fault mapped to the finding it must produce and the AADSTS code
// Entra answers with; recognition of a pasted federated token without a credential; and the error
// catalogue's entries for client secrets and federated credentials.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lintAssertion, type LintResult } from '../../src/diagnostics/assertion-linter.ts';
import { RULE_SETS, rulesLeadingTo } from '../../src/diagnostics/assertion-rules.ts';
import type { TargetInput } from '../../src/diagnostics/assertion-target.ts';
import { explainIdpError } from '../../src/diagnostics/error-explainer.ts';

const T = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const C = '3f1e2d4c-5b6a-4789-9abc-def012345678';
const ISSUER = `https://westeurope.oic.prod-aks.azure.com/${T}/83300708-be1e-4990-87f8-a9f61c9c23de/`;
const SUBJECT = 'system:serviceaccount:bi:token-broker';
const EXCHANGE = 'api://AzureADTokenExchange';
const ENTRA_V2 = `https://login.microsoftonline.com/${T}/oauth2/v2.0/token`;
const NOW_MS = Date.UTC(2026, 2, 1, 12, 0, 0);
const NOW = NOW_MS / 1000;

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A compact JWS with a placeholder signature: the lint never verifies a federated token's signature. */
function token(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  return `${b64url(header)}.${b64url(claims)}.${Buffer.from('not-a-real-signature').toString('base64url')}`;
}

/** What the kubelet writes for a pod with a projected serviceAccountToken volume (audience api://AzureADTokenExchange). */
function k8sClaims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    aud: [EXCHANGE],
    exp: NOW + 3600,
    iat: NOW,
    nbf: NOW,
    iss: ISSUER,
    jti: '14ec8318-9ea6-44a2-85bc-66a2ef4de1d8',
    'kubernetes.io': { namespace: 'bi', serviceaccount: { name: 'token-broker', uid: 'fd317523-e86a-4601-af92-979938700000' } },
    sub: SUBJECT,
    ...extra,
  };
}

const K8S_HEADER = { alg: 'RS256', kid: 'Zx1nN3m2VKwhvz5Ax0M2qg' };

function lint(jws: string, target: TargetInput = {}): LintResult {
  return lintAssertion({ assertion: jws, target, nowMs: NOW_MS });
}

/** An Entra credential with a federated token (what the credential view and a named credential give). */
const entraFederated = (cloud: 'public' | 'usgovhigh' = 'public'): TargetInput => ({
  kind: 'federated_token',
  credential: { id: 'powerbi-wi', idp: 'entra', cloud, clientId: C, tokenEndpoint: ENTRA_V2, audience: ENTRA_V2 },
});

const ids = (r: LintResult, severity?: string) => r.findings.filter((f) => !severity || f.severity === severity).map((f) => f.id);
const finding = (r: LintResult, id: string) => {
  const f = r.findings.find((x) => x.id === id);
  assert.ok(f, `${id} not in ${ids(r).join(', ')}`);
  return f;
};

describe('a good federated token', () => {
  test('pasted alone: recognised as a federated token for Entra, no error or warning, the values to register', () => {
    const result = lint(token(K8S_HEADER, k8sClaims()));
    assert.equal(result.target.kind, 'federated_token');
    assert.equal(result.target.idp, 'entra');
    assert.deepEqual(ids(result, 'error'), []);
    assert.deepEqual(ids(result, 'warning'), []);
    assert.equal(result.verdict, 'ok');
    const register = finding(result, 'federated.register');
    assert.equal(register.idp_error, 'AADSTS70021');
    assert.equal(register.expected, `issuer ${ISSUER} · subject ${SUBJECT} · audience ${EXCHANGE}`);
    assert.match(register.message, /AADSTS700211.*AADSTS700213.*AADSTS70021/);
    assert.match(register.message, /service account token-broker in namespace bi/);
    assert.match(finding(result, 'federated.signature_not_checked').message, new RegExp(`${ISSUER}\\.well-known/openid-configuration`));
    assert.match(finding(result, 'target.assumed').message, /^checked as a federated token against Entra ID/);
    assert.deepEqual(result.signature, { checked: false, valid: null, certificate: undefined });
  });

  test('none of the client-assertion rules speak: a foreign iss, an api:// aud, no thumbprint and a 1 h lifetime are all right here', () => {
    const result = lint(token(K8S_HEADER, k8sClaims()), entraFederated());
    const clientAssertionOnly = new Set(RULE_SETS.client_assertion.map((r) => r.id).filter((id) => !RULE_SETS.federated_token.some((r) => r.id === id)));
    assert.deepEqual(ids(result).filter((id) => clientAssertionOnly.has(id)), []);
    // Checked as a client assertion, the same JWT is refused for exactly those reasons.
    const asAssertion = lint(token(K8S_HEADER, k8sClaims()), { kind: 'client_assertion', tokenEndpoint: ENTRA_V2, clientId: C });
    assert.ok(ids(asAssertion, 'error').includes('iss.not_guid'), ids(asAssertion).join(', '));
    assert.equal(finding(asAssertion, 'iss.not_guid').idp_error, 'AADSTS70021');
  });

  test('aud as a plain string (a GitHub Actions token) is as good as the Kubernetes one-element array', () => {
    const result = lint(token({ alg: 'RS256', typ: 'JWT', kid: 'x' }, k8sClaims({ aud: EXCHANGE, iss: 'https://token.actions.githubusercontent.com', sub: 'repo:acme/bi:environment:prod' })));
    assert.equal(result.target.kind, 'federated_token');
    assert.equal(result.verdict, 'ok', JSON.stringify(result.findings, null, 1));
  });

  test('a national cloud credential wants its own exchange audience', () => {
    const result = lint(token(K8S_HEADER, k8sClaims({ aud: ['api://AzureADTokenExchangeUSGov'] })), entraFederated('usgovhigh'));
    assert.equal(result.verdict, 'ok', JSON.stringify(result.findings, null, 1));
    assert.match(finding(result, 'federated.register').expected!, /audience api:\/\/AzureADTokenExchangeUSGov$/);
    assert.match(finding(result, 'federated.register').fix!, new RegExp(`--id ${C}`));
  });

  test('a client assertion is not taken for a federated token: its iss is the client id', () => {
    const result = lint(token({ alg: 'PS256', typ: 'JWT', 'x5t#S256': 'x' }, { iss: C, sub: C, aud: EXCHANGE, exp: NOW + 600 }));
    assert.equal(result.target.kind, 'client_assertion');
  });
});

describe('faulty federated tokens: each fault, the finding, the AADSTS code', () => {
  const cases: { name: string; header?: Record<string, unknown>; claims: Record<string, unknown>; target?: TargetInput; id: string; severity: 'error' | 'warning'; idpError?: string; expected?: string }[] = [
    { name: 'the default service-account token (aud the API server)', claims: k8sClaims({ aud: ['https://kubernetes.default.svc.cluster.local'] }), target: entraFederated(), id: 'federated.aud_not_token_exchange', severity: 'error', idpError: 'AADSTS700212', expected: EXCHANGE },
    { name: 'aud differing in case', claims: k8sClaims({ aud: ['api://azureadtokenexchange'] }), target: entraFederated(), id: 'federated.aud_not_token_exchange', severity: 'error', idpError: 'AADSTS700212', expected: EXCHANGE },
    { name: 'another cloud\'s exchange audience', claims: k8sClaims({ aud: ['api://AzureADTokenExchangeChina'] }), target: entraFederated(), id: 'federated.aud_not_token_exchange', severity: 'error', idpError: 'AADSTS700212', expected: EXCHANGE },
    { name: 'no aud', claims: k8sClaims({ aud: undefined }), target: entraFederated(), id: 'federated.aud_not_token_exchange', severity: 'error', idpError: 'AADSTS700212' },
    { name: 'several audiences', claims: k8sClaims({ aud: [EXCHANGE, 'https://kubernetes.default.svc'] }), id: 'federated.aud_several', severity: 'warning' },
    { name: 'PS256 (Entra supports RS256 issuers only)', header: { alg: 'PS256', kid: 'k' }, claims: k8sClaims(), id: 'federated.alg_not_rs256', severity: 'warning', expected: 'RS256' },
    { name: 'alg none', header: { alg: 'none' }, claims: k8sClaims(), id: 'federated.alg_unsigned', severity: 'error' },
    { name: 'HS256', header: { alg: 'HS256' }, claims: k8sClaims(), id: 'federated.alg_unsigned', severity: 'error' },
    { name: 'expired (read once, never renewed)', claims: k8sClaims({ iat: NOW - 7200, nbf: NOW - 7200, exp: NOW - 3600 }), id: 'federated.expired', severity: 'error', idpError: 'AADSTS700024' },
    { name: 'a 1 h token with 5 min left (past the kubelet\'s 80 %)', claims: k8sClaims({ iat: NOW - 3300, nbf: NOW - 3300, exp: NOW + 300 }), id: 'federated.expires_soon', severity: 'warning', idpError: 'AADSTS700024' },
    { name: 'a 10 min token with 1 min left', claims: k8sClaims({ iat: NOW - 540, nbf: NOW - 540, exp: NOW + 60 }), id: 'federated.expires_soon', severity: 'warning' },
    { name: 'nbf in the future', claims: k8sClaims({ nbf: NOW + 900 }), id: 'federated.nbf_in_future', severity: 'warning', idpError: 'AADSTS700024' },
    { name: 'iat in the future', claims: k8sClaims({ iat: NOW + 900, nbf: undefined }), id: 'federated.iat_in_future', severity: 'warning' },
    { name: 'iss with a trailing space', claims: k8sClaims({ iss: `${ISSUER} ` }), id: 'federated.iss_whitespace', severity: 'error', idpError: 'AADSTS700211', expected: ISSUER },
    { name: 'a legacy service-account token issuer', claims: k8sClaims({ iss: 'kubernetes/serviceaccount' }), id: 'federated.iss_not_https', severity: 'warning' },
    { name: 'no iss', claims: k8sClaims({ iss: undefined }), target: entraFederated(), id: 'federated.iss_missing', severity: 'error', idpError: 'AADSTS700211' },
    { name: 'no sub', claims: k8sClaims({ sub: undefined }), id: 'federated.sub_missing', severity: 'error', idpError: 'AADSTS700213' },
    { name: 'no exp', claims: k8sClaims({ exp: undefined }), id: 'federated.exp_missing', severity: 'error' },
    { name: 'exp in milliseconds', claims: k8sClaims({ exp: (NOW + 3600) * 1000 }), id: 'time.milliseconds', severity: 'error', idpError: 'AADSTS700024' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const result = lint(token(c.header ?? K8S_HEADER, c.claims), c.target ?? {});
      assert.equal(result.target.kind, 'federated_token', c.name);
      const f = finding(result, c.id);
      assert.equal(f.severity, c.severity, JSON.stringify(f));
      if (c.idpError) assert.equal(f.idp_error, c.idpError);
      if (c.expected) assert.equal(f.expected, c.expected);
      assert.equal(result.verdict, c.severity === 'error' ? 'will_fail' : 'ok', JSON.stringify(result.findings.filter((x) => x.severity === 'error')));
    });
  }

  test('a 10 min token with 5 min left is not yet overdue: no warning', () => {
    const result = lint(token(K8S_HEADER, k8sClaims({ iat: NOW - 300, nbf: NOW - 300, exp: NOW + 300 })));
    assert.ok(!ids(result).includes('federated.expires_soon'), ids(result).join(', '));
  });

  test('the fix for an expired token names the projected volume; the token is never echoed', () => {
    const jws = token(K8S_HEADER, k8sClaims({ iat: NOW - 7200, exp: NOW - 3600 }));
    const result = lint(jws);
    assert.match(finding(result, 'federated.expired').fix!, /projected serviceAccountToken volume/);
    assert.ok(!JSON.stringify(result.findings).includes(jws.split('.')[2]!), 'no signature in the findings');
  });

  test('at an OIDC IdP a federated token gets the generic rules only', () => {
    const result = lint(token({ alg: 'ES256' }, k8sClaims({ aud: ['https://kc.example.org/realms/ehr'] })), { kind: 'federated_token', provider: 'keycloak' });
    assert.equal(result.target.idp, 'keycloak');
    assert.deepEqual(ids(result, 'error'), []);
    assert.ok(!ids(result).some((id) => ['federated.aud_not_token_exchange', 'federated.alg_not_rs256', 'federated.register'].includes(id)), ids(result).join(', '));
  });

  test('explained errors link back to the rules that lead to them', () => {
    assert.ok(rulesLeadingTo('AADSTS700212', 'entra').includes('federated.aud_not_token_exchange'));
    assert.ok(rulesLeadingTo('AADSTS700213', 'entra').includes('federated.sub_missing'));
    assert.ok(rulesLeadingTo('AADSTS700024', 'entra').includes('federated.expired'));
  });
});

describe('the error catalogue: client secrets and federated credentials', () => {
  const first = (text: string) => {
    const r = explainIdpError(text);
    assert.equal(r.recognized, true, text);
    return r.explanations[0]!;
  };

  test('AADSTS7000215 (as Entra words it now): the secret value, not its ID', () => {
    const e = first(JSON.stringify({ error: 'invalid_client', error_description: `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${C}'. Trace ID: 1`, error_codes: [7000215] }));
    assert.equal(e.code, 'AADSTS7000215');
    assert.match(e.fix, /Value column \(not the Secret ID\)/);
    assert.match(e.fix, /clientSecret\.file/);
    // Without its code, by Entra's wording alone; Keycloak's older "Invalid client secret" is not matched too.
    const bare = explainIdpError('Invalid client secret provided. Ensure the secret being sent in the request is the client secret value');
    assert.deepEqual(bare.explanations.map((x) => x.code), ['AADSTS7000215']);
  });

  test('AADSTS7000222: an expired secret, rotated with previousFile', () => {
    const e = first(`AADSTS7000222: The provided client secret keys for app '${C}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret`);
    assert.equal(e.code, 'AADSTS7000222');
    assert.match(e.fix, /previousFile/);
    assert.equal(first('The provided client secret keys are expired. Visit the Azure portal to create new keys for your app').code, 'AADSTS7000222');
  });

  test('70021, 700211, 700212, 700213 by code and by wording, with the values to register', () => {
    const wording = (what: string) => `No matching federated identity record found for presented assertion ${what} 'x'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.`;
    for (const [code, text, fix] of [
      [700211, wording('issuer'), /issuer to the token's iss exactly/],
      [700212, wording('audience'), /api:\/\/AzureADTokenExchange/],
      [700213, wording('subject'), /system:serviceaccount:<namespace>:<service account>/],
    ] as const) {
      assert.equal(first(`AADSTS${code}: ${text}`).code, `AADSTS${code}`);
      const bare = first(text);
      assert.equal(bare.code, `AADSTS${code}`, text);
      assert.equal(bare.matched_by, 'message');
      assert.match(bare.fix, fix);
    }
    const none = explainIdpError("No matching federated identity record found for presented assertion. Assertion Issuer: 'https://x/'. Assertion Subject: 'y'. Assertion Audience: 'api://AzureADTokenExchange'.");
    assert.deepEqual(none.explanations.map((x) => x.code), ['AADSTS70021']);
    assert.match(none.fix!, /issuer \(the cluster's OIDC issuer URL\), subject \(system:serviceaccount:<namespace>:<service account>\) and audience api:\/\/AzureADTokenExchange/);
    assert.ok(none.explanations[0]!.rules?.includes('federated.register'));
  });

  test('invalid_client as Okta, Auth0 and Keycloak word a wrong secret', () => {
    const okta = first('{"error":"invalid_client","error_description":"The client secret supplied for a confidential client is invalid."}');
    assert.deepEqual([okta.source, okta.claim], ['okta', 'client_secret']);
    const auth0 = first('{"error":"access_denied","error_description":"Unauthorized"}');
    assert.deepEqual([auth0.source, auth0.claim], ['auth0', 'client_secret']);
    assert.match(auth0.fix, /Client Secret/);
    const keycloak = first('{"error":"unauthorized_client","error_description":"Invalid client secret"}');
    assert.deepEqual([keycloak.source, keycloak.code], ['keycloak', 'Invalid client secret']);
    const bare = first('invalid_client');
    assert.match(bare.cause, /client secret/);
    const notes = Object.fromEntries(bare.per_idp!.map((n) => [n.idp, n]));
    assert.match(notes.okta!.cause, /client secret supplied for a confidential client is invalid/);
    assert.match(notes.auth0!.cause, /access_denied "Unauthorized"/);
    assert.match(notes.keycloak!.cause, /invalid_client_credentials/);
    assert.match(notes.entra!.cause, /7000215 wrong secret/);
  });
});
