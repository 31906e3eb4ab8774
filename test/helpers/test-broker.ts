// Starts a real broker (the same buildBroker as production) on a loopback port with its logs captured.
import { Writable } from 'node:stream';
import { buildBroker, prepareBroker, type Broker } from '../../src/broker.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { Clock } from '../../src/kernel/clock.ts';
import { createLogger } from '../../src/observability/logger.ts';

export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void) {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
  entries(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

export interface TestBroker {
  url: string;
  broker: Broker;
  logs: LogCapture;
  /** POST /v1/token with a caller key. */
  token(apiKey: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

export async function startTestBroker(rawConfig: unknown, baseDir: string, options: { clock?: Clock; logLevel?: string; port?: number; grantWatchMs?: number } = {}): Promise<TestBroker> {
  const logs = new LogCapture();
  // pino writes synchronously to a plain Writable, so assertions see every line at once.
  const logger = createLogger({ level: options.logLevel ?? 'debug', destination: logs });
  const loaded = await prepareBroker(validateConfig(rawConfig, baseDir), { logger });
  const broker = buildBroker(loaded, { logger, clock: options.clock, grantWatchMs: options.grantWatchMs });
  const { url } = await broker.listen(options.port ?? 0, '127.0.0.1');
  return {
    url,
    broker,
    logs,
    token: (apiKey, body, headers = {}) =>
      fetch(`${url}/v1/token`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    close: () => broker.close(),
  };
}

/**
 * Polls /readyz until it says `ok` (with Redis configured: connected and usable). A broker serves
 * before that, from memory; tests about sharing through Redis wait for it first. The cap only stops
 * a hung test.
 */
export async function waitUntilReady(url: string, capMs = 60_000): Promise<void> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const res = await fetch(`${url}/readyz`).catch(() => undefined);
    const body = res ? ((await res.json()) as { status?: string }) : undefined;
    if (body?.status === 'ok') return;
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${capMs} ms: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
