// A port that cannot be opened (already in use, an address this host does not have), as an operator
// meets it: `token-broker serve`, `node dist/main.js` (src/main.ts here) and `npm run demo` print one
// line naming host and port to stderr and exit 1, with no stack trace; the demo leaves no folder.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { entraCredential } from '../helpers/entra-fixture.ts';
import { freePort } from '../helpers/redis-server.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';

let dir: TempDir;
let configFile: string;
let busy: Server;
let busyPort: number;

function writeConfig(name: string, extra: Record<string, unknown> = {}): string {
  return dir.write(`${name}.yaml`, stringify({ ...extra, credentials: [entraCredential('powerbi', 'http://127.0.0.1:9', { certFile: 'busy.crt', keyFile: 'busy.key' })], callers: [{ id: 'jobs', apiKeySha256: sha256Hex('busy-key'), allow: [{ credential: 'powerbi' }] }] }));
}

before(async () => {
  dir = tempDir();
  await writeCredentialFiles(dir, 'busy');
  configFile = writeConfig('busy');
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  busyPort = (busy.address() as { port: number }).port;
});
after(() => {
  busy.close();
  dir.remove();
});

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: Record<string, string>): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, LOG_LEVEL: 'info', REDIS_URL: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    // Only to stop a hung process from hanging the test: a start that fails takes seconds.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const serve = (env: Record<string, string>, file = configFile) => run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', file], env);

test('token-broker serve on a port in use: one line naming host and port, exit 1', async () => {
  const out = await serve({ HOST: '127.0.0.1', PORT: String(busyPort) });
  assert.equal(out.stderr, `token-broker: cannot listen on 127.0.0.1:${busyPort}: address already in use (EADDRINUSE)\n`);
  assert.equal(out.code, 1);
  assert.doesNotMatch(out.stdout, /token-broker listening/);
});

test('the production entry point (dist/main.js is src/main.ts) on a port in use: the same line, exit 1', async () => {
  const out = await run(process.execPath, ['--import', 'tsx', 'src/main.ts'], { BROKER_CONFIG: configFile, HOST: '127.0.0.1', PORT: String(busyPort) });
  assert.equal(out.stderr, `token-broker: cannot listen on 127.0.0.1:${busyPort}: address already in use (EADDRINUSE)\n`);
  assert.equal(out.code, 1);
});

test('serve on an address this host does not have: one line, exit 1', async () => {
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never configured on a real interface.
  const out = await serve({ HOST: '192.0.2.1', PORT: String(busyPort) });
  assert.equal(out.stderr, `token-broker: cannot listen on 192.0.2.1:${busyPort}: address not available (EADDRNOTAVAIL)\n`);
  assert.equal(out.code, 1);
});

test('a configured metrics port in use is fatal at start too: one line naming it, exit 1', async () => {
  const apiPort = await freePort();
  const out = await serve({ HOST: '127.0.0.1', PORT: String(apiPort) }, writeConfig('busy-metrics', { metrics: { port: busyPort } }));
  assert.equal(out.stderr, `token-broker: cannot listen on 127.0.0.1:${busyPort} for metrics (metrics.port): address already in use (EADDRINUSE)\n`);
  assert.equal(out.code, 1);
});

test('npm run demo on a port in use: one line, exit 1, and its folder with the private key is gone', async () => {
  // The demo's own temporary folder, so the listing below sees only this run.
  const tmp = mkdtempSync(join(tmpdir(), 'token-broker-demo-tmp-'));
  try {
    const out = await run('npm', ['run', '--silent', 'demo'], { PORT: String(busyPort), TMPDIR: tmp });
    assert.equal(out.stderr, `token-broker: cannot listen on 127.0.0.1:${busyPort}: address already in use (EADDRINUSE) (set PORT to use another port)\n`);
    assert.equal(out.code, 1);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('token-broker-demo-')), [], 'the demo folder was removed');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
