import type { NextFunction, Request, Response } from 'express';
import { looksLikeJwt, type CallerJwtVerifier } from '../../callers/caller-jwt-verifier.ts';
import type { RateLimiter } from '../../callers/rate-limiter.ts';
import type { Caller, CallerDirectory } from '../../callers/caller-directory.ts';
import { Forbidden, Unauthenticated } from '../../kernel/errors.ts';

// RFC 9110 §11.1: the scheme name is case-insensitive; the credential is visible ASCII only.
const BEARER = /^Bearer ([\x21-\x7e]{1,8192})$/i;

/**
 * Authenticates the caller from `Authorization: Bearer <api key | JWT>`, with the same 401 for every
 * failure (no oracle for unknown vs wrong), then applies the caller's rate limit.
 */
export function authenticateCaller(callers: CallerDirectory, jwtVerifier?: CallerJwtVerifier, rateLimiter?: RateLimiter) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization');
    const credential = header ? BEARER.exec(header)?.[1] : undefined;
    let caller: Caller | undefined;
    if (credential) {
      if (jwtVerifier && jwtVerifier.size > 0 && looksLikeJwt(credential)) caller = await jwtVerifier.verify(credential);
      caller ??= callers.authenticateApiKey(credential);
    }
    if (!caller) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="token-broker"');
      throw new Unauthenticated();
    }
    res.locals.caller = caller;
    rateLimiter?.take(caller);
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
