// Translates a token endpoint's answer into the broker's errors: RFC 6749 §5.2 error bodies plus
// Entra's error_codes / trace_id / correlation_id.
import { IdpRejected, IdpUnavailable, type IdpErrorDetails } from '../kernel/errors.ts';
import { explainAadsts, explainOAuthError } from './idp-error-catalogue.ts';
import { scrubSecrets } from './scrub-secrets.ts';

/** When the IdP gives no Retry-After on a 5xx / 429, callers are told to come back after this. */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;
const MAX_RETRY_AFTER_SECONDS = 3600;

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed), MAX_RETRY_AFTER_SECONDS);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(0, Math.ceil((date - nowMs) / 1000)), MAX_RETRY_AFTER_SECONDS);
}

/** Every string from an IdP error body is scrubbed here, where it enters: an IdP that echoes the request may quote the client assertion. */
function scrubbedString(v: unknown, known: readonly string[]): string | undefined {
  return typeof v === 'string' && v.length > 0 ? scrubSecrets(v.slice(0, 4000), known).slice(0, 2000) : undefined;
}

/** `redactions`: values of the credential's own that must not come back (an IdP that echoes a client secret). */
export function parseIdpErrorBody(body: unknown, httpStatus: number, redactions: readonly string[] = []): IdpErrorDetails {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const asString = (v: unknown) => scrubbedString(v, redactions);
  const codes = Array.isArray(b.error_codes) ? b.error_codes.filter((c): c is number => Number.isInteger(c)) : [];
  // Older Entra answers only name the code inside the description ("AADSTS700023: ...").
  if (codes.length === 0) {
    const described = /AADSTS(\d{5,7})/.exec(asString(b.error_description) ?? '');
    if (described) codes.push(Number(described[1]));
  }
  return {
    error: asString(b.error) ?? asString(b.errorCode) ?? `http_${httpStatus}`,
    errorDescription: asString(b.error_description) ?? asString(b.errorSummary) ?? asString(b.message),
    errorCodes: codes.length > 0 ? codes : undefined,
    traceId: asString(b.trace_id) ?? asString(b.errorId),
    correlationId: asString(b.correlation_id),
    httpStatus,
  };
}

/** An HTTP answer that is not a token: a 4xx becomes IdpRejected, a 5xx or 429 IdpUnavailable. */
export function translateErrorResponse(
  httpStatus: number,
  body: unknown,
  retryAfterHeader: string | null | undefined,
  idpName: string,
  redactions: readonly string[] = [],
): IdpRejected | IdpUnavailable {
  const details = parseIdpErrorBody(body, httpStatus, redactions);
  if (httpStatus >= 500 || httpStatus === 429) {
    const given = parseRetryAfter(retryAfterHeader);
    return new IdpUnavailable(`${idpName} answered HTTP ${httpStatus}${details.errorCodes ? ` (AADSTS${details.errorCodes[0]})` : ''}`, given ?? DEFAULT_RETRY_AFTER_SECONDS, {
      fromIdp: given !== undefined || httpStatus === 429,
    });
  }
  const aadsts = details.errorCodes?.[0];
  const explanation = (aadsts !== undefined ? explainAadsts(aadsts) : undefined) ?? explainOAuthError(details.error);
  const idpError = aadsts !== undefined ? `AADSTS${aadsts}` : details.error;
  const hint = explanation?.fix ?? 'the identity provider refused the request; see idp.error_description';
  const summary = explanation ? `${explanation.title}` : details.error;
  return new IdpRejected(`${idpName} refused the token request: ${idpError} (${summary})`, details, hint, idpError);
}
