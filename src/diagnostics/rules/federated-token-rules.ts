// A federated token: a JWT another issuer signed for the workload (a Kubernetes projected
// service-account token, a CI system's OIDC token), sent as the client assertion. At Entra it is
// matched against the app's federated identity credentials (docs/design.md §9.1):
// - issuer and subject exactly, case-sensitive, no wildcards; an issuer with leading or trailing
//   white space is blocked (learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations,
//   "federated credential configuration");
// - one audience, api://AzureADTokenExchange (other values in the national clouds). Kubernetes sends
//   aud as an array of one, which is what AKS workload identity exchanges every day;
// - only issuers signing with RS256 are supported ("other algorithms may work, but haven't been
//   tested", same page);
// - AADSTS700211 / 700212 / 700213: no record for the issuer / audience / subject; AADSTS70021: no
//   record at all (also while a new one propagates); AADSTS700024: outside its time range.
// Who signed it cannot be checked here: Entra fetches the issuer's keys ({iss}/.well-known/openid-configuration),
// and diagnostics never fetch anything (docs/design.md §5.4).
import { ALL_IDPS, defineRule, show, type AssertionRule, type LintContext } from '../assertion-rule.ts';
import { audienceList, isTokenExchangeAudience } from '../assertion-target.ts';
import { iso, relative } from './time-rules.ts';

/** Within this of exp, a token still in the file should already have been replaced by its writer. */
export const FEDERATED_EXPIRY_WARNING_SECONDS = 600;
/** The kubelet rewrites a projected service-account token once 80 % of its lifetime has passed. */
const KUBELET_REFRESH_FRACTION = 0.8;
const HMAC = /^HS\d+$/i;
const KUBERNETES_SUBJECT = /^system:serviceaccount:([^:]+):([^:]+)$/;

const WRITER_FIX =
  'mount the token as a projected serviceAccountToken volume (audience api://AzureADTokenExchange) and point federatedToken.file at it: ' +
  'the kubelet rewrites it at 80 % of its lifetime and the broker re-reads it for every exchange; a token copied into a Secret is never renewed';

