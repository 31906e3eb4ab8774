// An identity provider that misbehaves on purpose, one behaviour per path: it stalls after the
// response headers, drips one byte a second, never answers, sends an endless body, or answers with
// whatever JSON the test scripts. Tests point token endpoints, discovery documents and JWKS URIs at
// its paths and assert what the broker's caller sees.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';
import { loopbackServerCertificate } from './fake-server-parts.ts';

export type Behaviour =
  /** 200 and the headers, then the start of a JSON body, then nothing (the socket stays open). */
  | { kind: 'stall-after-headers' }
  /** 200, then one byte a second for as long as the client listens. */
  | { kind: 'drip' }
  /** Reads the request and never answers. */
  | { kind: 'silent' }
  /** 200, then a JSON-looking body of `bytes` bytes, as fast as the client reads. */
  | { kind: 'huge'; bytes: number }
  /** A scripted answer; `body` may depend on the request's form fields. */
  | { kind: 'json'; status?: number; headers?: Record<string, string>; body: unknown | ((form: URLSearchParams, req: IncomingMessage) => unknown) };

export interface SeenRequest {
  method: string;
  path: string;
  form: URLSearchParams;
}

export interface MisbehavingIdp {
  /** http://127.0.0.1:<port>, or https:// with `tls` */
  url: string;
  /** With `tls`: the PEM of the CA that issued the server certificate (for NODE_EXTRA_CA_CERTS). */
  caPem?: string;
  /** Serves `behaviour` at `path`; returns the full URL. */
  route(path: string, behaviour: Behaviour): string;
  requests: SeenRequest[];
  /** Requests seen at one path. */
  count(path: string): number;
  /** Body bytes written at one path so far (huge bodies stop when the client goes away). */
  bytesSent(path: string): number;
  close(): Promise<void>;
}

/** A throw-away CA and a server certificate for 127.0.0.1 it issued. */
async function serverCertificate(): Promise<{ caPem: string; certPem: string; keyPem: string }> {
  const ca = await createThrowawayCertificate({ isCa: true, commonName: 'misbehaving-idp test CA' });
  return { caPem: ca.certPem, ...(await loopbackServerCertificate(ca)) };
}

export async function startMisbehavingIdp(options: { tls?: boolean } = {}): Promise<MisbehavingIdp> {
  const routes = new Map<string, Behaviour>();
  const requests: SeenRequest[] = [];
  const sent = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();

  const answer = (behaviour: Behaviour, path: string, form: URLSearchParams, req: IncomingMessage, res: ServerResponse) => {
    const count = (n: number) => sent.set(path, (sent.get(path) ?? 0) + n);
    switch (behaviour.kind) {
      case 'stall-after-headers':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"access_token":"');
        return;
      case 'drip': {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{');
        const timer = setInterval(() => {
          if (res.destroyed) {
            clearInterval(timer);
            timers.delete(timer);
            return;
          }
          res.write(' ');
          count(1);
        }, 1000);
        timers.add(timer);
        return;
      }
      case 'silent':
        return;
      case 'huge': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 'a');
        res.write('{"access_token":"');
        const pump = () => {
          while (!res.destroyed && (sent.get(path) ?? 0) < behaviour.bytes) {
            count(chunk.length);
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          if (!res.destroyed) res.end('"}');
        };
        pump();
        return;
      }
      case 'json': {
        const body = typeof behaviour.body === 'function' ? (behaviour.body as (f: URLSearchParams, r: IncomingMessage) => unknown)(form, req) : behaviour.body;
        res.writeHead(behaviour.status ?? 200, { 'content-type': 'application/json', ...behaviour.headers });
        res.end(JSON.stringify(body));
        return;
      }
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://idp').pathname;
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const form = new URLSearchParams(req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') ? raw : '');
      requests.push({ method: req.method ?? '', path, form });
      const behaviour = routes.get(path);
      if (!behaviour) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not_found', path }));
        return;
      }
      answer(behaviour, path, form, req, res);
    });
  };
  const tls = options.tls ? await serverCertificate() : undefined;
  const server: Server = tls ? createTlsServer({ cert: tls.certPem, key: tls.keyPem }, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    caPem: tls?.caPem,
    route(path, behaviour) {
      routes.set(path, behaviour);
      return `${url}${path}`;
    },
    requests,
    count: (path) => requests.filter((r) => r.path === path).length,
    bytesSent: (path) => sent.get(path) ?? 0,
    close: async () => {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
