// Explains a pasted IdP error: Entra JSON (error_codes) or text with AADSTS numbers, Keycloak's
// error strings, Okta's errorCode/errorSummary bodies, Auth0 error/error_description bodies, Power BI
// answers, and plain RFC 6749 §5.2 errors, also without their codes: an Entra message without its
// AADSTS prefix, or a bare invalid_client. Only parses: nothing in the text is followed or fetched.
import { scrubSecrets } from '../idps/scrub-secrets.ts';
import type { IdpProfileName } from './assertion-rule.ts';
import { rulesLeadingTo } from './assertion-rules.ts';
import {
  TEXT_PATTERN_CATALOGUE,
  aadstsCodesByMessage,
  containsMessage,
  explainAadsts,
  explainOAuthError,
  normalizeMessage,
  oauthErrorCodeIn,
  type IdpErrorExplanation,
  type IdpFamily,
} from '../idps/idp-error-catalogue.ts';

export type ErrorSource = 'entra' | 'keycloak' | 'okta' | 'auth0' | 'powerbi' | 'oauth';

export interface ErrorExplanation {
  /** What to quote: AADSTS700023, a Keycloak string, E0000011, invalid_client … */
  code: string;
  source: ErrorSource;
  title: string;
  cause: string;
  fix: string;
  claim?: string;
  /** Assertion lint rules whose breach leads to this error. */
  rules?: string[];
  /** 'message' when recognised by the IdP's wording alone (the text carried no code). */
  matched_by?: 'message';
  /** For a plain OAuth error: what it usually means at each IdP family. */
  per_idp?: { idp: IdpFamily; cause: string; fix: string }[];
}

export interface ParsedIdpError {
  error?: string;
  error_description?: string;
  error_codes?: number[];
  trace_id?: string;
  correlation_id?: string;
}

export interface ErrorExplainResult {
  recognized: boolean;
  source?: ErrorSource;
  parsed: ParsedIdpError;
  explanations: ErrorExplanation[];
  /** The first explanation's fix. */
  fix?: string;
}

const MAX_ECHO = 2000;
/** AADSTS70002 only wraps the real reason; it goes last. */
const WRAPPER_CODES = new Set([70002]);

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? scrubSecrets(v.trim()).slice(0, MAX_ECHO) : undefined;
}

/** The first JSON object in the text (the whole text, or a body inside a log line). */
function jsonObject(text: string): Record<string, unknown> | undefined {
  const candidates = [text.trim()];
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start >= 0 && end > start) candidates.push(text.slice(start, end + 1));
  for (const c of candidates) {
    try {
      const value = JSON.parse(c) as unknown;
      if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
    } catch {
      // not JSON: fall through to text matching
    }
  }
  return undefined;
}

function parse(text: string): ParsedIdpError & { errorCode?: string } {
  const body = jsonObject(text) ?? {};
  // Power BI / Graph nest the error: {"error":{"code":"PowerBINotAuthorizedException","message":…}}.
  const nested = body.error && typeof body.error === 'object' ? (body.error as Record<string, unknown>) : undefined;
  const codes = Array.isArray(body.error_codes) ? body.error_codes.filter((c): c is number => Number.isInteger(c)) : [];
  return {
    error: str(nested ? nested.code : body.error) ?? str(body.errorCode),
    error_description: str(body.error_description) ?? str(body.errorSummary) ?? str(nested?.message) ?? str(body.message),
    error_codes: codes.length > 0 ? codes : undefined,
    trace_id: str(body.trace_id) ?? str(body.errorId),
    correlation_id: str(body.correlation_id),
    errorCode: str(body.errorCode),
  };
}

function withRules(e: Omit<ErrorExplanation, 'rules'>, idp?: IdpProfileName): ErrorExplanation {
  const rules = rulesLeadingTo(e.code, idp);
  return rules.length > 0 ? { ...e, rules } : e;
}

function fromCatalogue(code: string, source: ErrorSource, x: IdpErrorExplanation, idp?: IdpProfileName): ErrorExplanation {
  return withRules({ code, source, title: x.title, cause: x.cause, fix: x.fix, claim: x.claim }, idp);
}

/** Explains an error already parsed (the probe's IdP answer) or pasted as text. */
export function explainIdpError(input: string | ParsedIdpError): ErrorExplainResult {
  const text = typeof input === 'string' ? input : [input.error, input.error_description].filter(Boolean).join(' ');
  const parsed: ParsedIdpError = typeof input === 'string' ? parse(input) : { ...input, error_description: input.error_description ? str(input.error_description) : undefined };
  const explanations: ErrorExplanation[] = [];

  // Entra: error_codes first, then AADSTS numbers anywhere in the text, wrappers last. Entra's
  // messages count only when the text has no code at all (Microsoft: branch on error_codes, not on
  // the description, https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
  const normalized = normalizeMessage(text);
  const codes = [...(parsed.error_codes ?? []), ...[...text.matchAll(/AADSTS(\d{5,8})/g)].map((m) => Number(m[1]))];
  const byMessage = codes.length === 0 ? aadstsCodesByMessage(normalized) : [];
  const unique = [...new Set([...codes, ...byMessage])].sort((a, b) => Number(WRAPPER_CODES.has(a)) - Number(WRAPPER_CODES.has(b)));
  for (const code of unique) {
    const known = explainAadsts(code);
    explanations.push(
      known
        ? { ...fromCatalogue(`AADSTS${code}`, 'entra', known, 'entra'), ...(byMessage.includes(code) ? { matched_by: 'message' as const } : {}) }
        : {
            code: `AADSTS${code}`,
            source: 'entra',
            title: 'not in the broker\'s catalogue',
            cause: 'an Entra error code the broker does not know.',
            fix: `look the code up in Microsoft's error reference (learn.microsoft.com, "AADSTS error codes") or https://login.microsoftonline.com/error?code=${code}`,
          },
    );
  }
  // Codes found by their message were not in the text: they are not reported as parsed.
  if (parsed.error_codes === undefined && codes.length > 0) parsed.error_codes = unique;

  for (const entry of TEXT_PATTERN_CATALOGUE) {
    if (!entry.match?.test(text) && !containsMessage(normalized, entry.messages)) continue;
    const idp: IdpProfileName | undefined = entry.idp === 'powerbi' ? undefined : entry.idp;
    explanations.push(fromCatalogue(entry.code, entry.idp, entry, idp));
  }

  if (explanations.length === 0) {
    // A JSON error field, else a bare code in the text ("invalid_client", "error=invalid_grant").
    const error = [parsed.error, oauthErrorCodeIn(text)].find((e) => e !== undefined && explainOAuthError(e) !== undefined);
    const oauth = error ? explainOAuthError(error) : undefined;
    if (error && oauth) {
      parsed.error ??= error;
      const perIdp = Object.entries(oauth.perIdp ?? {}).map(([idp, note]) => ({ idp: idp as IdpFamily, ...note }));
      // No rule list here: every rule of every OIDC IdP ends in invalid_client, which says nothing.
      explanations.push({
        code: error,
        source: 'oauth',
        title: oauth.title,
        cause: oauth.cause,
        fix: oauth.fix,
        claim: oauth.claim,
        ...(perIdp.length > 0 ? { per_idp: perIdp } : {}),
      });
    }
  }
  const { errorCode: _errorCode, ...rest } = parsed as ParsedIdpError & { errorCode?: string };
  const clean = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as ParsedIdpError;
  return {
    recognized: explanations.length > 0,
    source: explanations[0]?.source,
    parsed: clean,
    explanations,
    fix: explanations[0]?.fix,
  };
}
