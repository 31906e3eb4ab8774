// `aud` and the token endpoint itself. The audience is the most common reason an assertion is
// refused (AADSTS700023 "audience claim does not match Realm issuer"), and every IdP has its own
// rule (docs/design.md §13, table of assertion rules by IdP; §10.3 for Entra):
// - Entra: the exact, tenant-specific token URL POSTed to, same host, one string;
// - Keycloak: realm issuer or token / introspection / PAR / CIBA endpoint, one value since 26.2;
// - Okta: the full token endpoint URL ("the endpoint invoked for the request");
// - Auth0: the tenant (or custom-domain) URL with a trailing slash;
// - generic (oidc-provider, RFC 7523 §3 / 7523bis): the token endpoint, or the issuer.
import { ALL_IDPS, defineRule, memoised, type AssertionRule, type IdpProfileName, type LintContext, type RuleHit, type Severity } from '../assertion-rule.ts';
import { ENTRA_MULTI_TENANT_SEGMENTS, parseEntraUrl, parseUrl, type EntraUrl } from '../assertion-target.ts';

interface AudIssue {
  id: string;
  message: string;
  expected?: string;
  severity?: Severity;
  fix?: string;
}

const stripSlash = (s: string) => s.replace(/\/+$/, '');

/** aud as a list of strings, or undefined when it is neither a string nor an array of strings. */
function audValues(aud: unknown): string[] | undefined {
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string')) return aud as string[];
  return undefined;
}

function entraTokenUrl(u: EntraUrl, version: 'v1' | 'v2' = 'v2'): string {
  return `${u.origin}/${u.tenant ?? '<tenant-id>'}/oauth2/${version === 'v2' ? 'v2.0/' : ''}token`;
}

interface AudAnalysis {
  issue?: AudIssue;
  /** aud was compared with a known accepted value and matched. */
  verified: boolean;
}

