import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { InvalidRequest } from '../../kernel/errors.ts';
import { RequestTooLarge, UnsupportedMediaType } from '../http-errors.ts';

const PLAIN_JSON = /^application\/json\s*(;\s*charset\s*=\s*"?utf-?8"?\s*)?$/i;

/**
 * Strict JSON bodies (objects and arrays only), UTF-8 (RFC 8259 §8.1), size-limited.
 * The common request (plain application/json, a Content-Length within the limit, no content
 * encoding) is read here directly; anything else (chunked, compressed, other types) goes through
 * express.json, so the edge cases keep its tested behaviour.
 */
export function jsonBody(limitBytes: number): RequestHandler[] {
  const general = express.json({ limit: limitBytes, strict: true, type: 'application/json' });
  const requireUtf8: RequestHandler = (req: Request, _res: Response, next: NextFunction) => {
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.get('content-type') ?? '')?.[1];
    if (charset && !/^utf-?8$/i.test(charset)) throw new UnsupportedMediaType('send JSON as UTF-8 (RFC 8259 §8.1)');
    next();
  };
  const fast: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    const type = req.headers['content-type'];
    const length = req.headers['content-length'];
    const encoding = req.headers['content-encoding'];
    if (!type || !PLAIN_JSON.test(type) || length === undefined || (encoding !== undefined && encoding !== 'identity') || req.headers['transfer-encoding']) {
      return requireUtf8(req, res, (err?: unknown) => (err ? next(err) : general(req, res, next)));
    }
    const expected = Number(length);
    if (!Number.isInteger(expected) || expected < 0) return next(new InvalidRequest('the request body could not be read'));
    if (expected > limitBytes) return next(new RequestTooLarge('the request body is larger than the limit'));
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received <= limitBytes) chunks.push(chunk);
    });
    req.on('error', () => next(new InvalidRequest('the request body could not be read')));
    req.on('end', () => {
      if (received !== expected) return next(new InvalidRequest('the request body could not be read'));
      const text = Buffer.concat(chunks).toString('utf8');
      // As express.json: an empty body is an empty object; strict mode allows objects and arrays only.
      const first = text.trimStart()[0];
      if (first === undefined) {
        req.body = {};
        return next();
      }
      try {
        if (first !== '{' && first !== '[') throw new SyntaxError('not an object or array');
        req.body = JSON.parse(text);
      } catch {
        return next(new InvalidRequest('the request body is not valid JSON'));
      }
      next();
    });
  };
  return [fast];
}
