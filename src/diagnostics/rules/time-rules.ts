// The time window: exp, nbf, iat, lifetime, and the usual clock bugs (local time instead of UTC,
// milliseconds, strings, fractions). Sources: RFC 7519 §4.1.4-4.1.6, docs/design.md §10.2 / §10.4
// (Entra), §13.1 (Keycloak: 15 s skew, "Max expiration of signed JWT" default 60 s), and §11.2
// (AADSTS700024 causes).
import { ALL_IDPS, defineRule, memoised, type AssertionRule, type IdpProfileName, type LintContext, type RuleHit, type Severity } from '../assertion-rule.ts';

type TimeClaim = 'exp' | 'nbf' | 'iat';
const TIME_CLAIMS: readonly TimeClaim[] = ['exp', 'nbf', 'iat'];

/** Keycloak's default for the client setting "Max expiration of signed JWT" (token.endpoint.auth.signing.max.exp). */
export const KEYCLOAK_DEFAULT_MAX_EXP_SECONDS = 60;

interface TimeValue {
  kind: 'absent' | 'number' | 'numeric_string' | 'invalid';
  /** Seconds since the epoch, also for numeric strings (MSAL.NET sends exp/nbf as strings). */
  seconds?: number;
}

function readTime(value: unknown): TimeValue {
  if (value === undefined) return { kind: 'absent' };
  if (typeof value === 'number' && Number.isFinite(value)) return { kind: 'number', seconds: value };
  if (typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value)) return { kind: 'numeric_string', seconds: Number(value) };
  return { kind: 'invalid' };
}

function times(ctx: LintContext): Record<TimeClaim, TimeValue> {
  return memoised(ctx, 'times', () => ({ exp: readTime(ctx.claims.exp), nbf: readTime(ctx.claims.nbf), iat: readTime(ctx.claims.iat) }));
}

/** A readable "in 2 h 5 min" / "3 min 10 s ago" for a difference in seconds. */
export function relative(deltaSeconds: number): string {
  const abs = Math.abs(Math.round(deltaSeconds));
  const h = Math.floor(abs / 3600);
  const m = Math.floor((abs % 3600) / 60);
  const s = abs % 60;
  const text = h > 0 ? `${h} h${m ? ` ${m} min` : ''}` : m > 0 ? `${m} min${s ? ` ${s} s` : ''}` : `${s} s`;
  return deltaSeconds >= 0 ? `in ${text}` : `${text} ago`;
}

/** A NumericDate as an ISO date-time (the number itself when it is no date). */
export function iso(seconds: number): string {
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? String(seconds) : d.toISOString().replace('.000Z', 'Z');
}

/** Seconds that look like milliseconds (year > 5000). */
function isMilliseconds(seconds: number | undefined): boolean {
  return seconds !== undefined && seconds > 1e11;
}

function usable(t: TimeValue): number | undefined {
  return t.seconds !== undefined && !isMilliseconds(t.seconds) ? t.seconds : undefined;
}

const WINDOW_ERRORS: Partial<Record<IdpProfileName, string>> = {
  entra: 'AADSTS700024',
  keycloak: 'Token is not active',
  okta: 'invalid_client',
  auth0: 'invalid_client',
  generic: 'invalid_client',
};

export const expMissing = defineRule({
  id: 'exp.missing',
  claim: 'exp',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS50027', keycloak: 'Token exp claim is required', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'exp missing (required by RFC 7523 §3 and every IdP)',
  fix: 'set exp = iat + 300..600 (seconds, UTC)',
  check: (ctx) => (times(ctx).exp.kind === 'absent' ? { message: 'the assertion has no exp; every IdP requires one', expected: `${ctx.nowSeconds + 600} (now + 600 s)` } : undefined),
});

