// The image's runtime without Docker: build as the Dockerfile's build stage does (from exactly the
// files it COPYs), copy package.json, package-lock.json and dist/ into a clean folder, install
// production dependencies only
// (`npm ci --omit=dev --ignore-scripts`, as the Dockerfile's prod-deps stage), then run
// `node dist/main.js` with a config (as the image's CMD), get a token from a sandbox IdP over HTTP,
// and stop it with SIGTERM: exit code 0. When the test runs as root, the broker runs as uid 1000 on a
// tree it cannot write, as in the image (USER 1000, code owned by root).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { createThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';
import { sha256Hex } from '../helpers/credential-files.ts';

/**
 * Runs a command to completion, or fails after `timeoutMs` (a bound that only stops a hung step),
 * killing its whole process group: npm's children would otherwise keep the pipes open and the
 * test waiting after npm itself was killed.
 */
function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; timeout?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  const { timeout = 120_000, ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...spawnOptions, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c) => (stdout += c));
    child.stderr!.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${timeout} ms\n${stdout}\n${stderr}`));
    }, timeout);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(Object.assign(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}\n${stderr}`), { code, stdout, stderr }));
    });
  });
}
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CALLER_KEY = 'production-tree-caller-key';
const asImageUser = process.getuid?.() === 0 ? { uid: 1000, gid: 1000 } : {};

/** What the Dockerfile copies from the build context (COPY without --from), e.g. package.json, src. */
function dockerContextSources(): string[] {
  return readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((l) => /^COPY\s/i.test(l.trim()) && !/--from=/.test(l))
    .flatMap((l) => l.trim().replace(/--\S+/g, '').split(/\s+/).slice(1, -1));
}

/** The environment of the container: nothing from the test runner (no tsx loader, no NODE_OPTIONS). */
function imageEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, NODE_ENV: 'production', HOME: '/tmp', ...extra };
}

