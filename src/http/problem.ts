// The only writer of error responses: RFC 9457 application/problem+json with the contract's
// fields (docs/design.md §5.1). Detail is shown only for errors that are safe to expose.
import type { Response } from 'express';
import { BrokerError, IdpRejected, IdpUnavailable, InternalError, InvalidFields, InvalidRequest, RateLimited, SignInFailed, SignInRequired, type BrokerErrorCode } from '../kernel/errors.ts';
import { MethodNotAllowed, RequestTooLarge, UnsupportedMediaType } from './http-errors.ts';
import { renderSignInPage } from './sign-in-page.ts';

/** Errors thrown by body-parser carry `type` and `status`; everything else unknown is internal. */
export function toBrokerError(err: unknown): BrokerError {
  if (err instanceof BrokerError) return err;
  const e = err as { type?: string; status?: number; expose?: boolean };
  switch (e?.type) {
    case 'entity.too.large':
      return new RequestTooLarge('the request body is larger than the limit');
    case 'entity.parse.failed':
      return new InvalidRequest('the request body is not valid JSON');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new UnsupportedMediaType('unsupported body encoding or charset: send UTF-8 JSON');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new InvalidRequest('the request body could not be read');
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.expose) {
    return new InvalidRequest('the request could not be processed');
  }
  return new InternalError('internal error', { cause: err });
}

export function problemType(code: BrokerErrorCode): string {
  return `urn:token-broker:problem:${code}`;
}

export function sendProblem(res: Response, err: BrokerError, requestId: string): void {
  if (res.headersSent) return;
  const body: Record<string, unknown> = {
    type: problemType(err.code),
    title: err.title,
    status: err.status,
    code: err.code,
    request_id: requestId,
  };
  if (err.expose) body.detail = err.message;
  if (err instanceof InvalidFields) body.errors = err.fields;
  if (err instanceof IdpRejected) {
    body.idp_error = err.idpError;
    body.hint = err.hint;
    body.idp = {
      error: err.idp.error,
      error_description: err.idp.errorDescription,
      error_codes: err.idp.errorCodes,
      trace_id: err.idp.traceId,
      correlation_id: err.idp.correlationId,
      http_status: err.idp.httpStatus,
    };
  }
  if (err instanceof SignInRequired) {
    body.credential = err.credentialId;
    body.hint = err.hint;
  }
  if (err instanceof MethodNotAllowed) res.setHeader('Allow', err.allow.join(', '));
  if (err instanceof IdpUnavailable || err instanceof RateLimited) {
    res.setHeader('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterSeconds))));
  }
  res.status(err.status).type('application/problem+json').setHeader('Cache-Control', 'no-store');
  res.send(JSON.stringify(body));
}

/** A failure on a page a person's browser opened (the sign-in link and redirect): an HTML page that explains it. */
export function sendErrorPage(res: Response, err: BrokerError): void {
  if (res.headersSent) return;
  const hint = err instanceof SignInFailed ? err.hint : err.status >= 500 ? 'try again in a moment; if it persists, the broker\'s log has the cause (request id above)' : undefined;
  const lines = [err.expose ? err.message : err.title, `Request id: ${res.locals.requestId as string}`];
  if (err instanceof MethodNotAllowed) res.setHeader('Allow', err.allow.join(', '));
  res.status(err.status).type('text/html').setHeader('Cache-Control', 'no-store');
  res.send(renderSignInPage({ title: err instanceof SignInFailed ? err.title : `Sign-in: ${err.title}`, lines, hint }));
}

/** OAuth-style error codes the Azure SDKs expect from a managed-identity endpoint. */
const MANAGED_IDENTITY_ERRORS: Record<BrokerErrorCode, string> = {
  invalid_request: 'invalid_request',
  unauthenticated: 'unauthorized_client',
  forbidden: 'access_denied',
  unknown_credential: 'invalid_request',
  rate_limited: 'temporarily_unavailable',
  idp_rejected: 'invalid_client',
  idp_unavailable: 'temporarily_unavailable',
  sign_in_required: 'invalid_grant',
  internal: 'server_error',
};

/**
 * The managed-identity endpoints answer errors as `{ error, error_description }` (what msal-node and
 * msal-python parse), with the same statuses as the rest of the API.
 */
export function sendManagedIdentityError(res: Response, err: BrokerError): void {
  if (res.headersSent) return;
  if (err instanceof MethodNotAllowed) res.setHeader('Allow', err.allow.join(', '));
  if (err instanceof IdpUnavailable || err instanceof RateLimited) {
    res.setHeader('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterSeconds))));
  }
  const description = err.expose ? err.message : err.title;
  res.status(err.status).setHeader('Cache-Control', 'no-store');
  res.json({
    error: MANAGED_IDENTITY_ERRORS[err.code],
    error_description: err instanceof IdpRejected ? `${description} (${err.idpError}: ${err.hint})` : err instanceof SignInRequired ? `${description} (${err.hint})` : description,
    request_id: res.locals.requestId as string,
  });
}