/** NumericDate in seconds; undefined when absent, not a number, or in milliseconds (time.milliseconds reports those). */
function seconds(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value < 1e11 ? value : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** What a mismatch on each claim is answered with, at Entra (OIDC IdPs: invalid_client). */
const OIDC_ERRORS = { keycloak: 'invalid_client', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' } as const;

export const federatedAlgUnsigned = defineRule({
  id: 'federated.alg_unsigned',
  claim: 'alg',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: OIDC_ERRORS,
  summary: 'federated token: alg missing, "none" or HMAC: not signed with the issuer\'s key',
  fix: 'use the token the issuer signs with its published key (Kubernetes: a projected service-account token)',
  check: (ctx) => {
    const alg = ctx.header.alg;
    if (typeof alg === 'string' && alg.toLowerCase() !== 'none' && !HMAC.test(alg)) return undefined;
    return {
      message:
        typeof alg === 'string' && HMAC.test(alg)
          ? `alg ${alg} is a shared-secret MAC: nobody but the issuer could check it, so no IdP accepts it as a federated token`
          : `alg is ${alg === undefined ? 'missing' : JSON.stringify(alg)}: the token is not signed`,
      expected: 'RS256',
      actual: alg,
    };
  },
});

export const federatedAlgNotRs256 = defineRule({
  id: 'federated.alg_not_rs256',
  claim: 'alg',
  severity: 'warning',
  idps: ['entra'],
  summary: 'Entra supports federated tokens from issuers that sign with RS256 only',
  fix: 'have the issuer sign with RS256 (Kubernetes service-account keys are RSA and sign RS256 by default)',
  check: (ctx) => {
    const alg = ctx.header.alg;
    if (typeof alg !== 'string' || alg === 'RS256' || alg.toLowerCase() === 'none' || HMAC.test(alg)) return undefined;
    return {
      // learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations, "Supported signing algorithms and issuers".
      message: `alg ${alg}: Microsoft supports workload identity federation only for issuers that sign with RS256 ("other algorithms may work, but haven't been tested")`,
      expected: 'RS256',
      actual: alg,
    };
  },
});

export const federatedAudNotExchange = defineRule({
  id: 'federated.aud_not_token_exchange',
  claim: 'aud',
  severity: 'error',
  idps: ['entra'],
  idpError: { entra: 'AADSTS700212' },
  summary: 'federated token at Entra: aud is not the token exchange audience (api://AzureADTokenExchange)',
  check: (ctx) => {
    const values = audienceList(ctx.claims.aud);
    const accepted = ctx.target.exchangeAudiences ?? [];
    if (values.some((v) => accepted.includes(v))) return undefined;
    const expected = ctx.target.audience ?? accepted[0];
    const otherCloud = values.find((v) => isTokenExchangeAudience(v) && accepted.some((a) => a.toLowerCase() === v.trim().toLowerCase()) === false);
    const caseOnly = values.find((v) => accepted.some((a) => a.toLowerCase() === v.trim().toLowerCase()));
    const message =
      values.length === 0
        ? 'the token has no aud: Entra matches it against the single audience of the app\'s federated credential'
        : caseOnly !== undefined
          ? `aud ${JSON.stringify(caseOnly)} differs from ${expected} in letter case or white space: Entra compares the exact string`
          : otherCloud !== undefined
            ? `aud ${otherCloud} is the token exchange audience of another cloud than the credential's`
            : `aud ${values.map((v) => JSON.stringify(v)).join(', ')} is not the token exchange audience: the token was issued for another audience (the default service-account token is for the cluster's API server)`;
    return {
      message,
      expected,
      actual: ctx.claims.aud,
      fix: `have the issuer put ${expected} in aud (Kubernetes: a projected serviceAccountToken volume with audience: ${expected}), and register the same value as the federated credential's audience`,
    };
  },
});

export const federatedAudSeveral = defineRule({
  id: 'federated.aud_several',
  claim: 'aud',
  severity: 'warning',
  idps: ['entra'],
  summary: 'federated token at Entra: aud holds several values (an array of one is what Kubernetes sends)',
  fix: 'request the token for the token exchange audience alone',
  check: (ctx) => {
    const values = audienceList(ctx.claims.aud);
    if (values.length < 2 || !values.some((v) => (ctx.target.exchangeAudiences ?? []).includes(v))) return undefined;
    return {
      message: `aud holds ${values.length} values: a federated credential has exactly one audience, and whether Entra accepts a token that names others besides it is undocumented`,
      expected: ctx.target.audience,
      actual: ctx.claims.aud,
    };
  },
});

export const federatedIssMissing = defineRule({
  id: 'federated.iss_missing',
  claim: 'iss',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS700211', ...OIDC_ERRORS },
  summary: 'federated token: iss missing or not a string',
  check: (ctx) => (str(ctx.claims.iss) ? undefined : { message: 'the token has no iss: the IdP finds the trusted issuer (and its keys) by it', actual: ctx.claims.iss }),
});

export const federatedIssWhitespace = defineRule({
  id: 'federated.iss_whitespace',
  claim: 'iss',
  severity: 'error',
  idps: ['entra'],
  idpError: { entra: 'AADSTS700211' },
  summary: 'federated token at Entra: iss has leading or trailing white space (the exchange is blocked)',
  fix: 'fix the issuer URL the token issuer is configured with (Kubernetes: --service-account-issuer)',
  check: (ctx) => {
    const iss = str(ctx.claims.iss);
    if (!iss || iss.trim() === iss) return undefined;
    return { message: 'iss starts or ends with white space: Entra blocks such a token exchange', actual: JSON.stringify(iss), expected: iss.trim() };
  },
});

export const federatedIssNotHttps = defineRule({
  id: 'federated.iss_not_https',
  claim: 'iss',
  severity: 'warning',
  idps: ALL_IDPS,
  summary: 'federated token: iss is not an https URL, so its keys cannot be discovered',
  check: (ctx) => {
    const iss = str(ctx.claims.iss)?.trim();
    if (!iss || /^https:\/\/[^\s/]+/i.test(iss)) return undefined;
    const legacy = iss === 'kubernetes/serviceaccount';
    return {
      message: legacy
        ? 'iss kubernetes/serviceaccount: a legacy service-account token (a Secret), not a projected one; it has no discoverable issuer and the wrong audience'
        : 'iss is not an https URL: the IdP fetches the issuer\'s keys from {iss}/.well-known/openid-configuration (Entra answers AADSTS501661 when it cannot)',
      actual: iss,
      fix: legacy ? WRITER_FIX : 'configure the issuer with its public https URL (Kubernetes: --service-account-issuer, served with its OIDC discovery document)',
    };
  },
});

export const federatedSubMissing = defineRule({
  id: 'federated.sub_missing',
  claim: 'sub',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS700213', ...OIDC_ERRORS },
  summary: 'federated token: sub missing or not a string',
  check: (ctx) => (str(ctx.claims.sub) ? undefined : { message: 'the token has no sub: the federated credential names the workload by it', actual: ctx.claims.sub }),
});

export const federatedRegister = defineRule({
  id: 'federated.register',
  claim: 'iss',
  severity: 'info',
  idps: ['entra'],
  idpError: { entra: 'AADSTS70021' },
  summary: 'federated token at Entra: the issuer, subject and audience the app\'s federated credential must carry',
  check: (ctx) => {
    const iss = str(ctx.claims.iss);
    const sub = str(ctx.claims.sub);
    if (!iss || !sub) return undefined;
    const audience = ctx.target.audience ?? 'api://AzureADTokenExchange';
    const k8s = KUBERNETES_SUBJECT.exec(sub);
    const app = ctx.target.clientId ? `app ${ctx.target.clientId}` : 'the app';
    return {
      message:
        `Entra exchanges this token only if ${app} has a federated credential with exactly this issuer, subject and audience ` +
        '(case-sensitive, no wildcards, a trailing slash counts; it cannot be checked from here): AADSTS700211 when no credential has the issuer, ' +
        `AADSTS700213 when none has the subject, AADSTS70021 when none matches or a new one has not propagated yet (retry after a few minutes)` +
        (k8s ? `; subject ${sub} is service account ${k8s[2]} in namespace ${k8s[1]}` : ''),
      expected: `issuer ${iss} · subject ${sub} · audience ${audience}`,
      fix: `az ad app federated-credential create --id ${ctx.target.clientId ?? '<client id>'} --parameters '${JSON.stringify({ name: 'token-broker', issuer: iss, subject: sub, audiences: [audience] })}'`,
    };
  },
});

export const federatedExpMissing = defineRule({
  id: 'federated.exp_missing',
  claim: 'exp',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: OIDC_ERRORS,
  summary: 'federated token: exp missing or not a NumericDate',
  check: (ctx) =>
    typeof ctx.claims.exp !== 'number' || !Number.isFinite(ctx.claims.exp)
      ? { message: ctx.claims.exp === undefined ? 'the token has no exp: an assertion must expire (RFC 7523 §3), and the broker cannot tell when to stop sending it' : 'exp is not a NumericDate (seconds since 1970)', actual: show(ctx.claims.exp) }
      : undefined,
});

export const federatedExpired = defineRule({
  id: 'federated.expired',
  claim: 'exp',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS700024', ...OIDC_ERRORS },
  summary: 'federated token: exp is past (the broker sends nothing until the file holds a newer one)',
  fix: WRITER_FIX,
  check: (ctx) => {
    const exp = seconds(ctx.claims.exp);
    if (exp === undefined || exp > ctx.nowSeconds) return undefined;
    return {
      message: `the token expired ${exp === ctx.nowSeconds ? 'just now' : relative(exp - ctx.nowSeconds)} (${iso(exp)}): its writer did not replace it (a token read once, or copied, is never renewed)`,
      actual: iso(exp),
      expected: `after ${iso(ctx.nowSeconds)}`,
    };
  },
});

export const federatedExpiresSoon = defineRule({
  id: 'federated.expires_soon',
  claim: 'exp',
  severity: 'warning',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS700024', ...OIDC_ERRORS },
  summary: `federated token: expires within ${FEDERATED_EXPIRY_WARNING_SECONDS / 60} minutes and past the point where its writer renews it`,
  fix: WRITER_FIX,
  check: (ctx) => {
    const exp = seconds(ctx.claims.exp);
    const iat = seconds(ctx.claims.iat);
    if (exp === undefined || exp <= ctx.nowSeconds) return undefined;
    const left = exp - ctx.nowSeconds;
    const lifetime = iat !== undefined && exp > iat ? exp - iat : undefined;
    // A short-lived token is renewed late in absolute terms: only warn once its renewal is overdue.
    if (left > FEDERATED_EXPIRY_WARNING_SECONDS || (lifetime !== undefined && left > lifetime * (1 - KUBELET_REFRESH_FRACTION))) return undefined;
    return {
      message: `the token expires ${relative(left)} (${iso(exp)}): the kubelet rewrites a projected token at 80 % of its lifetime, so this one should have been replaced by now; once it expires the broker sends nothing until the file holds a newer one`,
      actual: iso(exp),
    };
  },
});

export const federatedNotYetValid = defineRule({
  id: 'federated.nbf_in_future',
  claim: 'nbf',
  severity: 'warning',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS700024', ...OIDC_ERRORS },
  summary: 'federated token: nbf is in the future (the issuer\'s clock or the broker\'s is off)',
  fix: 'sync the clocks (NTP) of the issuer and of the broker\'s node',
  check: (ctx) => {
    const nbf = seconds(ctx.claims.nbf);
    if (nbf === undefined || nbf <= ctx.nowSeconds) return undefined;
    return { message: `the token is valid only ${relative(nbf - ctx.nowSeconds)} (${iso(nbf)}): the issuer's clock is ahead of this one`, actual: iso(nbf), expected: `at or before ${iso(ctx.nowSeconds)}` };
  },
});

export const federatedIssuedInFuture = defineRule({
  id: 'federated.iat_in_future',
  claim: 'iat',
  severity: 'warning',
  idps: ALL_IDPS,
  summary: 'federated token: iat is in the future (the issuer\'s clock or the broker\'s is off)',
  fix: 'sync the clocks (NTP) of the issuer and of the broker\'s node',
  check: (ctx) => {
    const iat = seconds(ctx.claims.iat);
    if (iat === undefined || iat <= ctx.nowSeconds) return undefined;
    return { message: `iat is ${relative(iat - ctx.nowSeconds)} (${iso(iat)}): issued in the future by this clock`, actual: iso(iat) };
  },
});

export const federatedSignatureNotChecked = defineRule({
  id: 'federated.signature_not_checked',
  claim: 'signature',
  severity: 'info',
  idps: ALL_IDPS,
  summary: 'federated token: signed by its issuer; the signature is checked by the IdP, not here',
  check: (ctx: LintContext) => {
    const iss = str(ctx.claims.iss)?.trim();
    return {
      message:
        `signed by the issuer${iss ? ` ${iss}` : ''}, not by the broker: the IdP checks it with the keys published at ${iss ? `${iss.replace(/\/+$/, '')}/.well-known/openid-configuration` : '{iss}/.well-known/openid-configuration'} (jwks_uri), ` +
        `which diagnostics do not fetch${ctx.target.idp === 'entra' ? ' (AADSTS7000272 when the kid is not among them, AADSTS501661 when Entra cannot fetch them)' : ''}`,
      actual: typeof ctx.header.kid === 'string' ? `kid ${ctx.header.kid}` : undefined,
    };
  },
});

/** The rules only federated tokens get, in report order within a severity. */
export const FEDERATED_TOKEN_RULES: AssertionRule[] = [
  federatedAlgUnsigned,
  federatedIssMissing,
  federatedIssWhitespace,
  federatedSubMissing,
  federatedAudNotExchange,
  federatedExpMissing,
  federatedExpired,
  federatedExpiresSoon,
  federatedNotYetValid,
  federatedIssuedInFuture,
  federatedAlgNotRs256,
  federatedAudSeveral,
  federatedIssNotHttps,
  federatedRegister,
  federatedSignatureNotChecked,
];
