// A broker as its own process (`token-broker serve`), as replicas run in production.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './redis-server.ts';

export interface BrokerProcess {
  url: string;
  child: ChildProcess;
  /** Log lines (JSON) written so far. */
  lines: string[];
  token(apiKey: string, body: unknown): Promise<Response>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startBrokerProcess(config: unknown, dir: string, name: string, env: Record<string, string> = {}): Promise<BrokerProcess> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(config));
  // A port the test chose (env PORT: a redirect URI registered before the broker starts), else a free one.
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', file], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', REDIS_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  const url = `http://127.0.0.1:${port}`;
  // Ready when /livez answers, whatever the log level.
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${name} exited with ${code}:\n${stderr}`))));
  exited.catch(() => undefined);
  // Only stops a start that hangs: on a loaded machine several brokers compiling at once take a while.
  const deadline = Date.now() + 180_000;
  for (;;) {
    const up = await Promise.race([fetch(`${url}/livez`).then((r) => r.ok, () => false), exited]);
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not start:\n${stderr}\n${lines.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    lines,
    token: (apiKey, body) =>
      fetch(`${url}/v1/token`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    stop: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      }),
  };
}
