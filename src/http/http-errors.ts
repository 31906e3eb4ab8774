// Errors of the HTTP transport rather than of the domain: a body the broker will not read, a route or
// method it does not serve, a port it cannot open. They share the problem codes of the contract
// (invalid_request) but carry the status of their own (RFC 9110 §15.5).
import { InvalidRequest } from '../kernel/errors.ts';

/** Request-level failures a request body cannot be accepted as it is (statuses of their own, code invalid_request). */
export class RequestTooLarge extends InvalidRequest {
  override readonly status = 413;
  override readonly title = 'Request body too large';
}

export class UnsupportedMediaType extends InvalidRequest {
  override readonly status = 415;
  override readonly title = 'Unsupported media type';
}

/** No such route. The contract has no code of its own for it: it is a request the broker cannot serve. */
export class NotFound extends InvalidRequest {
  override readonly status = 404;
  override readonly title = 'Not found';
}

export class MethodNotAllowed extends InvalidRequest {
  override readonly status = 405;
  override readonly title = 'Method not allowed';
  constructor(
    message: string,
    readonly allow: string[],
  ) {
    super(message);
  }
}

/** A port that cannot be opened at startup (in use, an address this host does not have, privileged). Startup only. */
export class ListenError extends Error {
  constructor(
    /** host:port, e.g. 127.0.0.1:8080 or [::1]:8080. */
    readonly address: string,
    /** e.g. 'address already in use (EADDRINUSE)'. */
    readonly reason: string,
    /** What the port is for when it is not the API port, e.g. 'for metrics (metrics.port)'. */
    purpose?: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot listen on ${address}${purpose ? ` ${purpose}` : ''}: ${reason}`, options);
  }
}