function analyseEntra(value: string, ctx: LintContext): AudIssue | undefined | 'verified' {
  const e = ctx.target.entra;
  const a = parseEntraUrl(value);
  // A token endpoint that is not a token URL has its own finding; aud is then judged by its shape.
  if (e?.shape === 'token') {
    if (value === e.url) return 'verified';
    const expected = e.url;
    const hostNote = a && a.host !== e.host ? `; its host ${a.host} is also not the host you POST to (${e.host})` : '';
    const fixExact = `set aud to exactly ${expected} (the URL you POST to), as one string`;
    if (!a) return { id: 'aud.not_token_endpoint', message: `aud is not a URL; Entra wants the token URL you POST to`, expected, fix: fixExact };
    if (a.tenant && ENTRA_MULTI_TENANT_SEGMENTS.has(a.tenant.toLowerCase())) {
      return { id: 'aud.common_tenant', message: `aud names /${a.tenant}, not a tenant: certificate assertions need the tenant-specific token URL`, expected, fix: fixExact };
    }
    if (a.shape === 'authority' || a.shape === 'issuer') {
      return {
        id: 'aud.issuer_only',
        message:
          `aud is the ${a.shape === 'authority' ? 'tenant authority' : 'issuer'} URL without the token path${hostNote}. ` +
          'Entra compares aud with the exact token URL the request is POSTed to (older documentation said …/{tenant}/v2.0 and the Azure SDK troubleshooting page …/v2; both are wrong for assertions)',
        expected,
        fix:
          e.alias && e.canonicalHost
            ? `${fixExact}; better, POST to https://${e.canonicalHost}/${e.tenant}/oauth2/${e.version === 'v1' ? '' : 'v2.0/'}token and use that URL as aud (as MSAL does)`
            : fixExact,
      };
    }
    if (a.shape === 'token' && e.shape === 'token' && a.version !== e.version && a.tenant?.toLowerCase() === e.tenant?.toLowerCase()) {
      return {
        id: 'aud.version_mismatch',
        message: `aud is the ${a.version} token URL but the request goes to the ${e.version} endpoint${hostNote}; whether Entra accepts one for the other is undocumented, so use the URL you POST to`,
        expected,
        fix: fixExact,
      };
    }
    if ((a.tenant ?? '').toLowerCase() !== (e.tenant ?? '').toLowerCase()) {
      return { id: 'aud.wrong_tenant', message: `aud names tenant ${a.tenant ?? '(none)'} but the request goes to tenant ${e.tenant ?? '(none)'}${hostNote}`, expected, fix: fixExact };
    }
    if (a.host !== e.host) {
      if (a.clouds.length > 0 && e.clouds.length > 0 && !a.clouds.some((c) => e.clouds.includes(c))) {
        return { id: 'aud.wrong_cloud', message: `aud is on ${a.host}, a login host of another cloud than ${e.host} where the request goes (cross-cloud → AADSTS700023)`, expected, fix: fixExact };
      }
      if (a.canonicalHost && a.canonicalHost === e.canonicalHost) {
        return {
          id: 'aud.host_alias',
          message: `aud is on ${a.host} but the request goes to ${e.host}: aliases of one login host, yet Entra compares aud with the host called ("aud != token endpoint")`,
          expected,
          fix: fixExact,
        };
      }
      return { id: 'aud.not_token_endpoint', message: `aud is on ${a.host}, the request goes to ${e.host}`, expected, fix: fixExact };
    }
    if (stripSlash(value) === stripSlash(expected)) {
      return { id: 'aud.trailing_slash', message: 'aud differs from the token URL only by a trailing slash; Entra compares the exact string', expected, fix: fixExact };
    }
    return { id: 'aud.not_token_endpoint', message: `aud is not the token URL the request is POSTed to${value.toLowerCase() === expected.toLowerCase() ? ' (it differs in letter case)' : ''}`, expected, fix: fixExact };
  }
  // No (usable) token endpoint known: judge the shape only.
  if (!a) return { id: 'aud.not_token_endpoint', message: 'aud is not a URL; Entra wants the tenant-specific token URL', expected: 'https://login.microsoftonline.com/<tenant-id>/oauth2/v2.0/token' };
  if (a.tenant && ENTRA_MULTI_TENANT_SEGMENTS.has(a.tenant.toLowerCase())) {
    return { id: 'aud.common_tenant', message: `aud names /${a.tenant}, not a tenant: certificate assertions need the tenant-specific token URL`, expected: entraTokenUrl({ ...a, tenant: '<tenant-id>' }) };
  }
  if (a.shape === 'authority' || a.shape === 'issuer') {
    return {
      id: 'aud.issuer_only',
      message: `aud is the ${a.shape === 'authority' ? 'tenant authority' : 'issuer'} URL without the token path; Entra wants the exact token URL you POST to (v2: ${entraTokenUrl(a)}, v1: ${entraTokenUrl(a, 'v1')})`,
      expected: entraTokenUrl(a),
      fix: `set aud to the token URL you POST to, e.g. ${entraTokenUrl(a)}`,
    };
  }
  if (a.shape === 'other') return { id: 'aud.not_token_endpoint', message: 'aud is not an Entra token URL', expected: entraTokenUrl(a) };
  return undefined;
}

