// The one place that POSTs to a token endpoint directly (Entra v1 and OIDC) and that fetches
// discovery documents, through the broker's outbound request (one deadline per call, bodies read
// with a limit), and that reads a token response: lifetimes the IdP states are checked, not taken
// on trust (docs/operations.md, "Misbehaving identity providers").
import { IdpRejected, IdpUnavailable } from '../kernel/errors.ts';
import { OutboundRequestError, outboundRequest } from '../net/outbound-request.ts';
import { DEFAULT_RETRY_AFTER_SECONDS, translateErrorResponse } from './oauth-error.ts';
import { scrubSecrets } from './scrub-secrets.ts';
import type { IssuedToken } from './token-provider.ts';

/** Token responses and discovery documents are a few KiB; anything past this is refused while it is read. */
export const MAX_IDP_BODY_BYTES = 256 * 1024;

export interface HttpCallOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  idpName: string;
  /** Values scrubbed from whatever the IdP answers (ClientAuthentication.redactions). */
  redactions?: readonly string[];
}

/** The token request of one exchange: form fields, and the Authorization header of client_secret_basic. */
export interface TokenRequestBody {
  form: URLSearchParams;
  authorization?: string;
}

/** A call that produced no whole answer (timed out, too large, network) → IdpUnavailable, 503 to the caller. */
export function transportError(err: unknown, idpName: string): IdpUnavailable {
  const what = err instanceof OutboundRequestError ? err.message : 'request failed (network error)';
  return new IdpUnavailable(`${idpName}: ${what}`, DEFAULT_RETRY_AFTER_SECONDS, { cause: err });
}

/** The JSON value of a body, or undefined when it is not JSON. */
export function parseJsonBody(text: string): unknown {
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

/** `exp` of an access token that is a JWT (epoch ms), read without verifying: it only ever shortens the cached life. */
function jwtExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[0]!.startsWith('eyJ')) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function invalidResponse(idpName: string, description: string, hint: string): IdpRejected {
  return new IdpRejected(`${idpName} answered 200 with an unusable token response: ${description}`, { error: 'invalid_response', errorDescription: description, httpStatus: 200 }, hint, 'invalid_response');
}

/**
 * RFC 6749 §5.1 success body → IssuedToken. expires_in is RECOMMENDED there: when present it must
 * be a number of seconds of at least 1 (a string of digits from Entra v1); zero, negative or
 * unparsable values are the IdP's error, not a lifetime. When absent, the token's own `exp` (a JWT
 * access token) or the broker's fallback decides (see TokenService for the caps).
 */
export function parseTokenResponse(body: unknown, idpName: string): IssuedToken {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalidResponse(idpName, 'the body is not a JSON object', 'the endpoint is probably not an OAuth token endpoint; check tokenEndpoint / issuer');
  }
  const b = body as Record<string, unknown>;
  if (typeof b.access_token !== 'string' || b.access_token.length === 0) {
    throw new IdpRejected(
      `${idpName} answered 200 without an access_token`,
      { error: 'invalid_response', errorDescription: 'no access_token in the token response', httpStatus: 200 },
      'the endpoint is probably not an OAuth token endpoint; check tokenEndpoint / issuer',
      'invalid_response',
    );
  }
  let expiresInSeconds: number | undefined;
  if (b.expires_in !== undefined && b.expires_in !== null) {
    const raw = b.expires_in;
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isFinite(n) || n < 1) {
      const shown = scrubSecrets(JSON.stringify(raw)).slice(0, 40);
      throw invalidResponse(
        idpName,
        `expires_in=${shown}`,
        `the IdP sent expires_in=${shown}: a token lifetime must be a positive number of seconds (RFC 6749 §5.1); check the token lifetime configured for this client at the IdP`,
      );
    }
    expiresInSeconds = Math.floor(n);
  }
  const refreshIn = parseSeconds(b.refresh_in);
  return {
    accessToken: b.access_token,
    tokenType: typeof b.token_type === 'string' && b.token_type ? b.token_type : 'Bearer',
    expiresInSeconds,
    expiresAtMs: jwtExpiry(b.access_token),
    refreshInSeconds: refreshIn && refreshIn > 0 ? refreshIn : undefined,
    scope: typeof b.scope === 'string' ? b.scope : undefined,
  };
}

/** What a token endpoint answers a delegated grant (code, device code, refresh token): the access token and the grant's own parts. */
export interface GrantTokenResponse extends IssuedToken {
  refreshToken?: string;
  idToken?: string;
  /** refresh_expires_in (Keycloak) or refresh_token_expires_in (Entra), seconds. */
  refreshExpiresInSeconds?: number;
}

export async function postTokenRequest(url: string, request: TokenRequestBody, opts: HttpCallOptions): Promise<IssuedToken> {
  return parseTokenResponse(await postForm(url, request, opts), opts.idpName);
}

export async function postGrantRequest(url: string, request: TokenRequestBody, opts: HttpCallOptions): Promise<GrantTokenResponse> {
  const body = await postForm(url, request, opts);
  const b = body as Record<string, unknown>;
  return {
    ...parseTokenResponse(body, opts.idpName),
    refreshToken: typeof b.refresh_token === 'string' && b.refresh_token ? b.refresh_token : undefined,
    idToken: typeof b.id_token === 'string' && b.id_token ? b.id_token : undefined,
    refreshExpiresInSeconds: parseSeconds(b.refresh_expires_in) || parseSeconds(b.refresh_token_expires_in) || undefined,
  };
}

/**
 * POSTs a form to an OAuth endpoint (token, device authorization RFC 8628 §3.1, revocation RFC 7009
 * §2.1) and returns its JSON body (undefined when there is none); an error status becomes
 * IdpRejected / IdpUnavailable as for token requests.
 */
export async function postForm(url: string, request: TokenRequestBody, opts: HttpCallOptions): Promise<unknown> {
  let res;
  try {
    res = await outboundRequest(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        ...(request.authorization ? { authorization: request.authorization } : {}),
      },
      body: request.form.toString(),
      timeoutMs: opts.timeoutMs,
      maxBodyBytes: MAX_IDP_BODY_BYTES,
      signal: opts.signal,
    });
  } catch (err) {
    throw transportError(err, opts.idpName);
  }
  const body = parseJsonBody(res.body);
  if (res.status < 200 || res.status >= 300) throw translateErrorResponse(res.status, body, res.headers['retry-after'], opts.idpName, opts.redactions);
  return body;
}

export async function getJson(url: string, opts: HttpCallOptions): Promise<unknown> {
  let res;
  try {
    res = await outboundRequest(url, { headers: { accept: 'application/json' }, timeoutMs: opts.timeoutMs, maxBodyBytes: MAX_IDP_BODY_BYTES, signal: opts.signal });
  } catch (err) {
    throw transportError(err, opts.idpName);
  }
  const body = parseJsonBody(res.body);
  if (res.status < 200 || res.status >= 300) {
    if (res.status >= 500 || res.status === 429) throw translateErrorResponse(res.status, body, res.headers['retry-after'], opts.idpName);
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
