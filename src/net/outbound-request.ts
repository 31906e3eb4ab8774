// The one way the broker calls out over HTTP: token endpoints (form POST and msal-node's network
// module), OIDC discovery and caller JWKS. Every call has one deadline for all of it (connect,
// headers, body) and reads at most a bounded number of bytes, whatever the peer does: stall after
// the headers, drip a byte a second, never answer, or send an endless body
// (docs/operations.md, "Misbehaving identity providers").
//
// The deadline is a plain timer that destroys the request. AbortSignal.timeout is not enough: its
// timer does not keep the signal alive, so once the response headers have arrived and nothing else
// references the signal, a garbage collection can take the signal and the deadline with it, and
// the body read waits forever.
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface OutboundRequestOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** The whole call, from connecting to the last byte of the body. */
  timeoutMs: number;
  /** Bodies longer than this are refused while they are read. */
  maxBodyBytes: number;
  /** Ends the call early (the caller gave up). */
  signal?: AbortSignal;
  /** PEM CA for https (a private issuer, e.g. the Kubernetes API server). */
  ca?: Buffer;
}

export interface OutboundResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The body as UTF-8 text. */
  body: string;
}

export type OutboundFailureReason = 'timeout' | 'too_large' | 'network' | 'aborted';

/** A call that did not produce a whole response. The message names the origin, never the query or a body. */
export class OutboundRequestError extends Error {
  constructor(
    readonly reason: OutboundFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'OutboundRequestError';
  }
}

function kib(bytes: number): string {
  return `${Math.round(bytes / 1024)} KiB`;
}

function networkMessage(err: unknown): string {
  return `failed (network error: ${(err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? 'unknown'})`;
}

function flatHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

/**
 * One HTTP exchange. Resolves with any status (3xx included: redirects are not followed); rejects
 * only with OutboundRequestError.
 */
export function outboundRequest(url: string, options: OutboundRequestOptions): Promise<OutboundResponse> {
  return new Promise((resolve, reject) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch (err) {
      reject(new OutboundRequestError('network', 'request to an invalid URL', { cause: err }));
      return;
    }
    const origin = target.origin;
    const send = target.protocol === 'https:' ? httpsRequest : target.protocol === 'http:' ? httpRequest : undefined;
    if (!send) {
      reject(new OutboundRequestError('network', `request to ${origin}: unsupported protocol ${target.protocol}`));
      return;
    }
    if (options.signal?.aborted) {
      reject(new OutboundRequestError('aborted', `request to ${origin} was aborted`));
      return;
    }

    let settled = false;
    let req: ClientRequest | undefined;
    // A strong reference for the whole call: the timer list holds it until finish() clears it.
    const deadline = setTimeout(() => fail('timeout', `timed out after ${options.timeoutMs} ms`), options.timeoutMs);
    const finish = (outcome: { error: OutboundRequestError } | { response: OutboundResponse }) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      options.signal?.removeEventListener('abort', onAbort);
      if ('error' in outcome) {
        req?.destroy();
        reject(outcome.error);
      } else {
        resolve(outcome.response);
      }
    };
    const fail = (reason: OutboundFailureReason, message: string, cause?: unknown) => finish({ error: new OutboundRequestError(reason, `request to ${origin} ${message}`, { cause }) });
    const onAbort = () => fail('aborted', 'was aborted');

    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      req = send(target, { method: options.method ?? 'GET', headers, ca: options.ca }, (res) => {
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > options.maxBodyBytes) {
          fail('too_large', `answered more than ${kib(options.maxBodyBytes)}; refused (Content-Length ${declared})`);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBodyBytes) fail('too_large', `answered more than ${kib(options.maxBodyBytes)}; refused`);
          else chunks.push(chunk);
        });
        res.on('end', () => finish({ response: { status: res.statusCode ?? 0, headers: flatHeaders(res.headers), body: Buffer.concat(chunks).toString('utf8') } }));
        res.on('error', (err) => fail('network', networkMessage(err), err));
        res.on('close', () => {
          if (!res.complete) fail('network', 'failed (network error: the connection closed before the body was complete)');
        });
      });
    } catch (err) {
      // Invalid header values throw synchronously.
      fail('network', networkMessage(err), err);
      return;
    }
    req.on('error', (err) => fail('network', networkMessage(err), err));
    req.end(options.body);
  });
}