function analyseOidc(values: string[], ctx: LintContext): AudIssue | undefined | 'verified' {
  const { idp, tokenEndpoint, issuer } = ctx.target;
  const accepted = new Set<string>();
  if (idp === 'keycloak') {
    // Keycloak accepts any of these (docs/design.md §13.1).
    const realm = issuer ? stripSlash(issuer) : undefined;
    if (realm) {
      for (const path of ['', '/protocol/openid-connect/token', '/protocol/openid-connect/token/introspect', '/protocol/openid-connect/ext/par/request', '/protocol/openid-connect/ext/ciba/auth']) {
        accepted.add(`${realm}${path}`);
      }
    }
    if (tokenEndpoint) accepted.add(tokenEndpoint);
  } else if (idp === 'auth0') {
    if (issuer) accepted.add(issuer);
  } else {
    if (tokenEndpoint) accepted.add(tokenEndpoint);
    if (idp === 'generic' && issuer) accepted.add(issuer);
  }
  if (accepted.size === 0) return undefined;
  if (values.some((v) => accepted.has(v))) return 'verified';
  const value = values[0]!;
  if (idp === 'generic' && !tokenEndpoint && issuer) {
    // Only the issuer is known (discovery names the token endpoint): an aud on the issuer's origin may be right.
    const u = parseUrl(value);
    const iss = parseUrl(issuer);
    if (u && iss && u.origin === iss.origin) return undefined;
  }
  const expected = ctx.target.audience ?? [...accepted][0]!;
  const exactFix = `set aud to ${expected}`;
  if (values.some((v) => [...accepted].some((a) => stripSlash(a) === stripSlash(v)))) {
    return {
      id: 'aud.trailing_slash',
      message:
        idp === 'auth0'
          ? 'Auth0 wants the tenant (or custom-domain) URL with a trailing slash, e.g. https://{tenant}.auth0.com/'
          : `aud differs from an accepted value only by a trailing slash; ${ctx.profile.name} compares exact strings`,
      expected,
      fix: exactFix,
    };
  }
  if (idp === 'keycloak') {
    const realm = /\/realms\/([^/]+)/.exec(value)?.[1];
    const wantRealm = /\/realms\/([^/]+)/.exec(issuer ?? tokenEndpoint ?? '')?.[1];
    return {
      id: 'aud.not_accepted',
      message: `Keycloak accepts the realm issuer or its token, introspection, PAR or CIBA endpoint${realm && wantRealm && realm !== wantRealm ? `; aud names realm '${realm}', the request goes to realm '${wantRealm}'` : ''}`,
      expected,
      fix: exactFix,
    };
  }
  if (idp === 'auth0') {
    if (tokenEndpoint && value === tokenEndpoint) {
      return { id: 'aud.not_accepted', message: 'Auth0 documents the tenant URL with a trailing slash as aud, not the token URL', expected, severity: 'warning', fix: exactFix };
    }
    return { id: 'aud.not_accepted', message: 'Auth0 wants the tenant (or custom-domain) URL with a trailing slash as aud', expected, fix: exactFix };
  }
  // okta / generic: the token endpoint (oidc-provider also takes its issuer).
  const u = parseUrl(value);
  const te = tokenEndpoint ? parseUrl(tokenEndpoint) : undefined;
  const looksLikeIssuer = !!(u && te && u.origin === te.origin && te.pathname.startsWith(stripSlash(u.pathname)) && te.pathname !== u.pathname);
  if (looksLikeIssuer) {
    return idp === 'okta'
      ? { id: 'aud.issuer_only', message: 'aud is the issuer; Okta wants the full URL of the token endpoint invoked ("The audience claim for client_assertion must be the endpoint invoked for the request")', expected, fix: exactFix }
      : {
          id: 'aud.issuer_only',
          message: 'aud looks like the issuer: servers following RFC 7523bis (oidc-provider, Keycloak) accept their issuer, older ones only the token endpoint URL',
          expected,
          severity: 'warning',
          fix: exactFix,
        };
  }
  return { id: 'aud.not_token_endpoint', message: `aud is not the token endpoint the request is POSTed to${idp === 'generic' ? ' (nor the issuer)' : ''}`, expected, fix: exactFix };
}

function analyse(ctx: LintContext): AudAnalysis {
  return memoised(ctx, 'aud', (): AudAnalysis => {
    const values = audValues(ctx.claims.aud);
    if (!values) return { verified: false }; // missing / not strings: aud.missing reports it
    const result = ctx.target.idp === 'entra' ? (values.length === 1 ? analyseEntra(values[0]!, ctx) : undefined) : analyseOidc(values, ctx);
    return result === 'verified' ? { verified: true } : { issue: result, verified: false };
  });
}

const AUD_ERRORS: Partial<Record<IdpProfileName, string>> = {
  entra: 'AADSTS700023',
  keycloak: 'Invalid token audience',
  okta: 'invalid_client',
  auth0: 'invalid_client',
  generic: 'invalid_client',
};

function audRule(id: string, idps: readonly IdpProfileName[], summary: string): AssertionRule {
  return defineRule({
    id,
    claim: 'aud',
    severity: 'error',
    idps,
    idpError: Object.fromEntries(idps.map((i) => [i, AUD_ERRORS[i]])),
    summary,
    check: (ctx): RuleHit | undefined => {
      const { issue } = analyse(ctx);
      if (issue?.id !== id) return undefined;
      return { message: issue.message, expected: issue.expected, actual: ctx.claims.aud, severity: issue.severity, fix: issue.fix };
    },
  });
}

