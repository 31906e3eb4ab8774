// The one place that POSTs to a token endpoint directly (Entra v1 and OIDC) and that fetches
// discovery documents: timeouts on every call, transport failures translated to IdpUnavailable.
import { IdpRejected, IdpUnavailable } from '../core/errors.ts';
import { DEFAULT_RETRY_AFTER_SECONDS, translateErrorResponse } from './oauth-error.ts';
import type { IssuedToken } from './token-provider.ts';

/** Without expires_in the broker assumes a short life rather than guess long (RFC 6749 §5.1: RECOMMENDED). */
export const FALLBACK_EXPIRES_IN_SECONDS = 300;
const MAX_BODY_BYTES = 256 * 1024;

export interface HttpCallOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  idpName: string;
}

function combinedSignal(timeoutMs: number, signal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([timeout, signal]) : timeout;
}

function transportError(err: unknown, url: string, opts: HttpCallOptions): IdpUnavailable {
  const name = (err as Error)?.name;
  const what = name === 'TimeoutError' ? `timed out after ${opts.timeoutMs} ms` : name === 'AbortError' ? 'was aborted' : 'failed (network error)';
  return new IdpUnavailable(`${opts.idpName}: request to ${new URL(url).origin} ${what}`, DEFAULT_RETRY_AFTER_SECONDS, { cause: err });
}

async function readJson(res: Response): Promise<unknown> {
  const text = await res.text();
  if (text.length > MAX_BODY_BYTES) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** NumericDate-ish fields arrive as numbers or, from Entra v1, as strings ("3599"). */
export function parseSeconds(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined;
}

/** RFC 6749 §5.1 success body → IssuedToken. */
export function parseTokenResponse(body: unknown, idpName: string): IssuedToken {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  if (typeof b.access_token !== 'string' || b.access_token.length === 0) {
    throw new IdpRejected(
      `${idpName} answered 200 without an access_token`,
      { error: 'invalid_response', errorDescription: 'no access_token in the token response', httpStatus: 200 },
      'the endpoint is probably not an OAuth token endpoint; check tokenEndpoint / issuer',
      'invalid_response',
    );
  }
  const refreshIn = parseSeconds(b.refresh_in);
  return {
    accessToken: b.access_token,
    tokenType: typeof b.token_type === 'string' && b.token_type ? b.token_type : 'Bearer',
    expiresInSeconds: parseSeconds(b.expires_in) ?? FALLBACK_EXPIRES_IN_SECONDS,
    refreshInSeconds: refreshIn && refreshIn > 0 ? refreshIn : undefined,
    scope: typeof b.scope === 'string' ? b.scope : undefined,
  };
}

export async function postTokenRequest(url: string, form: URLSearchParams, opts: HttpCallOptions): Promise<IssuedToken> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      signal: combinedSignal(opts.timeoutMs, opts.signal),
      redirect: 'error',
    });
  } catch (err) {
    throw transportError(err, url, opts);
  }
  let body: unknown;
  try {
    body = await readJson(res);
  } catch (err) {
    throw transportError(err, url, opts);
  }
  if (!res.ok) throw translateErrorResponse(res.status, body, res.headers.get('retry-after'), opts.idpName);
  return parseTokenResponse(body, opts.idpName);
}

export async function getJson(url: string, opts: HttpCallOptions): Promise<unknown> {
  let res: Response;
  let body: unknown;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, signal: combinedSignal(opts.timeoutMs, opts.signal), redirect: 'error' });
    body = await readJson(res);
  } catch (err) {
    throw transportError(err, url, opts);
  }
  if (!res.ok) {
    if (res.status >= 500 || res.status === 429) throw translateErrorResponse(res.status, body, res.headers.get('retry-after'), opts.idpName);
    throw new IdpRejected(
      `${opts.idpName}: GET ${url} answered HTTP ${res.status}`,
      { error: `http_${res.status}`, httpStatus: res.status },
      'check the issuer URL: {issuer}/.well-known/openid-configuration must serve the discovery document',
      `http_${res.status}`,
    );
  }
  if (body === undefined) {
    throw new IdpRejected(
      `${opts.idpName}: ${url} did not return JSON`,
      { error: 'invalid_discovery', httpStatus: res.status },
      'check the issuer URL',
      'invalid_discovery',
    );
  }
  return body;
}
