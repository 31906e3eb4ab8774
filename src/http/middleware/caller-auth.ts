import type { NextFunction, Request, Response } from 'express';
import type { Caller, CallerDirectory } from '../../core/caller-directory.ts';
import { Forbidden, Unauthenticated } from '../../core/errors.ts';

// RFC 9110 §11.1: the scheme name is case-insensitive; the credential is visible ASCII only.
const BEARER = /^Bearer ([\x21-\x7e]{1,4096})$/i;

/** Authenticates the caller from `Authorization: Bearer <api key>`; the same 401 for every failure. */
export function authenticateCaller(callers: CallerDirectory) {
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization');
    const match = header ? BEARER.exec(header) : null;
    const caller = match ? callers.authenticateApiKey(match[1]!) : undefined;
    if (!caller) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="token-broker"');
      throw new Unauthenticated();
    }
    res.locals.caller = caller;
    next();
  };
}

export function currentCaller(res: Response): Caller {
  return res.locals.caller as Caller;
}

export function requireDiagnostics() {
  return (_req: Request, res: Response, next: NextFunction) => {
    if (!currentCaller(res).diagnostics) throw new Forbidden('this caller may not use diagnostics (set diagnostics: true on the caller)');
    next();
  };
}