export const audMissing = defineRule({
  id: 'aud.missing',
  claim: 'aud',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS50027', keycloak: 'Invalid token audience', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'aud missing or not a string',
  check: (ctx) => {
    const aud = ctx.claims.aud;
    if (audValues(aud)) return undefined;
    return {
      message: aud === undefined ? 'the assertion has no aud: every IdP requires it (RFC 7523 §3)' : `aud is ${JSON.stringify(aud)}, not a URL string`,
      expected: ctx.target.audience,
      actual: aud,
    };
  },
});

export const audArray = defineRule({
  id: 'aud.array',
  claim: 'aud',
  severity: 'error',
  idps: ['entra'],
  // openid-client sent [issuer, token_endpoint] → "AADSTS50027: JWT token is invalid or malformed" (panva/openid-client#348; docs/design.md §10.3).
  idpError: { entra: 'AADSTS50027' },
  summary: 'aud is an array: Entra wants one string',
  check: (ctx) => {
    const values = Array.isArray(ctx.claims.aud) ? audValues(ctx.claims.aud) : undefined;
    if (!values) return undefined;
    return {
      message: `aud is an array of ${values.length}; Entra refuses arrays ("JWT token is invalid or malformed"): send one string`,
      expected: ctx.target.audience ?? values[0],
      actual: ctx.claims.aud,
      fix: 'serialise aud as a single string (some JWT libraries need an option for a one-element audience)',
    };
  },
});

