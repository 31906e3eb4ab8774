// The protocol between bench/run.ts and its server children, both sides in one place.
//
// Each server runs in its own process (`node --import tsx bench/<server>.ts`) so that the load
// generator never shares an event loop with the server it measures. A child announces itself with
// one JSON line on stdout, `{"port":1234}`; everything else it says goes to stderr. The parent keeps
// the child's stdin open as a lifeline: when the parent dies for any reason, even SIGKILL, the pipe
// closes and the child exits, so no server outlives a failed run.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;

// ---------------------------------------------------------------- child side

/**
 * Called by a server child once it listens: prints the port for the parent and arranges for
 * `cleanup` to run when the parent stops it (SIGTERM) or disappears (stdin closes).
 */
export function announceReady(port: number, cleanup: () => Promise<void>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    cleanup().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('close', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

// ---------------------------------------------------------------- parent side

export interface ServerProcess {
  name: string;
  url: string;
  pid: number;
  /** SIGTERM, then SIGKILL if the child has not exited within a few seconds. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Last-resort cleanup for paths that skip `stop()`: an uncaught error, process.exit, Ctrl-C. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping server children\n`);
      process.exit(130); // runs the 'exit' hook above
    });
  }
}

/** Starts `bench/<file>` in a child process and resolves once it has announced its port. */
export async function startServerProcess(name: string, file: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  installExitHook();
  const script = fileURLToPath(new URL(file, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not announce its port within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout! });
    const onExit = (code: number | null, signal: string | null) => fail(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})`));
    function fail(err: Error) {
      clearTimeout(timer);
      lines.close();
      child.kill('SIGKILL');
      reject(err);
    }
    child.once('exit', onExit);
    lines.on('line', (line) => {
      try {
        const { port } = JSON.parse(line) as { port?: unknown };
        if (typeof port !== 'number') return;
        clearTimeout(timer);
        child.off('exit', onExit);
        // Keep draining stdout so a chatty child can never block on a full pipe.
        lines.removeAllListeners('line');
        lines.on('line', (l) => process.stderr.write(`[${name}] ${l}\n`));
        resolve(port);
      } catch {
        process.stderr.write(`[${name}] ${line}\n`);
      }
    });
  });

  return {
    name,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