export const timeNotNumeric = defineRule({
  id: 'time.not_numeric',
  claim: 'exp',
  severity: 'warning',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS700024', generic: 'invalid_client' },
  summary: 'exp / nbf / iat is a string or another non-number',
  fix: 'send exp, nbf and iat as JSON integers (seconds since the epoch, UTC)',
  check: (ctx) => {
    const t = times(ctx);
    const strings = TIME_CLAIMS.filter((c) => t[c].kind === 'numeric_string');
    const invalid = TIME_CLAIMS.filter((c) => t[c].kind === 'invalid');
    if (invalid.length > 0) {
      return { message: `${invalid.join(', ')} ${invalid.length > 1 ? 'are' : 'is'} not a NumericDate (seconds since 1970, RFC 7519 §2)`, actual: Object.fromEntries(invalid.map((c) => [c, ctx.claims[c]])), severity: 'error' };
    }
    if (strings.length === 0) return undefined;
    // MSAL.NET sends nbf/exp as JSON strings and Entra accepts them, but a string nbf seems to be read as
    // absent ("valid from 1970-01-01" in AADSTS700024, docs/design.md §10.2); oidc-provider refuses them ("invalid exp value").
    const severity: Severity = ctx.target.idp === 'generic' ? 'error' : 'warning';
    return {
      message: `${strings.join(', ')} ${strings.length > 1 ? 'are' : 'is'} a JSON string, not a number${ctx.target.idp === 'entra' ? ' (Entra tolerates it as MSAL.NET sends it, but may ignore a string nbf)' : ''}`,
      actual: Object.fromEntries(strings.map((c) => [c, ctx.claims[c]])),
      severity,
    };
  },
});

export const timeMilliseconds = defineRule({
  id: 'time.milliseconds',
  claim: 'exp',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: WINDOW_ERRORS,
  summary: 'exp / nbf / iat in milliseconds instead of seconds',
  fix: 'divide by 1000: NumericDate is seconds (Math.floor(Date.now() / 1000))',
  check: (ctx) => {
    const t = times(ctx);
    const ms = TIME_CLAIMS.filter((c) => isMilliseconds(t[c].seconds));
    if (ms.length === 0) return undefined;
    return { message: `${ms.join(', ')} ${ms.length > 1 ? 'are' : 'is'} in milliseconds: NumericDate counts seconds (RFC 7519 §2)`, actual: Object.fromEntries(ms.map((c) => [c, ctx.claims[c]])) };
  },
});

export const timeFractional = defineRule({
  id: 'time.fractional',
  claim: 'iat',
  severity: 'info',
  idps: ALL_IDPS,
  summary: 'exp / nbf / iat with fractions of a second',
  fix: 'send whole seconds',
  check: (ctx) => {
    const t = times(ctx);
    const fractional = TIME_CLAIMS.filter((c) => t[c].seconds !== undefined && !Number.isInteger(t[c].seconds));
    if (fractional.length === 0) return undefined;
    // Allowed by RFC 7519, sent by msal-python and lcobucci/jwt (microseconds); integers are the safe choice.
    return { message: `${fractional.join(', ')} carry fractions of a second; allowed by RFC 7519 but integers are what every IdP expects`, actual: Object.fromEntries(fractional.map((c) => [c, ctx.claims[c]])) };
  },
});

/** Error beyond the IdP's clock skew, warning within it. */
function windowSeverity(ctx: LintContext, secondsOutside: number): Severity {
  return secondsOutside > ctx.profile.skewSeconds ? 'error' : 'warning';
}

function skewNote(ctx: LintContext): string {
  return `${ctx.profile.name} allows ${ctx.profile.skewDocumented ? '' : 'about '}${ctx.profile.skewSeconds} s of clock skew${ctx.profile.skewDocumented ? '' : ' (undocumented)'}`;
}

export const expExpired = defineRule({
  id: 'exp.expired',
  claim: 'exp',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: WINDOW_ERRORS,
  summary: 'exp is in the past',
  fix: 'sign a new assertion for every request from an NTP-synced UTC clock; never reuse one near or past exp',
  check: (ctx) => {
    const exp = usable(times(ctx).exp);
    if (exp === undefined || exp > ctx.nowSeconds) return undefined;
    return {
      message: `the assertion expired ${exp === ctx.nowSeconds ? 'just now' : relative(exp - ctx.nowSeconds)} (${iso(exp)}); ${skewNote(ctx)}`,
      actual: iso(exp),
      expected: `after ${iso(ctx.nowSeconds)}`,
      severity: windowSeverity(ctx, ctx.nowSeconds - exp),
    };
  },
});

export const nbfInFuture = defineRule({
  id: 'nbf.in_future',
  claim: 'nbf',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: WINDOW_ERRORS,
  summary: 'nbf is in the future',
  fix: 'set nbf = iat = now (UTC); back-date a few seconds at most',
  check: (ctx) => {
    const nbf = usable(times(ctx).nbf);
    if (nbf === undefined || nbf <= ctx.nowSeconds) return undefined;
    return {
      message: `the assertion is valid only ${relative(nbf - ctx.nowSeconds)} (${iso(nbf)}); ${skewNote(ctx)}`,
      actual: iso(nbf),
      expected: `at or before ${iso(ctx.nowSeconds)}`,
      severity: windowSeverity(ctx, nbf - ctx.nowSeconds),
    };
  },
});