export const audMultiple = defineRule({
  id: 'aud.multiple',
  claim: 'aud',
  severity: 'error',
  idps: ['keycloak', 'okta', 'auth0', 'generic'],
  idpError: { keycloak: 'Multiple audiences not allowed', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'aud holds several values (Keycloak ≥ 26.2 refuses; RFC 7523bis wants one)',
  check: (ctx) => {
    const aud = ctx.claims.aud;
    if (!Array.isArray(aud)) return undefined;
    if (aud.length === 1) {
      return { message: 'aud is a one-element array; accepted, but a single string is what RFC 7523bis and Keycloak expect', severity: 'info', expected: ctx.target.audience ?? aud[0], actual: aud };
    }
    return {
      // Keycloak: single audience by default since 26.2 (keycloak/keycloak#38819; docs/design.md §13.1).
      message: `aud holds ${aud.length} values; ${ctx.target.idp === 'keycloak' ? 'Keycloak refuses several since 26.2 unless allowMultipleAudiencesForJwtClientAuthentication is on' : 'RFC 7523bis asks for exactly one'}`,
      expected: ctx.target.audience,
      actual: aud,
      severity: ctx.target.idp === 'keycloak' ? 'error' : 'warning',
      fix: 'send one string',
    };
  },
});

export const audCommonTenant = audRule('aud.common_tenant', ['entra'], 'aud names /common, /organizations or /consumers, not a tenant');
export const audIssuerOnly = audRule('aud.issuer_only', ['entra', 'okta', 'generic'], 'aud is the authority or issuer URL without the token path');
export const audVersionMismatch = audRule('aud.version_mismatch', ['entra'], 'aud is the v1 token URL and the request goes to v2, or the reverse');
export const audWrongTenant = audRule('aud.wrong_tenant', ['entra'], 'aud names another tenant than the token endpoint');
export const audWrongCloud = audRule('aud.wrong_cloud', ['entra'], 'aud is on the login host of another cloud');
export const audHostAlias = audRule('aud.host_alias', ['entra'], 'aud is on an alias host (login.windows.net, sts.windows.net …) of the host the request goes to');
export const audTrailingSlash = audRule('aud.trailing_slash', ['entra', 'keycloak', 'okta', 'auth0', 'generic'], 'aud differs from the accepted value by a trailing slash (Auth0: the slash is required)');
export const audNotTokenEndpoint = audRule('aud.not_token_endpoint', ['entra', 'okta', 'generic'], 'aud is not the token endpoint URL the request is POSTed to');
export const audNotAccepted = audRule('aud.not_accepted', ['keycloak', 'auth0'], 'aud is none of the values the IdP accepts (Keycloak: realm issuer or endpoints; Auth0: tenant URL with slash)');

export const audUnverified = defineRule({
  id: 'aud.unverified',
  claim: 'aud',
  severity: 'info',
  idps: ALL_IDPS,
  summary: 'no token endpoint known: aud checked for its shape only',
  check: (ctx) => {
    if (!audValues(ctx.claims.aud)) return undefined;
    const { issue, verified } = analyse(ctx);
    if (issue || verified) return undefined;
    return {
      message: ctx.target.issuer && !ctx.target.tokenEndpoint
        ? `only the issuer ${ctx.target.issuer} is known (the token endpoint comes from discovery, which diagnostics do not run): aud was checked for its origin only`
        : 'no token endpoint given, so aud could not be compared with the URL the assertion is POSTed to: give token_endpoint (or credential) to check it exactly',
    };
  },
});

// ── the token endpoint itself (Entra) ────────────────────────────────────────────────────────

export const endpointCommonTenant = defineRule({
  id: 'endpoint.common_tenant',
  claim: 'token_endpoint',
  severity: 'error',
  idps: ['entra'],
  idpError: { entra: 'AADSTS700023' },
  summary: 'the token endpoint is /common, /organizations or /consumers: certificate assertions need a tenant',
  check: (ctx) => {
    const e = ctx.target.entra;
    if (!e?.tenant || !ENTRA_MULTI_TENANT_SEGMENTS.has(e.tenant.toLowerCase())) return undefined;
    return {
      message: `the request goes to /${e.tenant}: with a certificate Entra answers AADSTS700023 whatever aud says`,
      expected: `${e.origin}/<tenant-id>/oauth2/${e.version === 'v1' ? '' : 'v2.0/'}token`,
      actual: e.url,
      fix: 'POST to the tenant-specific token URL (tenant GUID or verified domain) and use it as aud',
    };
  },
});

export const endpointHostAlias = defineRule({
  id: 'endpoint.host_alias',
  claim: 'token_endpoint',
  severity: 'warning',
  idps: ['entra'],
  summary: 'the token endpoint uses an alias host (login.windows.net, sts.windows.net …)',
  check: (ctx) => {
    const e = ctx.target.entra;
    if (!e?.alias || !e.canonicalHost) return undefined;
    const preferred = `https://${e.canonicalHost}/${e.tenant ?? '<tenant-id>'}/oauth2/${e.version === 'v1' ? '' : 'v2.0/'}token`;
    return {
      // Aliases per cloud discovery metadata; MSAL rewrites aliases to the preferred host (docs/design.md §10.3, §10.9).
      message: `${e.host} is an alias of ${e.canonicalHost}; it may work when aud uses the same host, but nothing confirms it: use ${e.canonicalHost} for both the POST and aud`,
      expected: preferred,
      actual: e.url,
    };
  },
});

export const endpointNotTokenUrl = defineRule({
  id: 'endpoint.not_token_url',
  claim: 'token_endpoint',
  severity: 'error',
  idps: ['entra'],
  summary: 'the token endpoint is not an Entra token URL (…/{tenant}/oauth2/v2.0/token or …/oauth2/token)',
  check: (ctx) => {
    const e = ctx.target.entra;
    if (!e || e.shape === 'token') return undefined;
    return { message: 'token_endpoint is not an Entra token URL; assertions are POSTed to /{tenant}/oauth2/v2.0/token (v2) or /{tenant}/oauth2/token (v1)', expected: entraTokenUrl(e), actual: e.url };
  },
});

export const AUDIENCE_RULES: AssertionRule[] = [
  endpointCommonTenant,
  endpointNotTokenUrl,
  audMissing,
  audArray,
  audMultiple,
  audCommonTenant,
  audIssuerOnly,
  audVersionMismatch,
  audWrongTenant,
  audWrongCloud,
  audHostAlias,
  audTrailingSlash,
  audNotTokenEndpoint,
  audNotAccepted,
  audUnverified,
  endpointHostAlias,
];