describe('production tree (the image without Docker)', () => {
  let app: string;
  let build: string;
  let idp: SandboxIdp;
  let configFile: string;
  const timings: Record<string, number> = {};

  before(async () => {
    app = mkdtempSync(join(tmpdir(), 'token-broker-prod-'));
    // The build stage: only the files the Dockerfile copies, with the checkout's full node_modules
    // standing in for its `npm ci` (same lock file). Not in the checkout, whose dist/ others may use.
    build = mkdtempSync(join(tmpdir(), 'token-broker-build-'));
    const sources = dockerContextSources();
    assert.ok(sources.includes('src') && sources.includes('package-lock.json'), `Dockerfile COPY sources: ${sources.join(' ')}`);
    for (const source of sources) cpSync(join(ROOT, source), join(build, source), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(build, 'node_modules'), 'dir');
    let t = Date.now();
    await run('npm', ['run', '--silent', 'build'], { cwd: build, timeout: 180_000 });
    timings.buildMs = Date.now() - t;
    cpSync(join(build, 'dist'), join(app, 'dist'), { recursive: true });
    copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    copyFileSync(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
    t = Date.now();
    await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, timeout: 300_000 });
    // As on a machine without a C++ toolchain: the optional PKCS#11 binding is not built, and the broker runs without it.
    assert.ok(!existsSync(join(app, 'node_modules', 'pkcs11js', 'build', 'Release', 'pkcs11.node')), 'the PKCS#11 binding was not compiled');
    timings.npmCiMs = Date.now() - t;

    const cert = await createThrowawayCertificate({ commonName: 'production-tree' });
    idp = await startSandboxIdp({ clients: [{ clientId: 'prod-tree-client', certificatePem: cert.certPem }] });
    const configDir = join(app, 'config');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'client.crt'), cert.certPem);
    writeFileSync(join(configDir, 'client.key'), cert.keyPem);
    configFile = join(configDir, 'config.yaml');
    writeFileSync(
      configFile,
      stringify({
        server: { host: '127.0.0.1', port: 8080 },
        credentials: [
          {
            id: 'sandbox',
            provider: 'oidc',
            issuer: idp.issuer,
            clientId: 'prod-tree-client',
            certificate: { certFile: 'client.crt', keyFile: 'client.key' },
            scopes: ['api.read'],
          },
        ],
        callers: [{ id: 'jobs', apiKeySha256: sha256Hex(CALLER_KEY), allow: [{ credential: 'sandbox' }] }],
      }),
    );
    // Readable, not writable, by the image's user: the tree belongs to root, as in the image.
    await run('chmod', ['-R', 'a+rX,go-w', app]);
    chmodSync(join(configDir, 'client.key'), 0o644); // a throw-away key; the chart mounts real ones 0440 + fsGroup
  });

  after(async () => {
    await idp?.close();
    for (const dir of [app, build]) if (dir) rmSync(dir, { recursive: true, force: true });
    console.log(`# production tree: build ${timings.buildMs} ms, npm ci --omit=dev ${timings.npmCiMs} ms`);
  });

  test('has production dependencies only', () => {
    assert.ok(existsSync(join(app, 'dist', 'main.js')));
    assert.ok(existsSync(join(app, 'node_modules', 'express')));
    for (const dev of ['typescript', 'tsx', 'oidc-provider', 'eslint', '@peculiar/x509']) {
      assert.ok(!existsSync(join(app, 'node_modules', dev)), `${dev} is a devDependency and must not be installed`);
    }
  });

  test('node dist/main.js serves a token, then exits 0 on SIGTERM', async () => {
    const child: ChildProcess = spawn('node', ['dist/main.js'], {
      cwd: app,
      env: imageEnv({ BROKER_CONFIG: configFile, PORT: '0', LOG_LEVEL: 'info' }),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...asImageUser,
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (err += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no 'token-broker listening' line in time:\n${out}\n${err}`)), 30_000);
        child.stdout!.on('data', () => {
          const line = out.split('\n').find((l) => l.includes('token-broker listening'));
          if (line) {
            clearTimeout(timer);
            resolve(JSON.parse(line).url);
          }
        });
        child.once('exit', (code) => reject(new Error(`node dist/main.js exited with ${code}:\n${out}\n${err}`)));
      });

      // Every call bounded: a broker that stops answering fails the test instead of hanging it.
      assert.equal((await fetch(`${url}/livez`, { signal: AbortSignal.timeout(30_000) })).status, 200);
      const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(30_000) });
      assert.equal(ready.status, 200, await ready.clone().text());
      const request = () =>
        fetch(`${url}/v1/token`, {
          method: 'POST',
          headers: { authorization: `Bearer ${CALLER_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ credential: 'sandbox' }),
          signal: AbortSignal.timeout(30_000),
        });
      const first = await request();
      const body = (await first.json()) as Record<string, unknown>;
      assert.equal(first.status, 200, JSON.stringify(body));
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.cache, 'miss');
      assert.equal((body.access_token as string).split('.').length, 3);
      assert.equal(first.headers.get('cache-control'), 'no-store');
      assert.equal(((await (await request()).json()) as Record<string, unknown>).cache, 'hit');
      assert.equal(idp.captured.filter((c) => c.status === 200).length, 1, 'one IdP exchange');
      assert.doesNotMatch(out, new RegExp(body.access_token as string), 'the token is not logged');

      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r('no exit within 15 s'), 15_000)))]);
      clearTimeout(timer);
      assert.equal(code, 0, `exit code after SIGTERM\n${err}`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  test('the token-broker command works from the production tree', async () => {
    const opts = { cwd: app, env: imageEnv({}), ...asImageUser };
    const check = await run('node', ['dist/cli/main.js', 'config', 'check', configFile], opts);
    assert.match(check.stdout, /^ok: /m);
    const thumbprint = await run('node', ['dist/cli/main.js', 'thumbprint', join(app, 'config', 'client.crt'), '--json'], opts);
    assert.ok(JSON.parse(thumbprint.stdout));
  });

  test('a bad config stops it with exit 1 and the problem named', async () => {
    const bad = join(app, 'bad-config.yaml');
    writeFileSync(bad, 'credentials: []\nbogus: 1\n');
    chmodSync(bad, 0o644);
    const result = await run('node', ['dist/main.js'], { cwd: app, env: imageEnv({ BROKER_CONFIG: bad }), ...asImageUser }).then(
      () => assert.fail('expected a non-zero exit'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /bogus: unknown key/);
  });
});
