// `npm run demo` as a newcomer runs it: start it, take the curl line it prints, run that line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

test('the demo starts and the curl it prints returns a token', async () => {
  const child = spawn('npm', ['run', '--silent', 'demo'], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
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
      child.stdout.on('data', check);
      child.once('exit', (code) => reject(new Error(`demo exited with ${code}:\n${out}\n${err}`)));
    });
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
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});
