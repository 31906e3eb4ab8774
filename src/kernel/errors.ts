// Every failure the broker reports is a BrokerError with a stable `code`; the HTTP status lives on the
// class. Library errors (MSAL, fetch, ioredis, YAML) are translated into these at module boundaries,
// and src/http/problem.ts is the only place that writes them to a response.

export type BrokerErrorCode =
  | 'invalid_request'
  | 'unauthenticated'
  | 'forbidden'
  | 'unknown_credential'
  | 'rate_limited'
  | 'idp_rejected'
  | 'idp_unavailable'
  | 'sign_in_required'
  | 'internal';

export abstract class BrokerError extends Error {
  abstract readonly code: BrokerErrorCode;
  abstract readonly status: number;
  abstract readonly title: string;
  /** Whether `message` may be shown to the caller. Server-side failures keep their detail in logs. */
  get expose(): boolean {
    return this.status < 500 || this.code === 'idp_rejected' || this.code === 'idp_unavailable';
  }
}

export class InvalidRequest extends BrokerError {
  readonly code = 'invalid_request';
  readonly status: number = 400;
  readonly title: string = 'Invalid request';
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export class Unauthenticated extends BrokerError {
  readonly code = 'unauthenticated';
  readonly status = 401;
  readonly title = 'Authentication required';
  // One message for a missing, unknown or wrong secret: no oracle for which it was.
  constructor(message = 'a valid caller credential is required (Authorization: Bearer <api key>)') {
    super(message);
  }
}

export class Forbidden extends BrokerError {
  readonly code = 'forbidden';
  readonly status = 403;
  readonly title = 'Not allowed';
}

export class UnknownCredential extends BrokerError {
  readonly code = 'unknown_credential';
  readonly status = 404;
  readonly title = 'Unknown credential';
  constructor(readonly credentialId: string) {
    super(`no credential with id '${credentialId}' is configured`);
  }
}

export interface FieldProblem {
  field: string;
  message: string;
}

export class InvalidFields extends InvalidRequest {
  constructor(readonly fields: FieldProblem[]) {
    super(fields.map((f) => (f.field ? `${f.field}: ${f.message}` : f.message)).join('; '), fields[0]?.field);
  }
}

export class RateLimited extends BrokerError {
  readonly code = 'rate_limited';
  readonly status = 429;
  readonly title = 'Too many requests';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** The parsed error body of an OAuth token endpoint (RFC 6749 §5.2, plus Entra's extensions). */
export interface IdpErrorDetails {
  error: string;
  errorDescription?: string;
  /** Entra's AADSTS numbers, e.g. [700023]. */
  errorCodes?: number[];
  traceId?: string;
  correlationId?: string;
  httpStatus: number;
}

/** The IdP answered and refused: not retried, reported with a hint (docs/design.md §6.3). */
export class IdpRejected extends BrokerError {
  readonly code = 'idp_rejected';
  readonly status = 502;
  readonly title = 'The identity provider refused the token request';
  constructor(
    message: string,
    readonly idp: IdpErrorDetails,
    /** A short, specific fix. */
    readonly hint: string,
    /** What the caller can quote: the AADSTS code when there is one, else the OAuth `error`. */
    readonly idpError: string,
  ) {
    super(message);
  }
}

/** The IdP could not be reached, timed out, failed (5xx) or throttled (429). */
export class IdpUnavailable extends BrokerError {
  readonly code = 'idp_unavailable';
  readonly status = 503;
  readonly title: string = 'The identity provider is unavailable';
  /** The IdP itself said when to come back (Retry-After, or a 429): no retry before then. */
  readonly retryAfterFromIdp: boolean;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    options?: { cause?: unknown; fromIdp?: boolean },
  ) {
    super(message, options);
    this.retryAfterFromIdp = options?.fromIdp ?? false;
  }
}

/**
 * The broker has nothing it may send to authenticate the client: a secret or token file that cannot
 * be read, a federated token that has expired. No request goes to the IdP; the caller is told which
 * file and why (file paths and expiry times are not secrets), and may retry after Retry-After, by
 * when a rewritten file (a kubelet refresh, a Secret update) is likely.
 */
export class CredentialUnavailable extends IdpUnavailable {
  override readonly title = 'The credential cannot authenticate right now';
  constructor(message: string, retryAfterSeconds = 10, options?: { cause?: unknown }) {
    super(message, retryAfterSeconds, options);
  }
}

/**
 * A delegated credential has no usable grant: nobody has signed in yet, or the IdP refused the
 * stored refresh token for good (invalid_grant: revoked, expired, password reset, consent
 * withdrawn). Only a person can fix it, by signing in again (docs/delegated-credentials.md).
 */
export class SignInRequired extends BrokerError {
  readonly code = 'sign_in_required';
  readonly status = 409;
  readonly title = 'A person must sign in for this credential';
  constructor(
    readonly credentialId: string,
    message: string,
    /** Who can start a new sign-in, and how. */
    readonly hint: string,
  ) {
    super(message);
  }
}

/**
 * A sign-in that cannot go on: a used or expired sign-in link, an unknown state, the IdP's refusal on
 * the redirect. Shown to the person in the browser as a page with what happened and what to do.
 */
export class SignInFailed extends InvalidRequest {
  override readonly title: string = 'The sign-in did not complete';
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** The shared cache (Redis) cannot be used right now. Never reaches a caller: the broker falls back to memory. */
export class CacheUnavailable extends BrokerError {
  readonly code = 'internal';
  readonly status = 503;
  readonly title = 'Cache unavailable';
}

export class InternalError extends BrokerError {
  readonly code = 'internal';
  readonly status = 500;
  readonly title = 'Internal error';
}

/** A configuration problem at one path of the config file. Reported at startup and by `config check`. */
export interface ConfigProblem {
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(`configuration is invalid:\n${problems.map((p) => `  ${p.path || '(root)'}: ${p.message}`).join('\n')}`);
  }
}