export const iatInFuture = defineRule({
  id: 'iat.in_future',
  claim: 'iat',
  severity: 'warning',
  idps: ALL_IDPS,
  idpError: { keycloak: 'Token was issued in the future' },
  summary: 'iat is in the future (Keycloak refuses beyond 15 s)',
  fix: 'set iat = now from a UTC clock',
  check: (ctx) => {
    const iat = usable(times(ctx).iat);
    if (iat === undefined || iat <= ctx.nowSeconds) return undefined;
    const beyond = iat - ctx.nowSeconds > ctx.profile.skewSeconds;
    return {
      message: `iat is ${relative(iat - ctx.nowSeconds)} (${iso(iat)}): issued in the future`,
      actual: iso(iat),
      // Keycloak checks iat against its 15 s skew; Entra does not appear to check iat (docs/design.md §10.2).
      severity: ctx.target.idp === 'keycloak' && beyond ? 'error' : beyond ? 'warning' : 'info',
    };
  },
});

export const nbfAfterIat = defineRule({
  id: 'nbf.after_iat',
  claim: 'nbf',
  severity: 'warning',
  idps: ALL_IDPS,
  summary: 'nbf is later than iat: the assertion is not usable right after signing',
  fix: 'set nbf = iat (MSAL does), never later',
  check: (ctx) => {
    const { nbf, iat } = times(ctx);
    const n = usable(nbf);
    const i = usable(iat);
    if (n === undefined || i === undefined || n <= i) return undefined;
    return {
      message: `nbf is ${Math.round(n - i)} s after iat: sent right after signing, the IdP sees a not-yet-valid assertion (AADSTS700024 / "Token is not active" once beyond its skew)`,
      expected: `${i} (= iat)`,
      actual: `${n}`,
      idpError: WINDOW_ERRORS[ctx.target.idp],
    };
  },
});

export const expBeforeStart = defineRule({
  id: 'exp.before_start',
  claim: 'exp',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: WINDOW_ERRORS,
  summary: 'exp is not after nbf / iat: the assertion is never valid',
  check: (ctx) => {
    const t = times(ctx);
    const exp = usable(t.exp);
    const start = usable(t.nbf) ?? usable(t.iat);
    if (exp === undefined || start === undefined || exp > start) return undefined;
    return { message: `exp (${iso(exp)}) is not after ${usable(t.nbf) !== undefined ? 'nbf' : 'iat'} (${iso(start)}): the window is empty`, fix: 'exp = iat + 300..600' };
  },
});

export const lifetimeTooLong = defineRule({
  id: 'lifetime.too_long',
  claim: 'exp',
  severity: 'warning',
  idps: ['entra', 'okta', 'auth0', 'generic'],
  idpError: { okta: 'invalid_client', auth0: 'invalid_client' },
  summary: 'assertion lifetime over the IdP\'s limit (Auth0 5 min, Okta exp ≤ 1 h ahead) or recommendation (Entra 5–10 min)',
  check: (ctx): RuleHit | undefined => {
    const t = times(ctx);
    const exp = usable(t.exp);
    if (exp === undefined) return undefined;
    const start = usable(t.nbf) ?? usable(t.iat);
    const p = ctx.profile;
    const max = p.maxLifetimeSeconds;
    const fix = `exp = iat + ${Math.min(max, 600)} at most`;
    if (ctx.target.idp === 'okta') {
      // Okta: "exp … must be a maximum of only an hour in the future" — measured from now.
      const ahead = exp - ctx.nowSeconds;
      if (ahead > max + p.skewSeconds) return { message: `exp is ${relative(ahead)}; Okta refuses an exp more than one hour in the future`, expected: `≤ ${iso(ctx.nowSeconds + max)}`, actual: iso(exp), severity: 'error', fix };
      if (start !== undefined && exp - start > max) return { message: `the assertion lives ${Math.round(exp - start)} s; Okta accepts exp at most one hour ahead`, expected: `≤ ${max} s`, actual: `${Math.round(exp - start)} s`, fix };
      return undefined;
    }
    const from = start ?? ctx.nowSeconds;
    const life = exp - from;
    if (life <= max) return undefined;
    return {
      message: p.lifetimeEnforced
        ? `the assertion lives ${Math.round(life)} s; ${p.name} accepts at most ${max} s`
        : `the assertion lives ${Math.round(life)} s; ${p.name === 'Entra ID' ? 'Entra recommends 5–10 minutes after nbf ("keep it short"), MSAL uses 600 s' : `keep it at ${max} s or less`}`,
      expected: `≤ ${max} s`,
      actual: `${Math.round(life)} s`,
      severity: p.lifetimeEnforced ? 'error' : 'warning',
      fix,
    };
  },
});

