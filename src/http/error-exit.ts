// The one error exit of the HTTP app: every failure on every route ends here, is logged once with
// its cause, and is answered in the wire shape of the route's family (route-table.ts ERROR_SHAPE).
// Handlers throw; none catches to answer by itself.
import type { ErrorRequestHandler, Response } from 'express';
import type { BrokerError } from '../kernel/errors.ts';
import type { Logger } from '../observability/logger.ts';
import { sendErrorPage, sendManagedIdentityError, sendProblem, toBrokerError } from './problem.ts';
import { ERROR_SHAPE, routeFamilyOf } from './route-table.ts';

/**
 * The cause, for the log only (a 5xx never exposes it to the caller). Built field by field, not
 * handed to pino's `err` serializer, which would also copy every enumerable property of the error.
 */
function describeCause(cause: unknown) {
  return cause instanceof Error ? { type: cause.name, message: cause.message, stack: cause.stack } : cause === undefined ? undefined : { type: typeof cause };
}

/** Log once, here at the edge: warn for the IdP's refusals and outages, error for our own failures. */
function logFailure(logger: Logger, res: Response, error: BrokerError): void {
  const fields = { requestId: res.locals.requestId as string, code: error.code, status: error.status };
  if (error.code === 'idp_rejected' || error.code === 'idp_unavailable') {
    logger.warn({ ...fields, message: error.message }, 'identity provider failure');
  } else if (error.status >= 500) {
    logger.error({ ...fields, cause: describeCause(error.cause), message: error.message }, 'request failed');
  }
}

export function errorExit(logger: Logger): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    const error = toBrokerError(err);
    logFailure(logger, res, error);
    // A failure after the answer started (a streamed body) cannot be answered: cut the connection.
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const family = routeFamilyOf(res);
    if (family && ERROR_SHAPE[family] === 'managed-identity') sendManagedIdentityError(res, error);
    else if (family && ERROR_SHAPE[family] === 'page') sendErrorPage(res, error);
    else sendProblem(res, error, res.locals.requestId as string);
  };
}
