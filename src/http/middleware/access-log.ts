import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../../observability/logger.ts';

/** One line per request. The path only: no query string, no headers, no body. */
export function accessLog(logger: Logger, onFinished?: (route: string, status: number) => void) {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      // Route templates only (bounded label values): unmatched paths count as 'other'.
      onFinished?.((req.route?.path as string | undefined) ?? 'other', res.statusCode);
      const fields = {
        requestId: res.locals.requestId as string,
        method: req.method,
        path: req.path.slice(0, 256),
        status: res.statusCode,
        durationMs: Math.round(durationMs * 100) / 100,
        callerId: (res.locals.caller as { id?: string } | undefined)?.id,
      };
      // 502/503 are the IdP's failures, already logged as such at warn; only our own 500 is an error.
      if (res.statusCode === 500) logger.error(fields, 'request');
      else if (res.statusCode >= 500) logger.warn(fields, 'request');
      else logger.info(fields, 'request');
    });
    next();
  };
}