export const keycloakIatTooOld = defineRule({
  id: 'iat.too_old',
  claim: 'iat',
  severity: 'warning',
  idps: ['keycloak'],
  idpError: { keycloak: 'Token was issued too far in the past to be used now' },
  summary: 'Keycloak: the assertion must be used within the client\'s max age of iat (default 60 s)',
  fix: 'sign the assertion right before each request, or raise "Max expiration of signed JWT" on the client',
  check: (ctx) => {
    const iat = usable(times(ctx).iat);
    if (iat === undefined || ctx.nowSeconds <= iat + KEYCLOAK_DEFAULT_MAX_EXP_SECONDS) return undefined;
    return {
      message: `iat is ${relative(iat - ctx.nowSeconds)}; Keycloak refuses an assertion used more than the client's "Max expiration of signed JWT" (default ${KEYCLOAK_DEFAULT_MAX_EXP_SECONDS} s) after iat — fine only if it is sent right after signing`,
      actual: iso(iat),
    };
  },
});

export const keycloakIatMissing = defineRule({
  id: 'iat.missing',
  claim: 'iat',
  severity: 'error',
  idps: ['keycloak'],
  idpError: { keycloak: 'Token expiration is too far in the future and iat claim not present in token' },
  summary: 'Keycloak: no iat and exp further ahead than the client\'s max age (default 60 s)',
  fix: 'send iat = now',
  check: (ctx) => {
    const t = times(ctx);
    const exp = usable(t.exp);
    if (t.iat.kind !== 'absent' || exp === undefined || exp - ctx.nowSeconds <= KEYCLOAK_DEFAULT_MAX_EXP_SECONDS) return undefined;
    return { message: `no iat, and exp is ${relative(exp - ctx.nowSeconds)}: Keycloak then allows at most ${KEYCLOAK_DEFAULT_MAX_EXP_SECONDS} s (client default)`, expected: 'iat present' };
  },
});

export const localClock = defineRule({
  id: 'time.local_clock',
  claim: 'iat',
  severity: 'warning',
  idps: ALL_IDPS,
  idpError: WINDOW_ERRORS,
  summary: 'times off from now by whole hours: local time used instead of UTC',
  fix: 'build iat/nbf/exp from the UTC epoch (Math.floor(Date.now() / 1000)), not from a local date-time',
  check: (ctx) => {
    const t = times(ctx);
    const ref = usable(t.iat) ?? usable(t.nbf);
    const exp = usable(t.exp);
    if (ref === undefined) return undefined;
    const offset = ref - ctx.nowSeconds;
    const notValidNow = (exp !== undefined && exp <= ctx.nowSeconds) || offset > ctx.profile.skewSeconds;
    // Time zones are whole or half hours from UTC; allow 3 minutes for signing and pasting.
    const halfHours = Math.round(offset / 1800);
    if (!notValidNow || halfHours === 0 || Math.abs(halfHours) > 28 || Math.abs(offset - halfHours * 1800) > 180) return undefined;
    const hours = halfHours / 2;
    return {
      // The AADSTS700024 "timestamps off by the UTC offset" case (obikuro/Sato#1).
      message: `${usable(t.iat) !== undefined ? 'iat' : 'nbf'} is ${Math.abs(hours)} h ${offset > 0 ? 'ahead of' : 'behind'} UTC now: looks like a local time (UTC${offset > 0 ? '+' : '−'}${Math.abs(hours)}) used as if it were UTC${offset < 0 ? `, or an assertion signed ${Math.abs(hours)} h ago and reused` : ''}`,
      actual: iso(ref),
      expected: iso(ctx.nowSeconds),
    };
  },
});

export const TIME_RULES: AssertionRule[] = [
  expMissing,
  timeNotNumeric,
  timeMilliseconds,
  expExpired,
  nbfInFuture,
  iatInFuture,
  localClock,
  expBeforeStart,
  nbfAfterIat,
  lifetimeTooLong,
  keycloakIatMissing,
  keycloakIatTooOld,
  timeFractional,
];
