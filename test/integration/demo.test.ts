// `npm run demo` as a newcomer runs it: start it, take the curl line it prints, run that line; stop
// it as a terminal does, and its temporary folder (throw-away private key included) is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

interface RunningDemo {
  child: ChildProcess;
  out: () => string;
  /** The demo's own temporary folder, as it prints it (the config file's folder). */
  folder: string;
  curl: string;
  exited: Promise<number | null>;
}

/**
 * `npm run demo` (or `token-broker demo` itself) in its own process group, with TMPDIR pointed at
 * `tmp`; resolves once it printed its curl line.
 */
async function startDemo(tmp: string, how: 'npm' | 'cli' = 'npm'): Promise<RunningDemo> {
  const [command, args] = how === 'npm' ? ['npm', ['run', '--silent', 'demo']] : [process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'demo']];
  const child = spawn(command, args, { env: { ...process.env, PORT: '0', TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (err += c));
  try {
    const curl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not print a curl line in time:\n${out}\n${err}`)), 60_000);
      const check = () => {
        const line = out.split('\n').find((l) => l.trim().startsWith('curl -s -X POST'));
        if (line) {
          clearTimeout(timer);
          resolve(line.trim());
        }
      };
      child.stdout!.on('data', check);
      void exited.then((code) => reject(new Error(`demo exited with ${code}:\n${out}\n${err}`)));
    });
    const config = /^\s*config\s+(\S+)$/m.exec(out)?.[1];
    assert.ok(config, `the demo prints its config path:\n${out}`);
    return { child, out: () => out, folder: dirname(config), curl, exited };
  } catch (error) {
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    throw error;
  }
}

const demoFolders = (tmp: string) => readdirSync(tmp).filter((f) => f.startsWith('token-broker-demo-'));

test('the demo starts and the curl it prints returns a token; Ctrl-C removes its folder', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'token-broker-demo-test-'));
  const demo = await startDemo(tmp);
  const { child, curl } = demo;
  const out = demo.out();
  let stopped = false;
  try {
    assert.match(out, /SANDBOX/);
    assert.match(curl, /Authorization: Bearer demo-key/);
    // Exactly as printed, through a shell, as a person would paste it.
    const { stdout } = await run('sh', ['-c', curl], { timeout: 30_000 });
    const body = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(body.credential, 'demo');
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.cache, 'miss');
    assert.equal((body.access_token as string).split('.').length, 3);
    const again = JSON.parse((await run('sh', ['-c', curl], { timeout: 30_000 })).stdout) as Record<string, unknown>;
    assert.equal(again.cache, 'hit');

    assert.ok(existsSync(join(demo.folder, 'demo.key')), `the private key is in ${demo.folder} while the demo runs`);
    assert.ok(demo.folder.startsWith(tmp));
    // Ctrl-C: SIGINT to the whole foreground group, so npm forwards it to the demo a second time.
    // npm exits once the demo has (and then by re-raising the signal, so its own status says nothing).
    process.kill(-child.pid!, 'SIGINT');
    stopped = true;
    await demo.exited;
    assert.deepEqual(demoFolders(tmp), [], 'the demo folder was removed');
  } finally {
    if (!stopped) process.kill(-child.pid!, 'SIGKILL');
    await demo.exited;
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('SIGTERM and SIGHUP (the terminal closed) to token-broker demo: exit 0, its folder removed', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'token-broker-demo-test-'));
  try {
    for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
      const demo = await startDemo(tmp, 'cli');
      try {
        assert.ok(existsSync(join(demo.folder, 'demo.key')));
        demo.child.kill(signal);
        assert.equal(await demo.exited, 0, `${signal}: exit 0`);
        assert.deepEqual(demoFolders(tmp), [], `${signal}: the demo folder was removed`);
      } finally {
        if (demo.child.exitCode === null && demo.child.signalCode === null) demo.child.kill('SIGKILL');
        await demo.exited;
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
