// An HTTP server that can be drained without resetting keep-alive callers (docs/operations.md,
// "Signals and shutdown"). From beginDrain() on, every response carries `Connection: close`, so a
// connection in use ends cleanly after its current response and its caller's next request opens a
// new one (RFC 9112 §9.6); a connection is closed by the broker only once it has sat idle for
// IDLE_CLOSE_MS, because a caller may be writing its next request onto a connection that has only
// just become idle, and closing under it is what resets that request (RFC 9112 §9.3.1).
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { isIPv6, type AddressInfo, type Socket } from 'node:net';
import { getSystemErrorMap } from 'node:util';
import { ListenError } from './http-errors.ts';

/** How long a connection must have been idle before a draining server closes it. */
export const IDLE_CLOSE_MS = 1000;
/** How often a draining server looks for connections idle that long. */
const IDLE_SWEEP_MS = 100;

export interface HttpListenerOptions {
  /** Node's requestTimeout: time allowed to receive a whole request. */
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** What the port is for, in the error when it cannot be opened, e.g. 'for metrics (metrics.port)'. */
  purpose?: string;
}

interface ConnectionState {
  /** Requests received on it whose responses have not finished. */
  active: number;
  /** When it last became idle (performance.now()), and how many bytes it had read then. */
  idleSince: number;
  bytesReadWhenIdle: number;
}

export class HttpListener {
  readonly server: Server;
  private readonly connections = new Map<Socket, ConnectionState>();
  /** Responses started before the drain: the ones whose headers are not sent yet still get Connection: close. */
  private readonly unsent = new Set<ServerResponse>();
  private draining = false;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    handler: RequestListener,
    private readonly options: HttpListenerOptions = {},
  ) {
    this.server = createServer((req, res) => {
      this.track(req, res);
      handler(req, res);
    });
    if (options.requestTimeoutMs !== undefined) this.server.requestTimeout = options.requestTimeoutMs;
    if (options.headersTimeoutMs !== undefined) this.server.headersTimeout = options.headersTimeoutMs;
    if (options.keepAliveTimeoutMs !== undefined) this.server.keepAliveTimeout = options.keepAliveTimeoutMs;
    this.server.on('connection', (socket: Socket) => {
      this.connections.set(socket, { active: 0, idleSince: performance.now(), bytesReadWhenIdle: socket.bytesRead });
      socket.once('close', () => this.connections.delete(socket));
    });
  }

  /** Binds the port; rejects with a ListenError naming host, port and reason (busy, no such address, privileged). */
  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const fail = (err: NodeJS.ErrnoException) => reject(new ListenError(describeAddress(host, port), reasonFor(err), this.options.purpose, { cause: err }));
      this.server.once('error', fail);
      try {
        this.server.listen(port, host, () => {
          this.server.off('error', fail);
          resolve(this.server.address() as AddressInfo);
        });
      } catch (err) {
        // A port Node refuses before trying (out of range) is thrown, not emitted.
        fail(err as NodeJS.ErrnoException);
      }
    });
  }

  /** From now on every response says Connection: close, and connections idle for IDLE_CLOSE_MS are closed. */
  beginDrain(): void {
    if (this.draining) return;
    this.draining = true;
    for (const res of this.unsent) if (!res.headersSent) res.setHeader('Connection', 'close');
    this.unsent.clear();
    this.sweeper = setInterval(() => this.closeIdleConnections(), IDLE_SWEEP_MS);
    this.sweeper.unref();
  }

  /**
   * Drains if not draining yet, stops accepting connections, and resolves once every connection has
   * ended: in-flight requests finish, and a connection left idle is closed once idle for IDLE_CLOSE_MS.
   */
  async close(): Promise<void> {
    this.beginDrain();
    // Node's close() also closes the connections idle at this moment. Those have been idle since
    // before the drain (anything answered during it was told Connection: close), unless the drain
    // was shorter than IDLE_CLOSE_MS (server.shutdownDelaySeconds below 1).
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    clearInterval(this.sweeper);
  }

  private track(req: IncomingMessage, res: ServerResponse): void {
    const connection = this.connections.get(req.socket);
    if (connection) connection.active++;
    if (this.draining) res.setHeader('Connection', 'close');
    else this.unsent.add(res);
    // 'close' follows 'finish', and also comes when the connection is lost before the response is complete.
    res.once('close', () => {
      this.unsent.delete(res);
      if (!connection) return;
      connection.active--;
      connection.idleSince = performance.now();
      connection.bytesReadWhenIdle = req.socket.bytesRead;
    });
  }

  private closeIdleConnections(): void {
    const now = performance.now();
    for (const [socket, connection] of this.connections) {
      if (connection.active > 0 || socket.writableLength > 0) continue;
      if (socket.bytesRead !== connection.bytesReadWhenIdle) {
        // The start of a request is arriving: not idle.
        connection.bytesReadWhenIdle = socket.bytesRead;
        connection.idleSince = now;
        continue;
      }
      if (now - connection.idleSince >= IDLE_CLOSE_MS) socket.destroy();
    }
  }
}

function describeAddress(host: string, port: number): string {
  return `${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** 'address already in use (EADDRINUSE)': libuv's words for the code, or the DNS failure for a host name. */
function reasonFor(err: NodeJS.ErrnoException): string {
  const code = err.code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') return `host name not found (${code})`;
  if (code && err.errno !== undefined) {
    const known = getSystemErrorMap().get(err.errno);
    if (known && known[0] === code) return `${known[1]} (${code})`;
  }
  return code ? `${err.message} (${code})` : err.message;
}
