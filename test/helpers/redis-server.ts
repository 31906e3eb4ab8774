// A redis-server of the test's own on a free loopback port, so tests can kill and restart it.
// Redis-backed tests need either REDIS_URL or redis-server on PATH; without both they are skipped
// loudly, except with REQUIRE_REDIS=1 (CI), where that is a failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** `undefined` when Redis tests can run; otherwise the reason to skip (and it throws when Redis is required). */
export function redisSkipReason(): string | undefined {
  if (redisServerAvailable()) return undefined;
  const reason = 'redis-server is not on PATH: Redis-backed tests cannot start their own server';
  if (process.env.REQUIRE_REDIS === '1') throw new Error(`${reason} (REQUIRE_REDIS=1)`);
  console.warn(`\n*** SKIPPING Redis-backed tests: ${reason}. Install redis-server (CI sets REQUIRE_REDIS=1). ***\n`);
  return reason;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface TestRedis {
  port: number;
  url: string;
  /** Stops it the hard way (SIGKILL) or cleanly. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port (empty: it keeps nothing on disk). */
  start(): Promise<void>;
  /** Runs one redis-cli command against it. */
  cli(...args: string[]): string;
  /** Freezes it (SIGSTOP): connections stay open but nothing is answered, like a hung server. */
  pause(): void;
  /** Lets a paused server run again (SIGCONT). */
  resume(): void;
}

export async function startTestRedis(options: { password?: string; extraArgs?: string[] } = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'token-broker-redis-'));
  let child: ChildProcess | undefined;
  const auth = options.password ? ['-a', options.password, '--no-auth-warning'] : [];
  const cli = (...args: string[]) => spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], { encoding: 'utf8' }).stdout.trim();
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(options.password ? ['--requirepass', options.password] : []), ...(options.extraArgs ?? [])],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      if (cli('PING') === 'PONG') return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on port ${port} did not start`);
  };
  await start();
  const url = options.password ? `redis://:${encodeURIComponent(options.password)}@127.0.0.1:${port}/0` : `redis://127.0.0.1:${port}/0`;
  return {
    port,
    url,
    cli,
    start,
    pause: () => {
      child?.kill('SIGSTOP');
    },
    resume: () => {
      child?.kill('SIGCONT');
    },
    kill: async (signal = 'SIGTERM') => {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      if (signal !== 'SIGKILL') c.kill('SIGCONT'); // a paused server acts on SIGTERM only once it runs
      c.kill(signal);
      await exited;
      if (signal === 'SIGTERM') rmSync(dir, { recursive: true, force: true });
    },
  };
}
