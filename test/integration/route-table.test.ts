// The route table (src/http/route-table.ts) is the only list of routes: every route answers 405 with
// a correct Allow header for the methods it does not have, in its family's error shape; and every
// route family's 500 goes through the one error exit, which logs the cause once and never sends it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type AppDeps } from '../../src/app.ts';
import { validateConfig } from '../../src/config/load.ts';
import { CallerDirectory } from '../../src/callers/caller-directory.ts';
import { systemClock } from '../../src/kernel/clock.ts';
import { DiagnosticService } from '../../src/diagnostics/diagnostic-service.ts';
import { ROUTES } from '../../src/http/route-table.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { startSandboxIdp, type SandboxIdp } from '../../src/sandbox/sandbox-idp.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { LogCapture, startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const KEY = 'routes-key';
const IDENTITY = 'routes-identity';
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

let dir: TempDir;
let idp: SandboxIdp;
let tb: TestBroker;
let rawConfig: Record<string, unknown>;

before(async () => {
  dir = tempDir();
  const files = await writeCredentialFiles(dir, 'cdr');
  idp = await startSandboxIdp({ clients: [{ clientId: 'cdr', certificatePem: files.cert.certPem }] });
  rawConfig = {
    // The IMDS flavour on, and /metrics on the API port (no metrics.port): every row of the table is served.
    server: { host: '127.0.0.1', imdsSidecar: { enabled: true, caller: 'jobs' } },
    credentials: [{ id: 'cdr', provider: 'oidc', issuer: idp.issuer, clientId: 'cdr', certificate: { certFile: files.certFile, keyFile: files.keyFile }, scopes: ['api.read'] }],
    callers: [
      {
        id: 'jobs',
        apiKeySha256: sha256Hex(KEY),
        identityHeaderSha256: sha256Hex(IDENTITY),
        allow: [{ credential: 'cdr' }],
        defaultCredential: 'cdr',
        diagnostics: true,
        rateLimit: { requestsPerSecond: 100_000, burst: 100_000 },
      },
    ],
  };
  tb = await startTestBroker(rawConfig, dir.path, { logLevel: 'warn' });
});

after(async () => {
  await tb.close();
  await idp.close();
  dir.remove();
});

/** Everything a request needs to get past authentication on any family. */
const credentials = { authorization: `Bearer ${KEY}`, 'x-identity-header': IDENTITY, metadata: 'true' };
const concrete = (path: string) => path.replace(/:\w+/g, 'cdr');
const isManagedIdentity = (path: string) => ROUTES.some((r) => r.path === path && r.family === 'managed-identity');
const isSignInPage = (path: string) => ROUTES.some((r) => r.path === path && r.family === 'sign-in-page');

/** Read from the table here, not through the code under test: GET rows also answer HEAD. */
function expectedAllow(path: string): string[] {
  return ROUTES.filter((r) => r.path === path).flatMap((r) => (r.method === 'GET' ? ['GET', 'HEAD'] : [r.method]));
}

async function assertMethodNotAllowed(res: Response, method: string, path: string, allow: string) {
  const what = `${method} ${path}`;
  assert.equal(res.status, 405, what);
  assert.equal(res.headers.get('allow'), allow, what);
  if (method === 'HEAD') return;
  if (isSignInPage(path)) {
    // Pages a person's browser opens answer with a page.
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/, what);
    assert.match(await res.text(), /Method not allowed|accepts GET/, what);
    return;
  }
  const body = (await res.json()) as Record<string, unknown>;
  if (isManagedIdentity(path)) {
    // The shape the Azure SDKs parse, not problem+json.
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, what);
    assert.equal(body.error, 'invalid_request', what);
    assert.equal(typeof body.error_description, 'string', what);
  } else {
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
    assert.equal(body.status, 405, what);
    assert.equal(body.code, 'invalid_request', what);
  }
}

describe('405 with Allow, from the table', () => {
  test('every path answers 405 with its Allow header for each method it does not have', async () => {
    const paths = [...new Set(ROUTES.map((r) => r.path))];
    assert.ok(paths.length >= 15, `the table has every route (${paths.length} paths)`);
    let checked = 0;
    for (const path of paths) {
      const allow = expectedAllow(path);
      for (const method of METHODS.filter((m) => !allow.includes(m))) {
        const res = await fetch(`${tb.url}${concrete(path)}`, { method, headers: credentials });
        await assertMethodNotAllowed(res, method, path, allow.join(', '));
        checked++;
      }
    }
    assert.ok(checked >= 60, `${checked} path and method pairs`);
  });

  test('the cases from the issue: parametrised paths, /metrics, /msi/token', async () => {
    const cases: [string, string, string][] = [
      ['DELETE', '/v1/diagnostics/credentials/x', 'GET, HEAD'],
      ['PUT', '/v1/diagnostics/credentials/x/probe', 'POST'],
      ['GET', '/v1/diagnostics/credentials/x/probe', 'POST'],
      ['POST', '/metrics', 'GET, HEAD'],
      ['POST', '/msi/token', 'GET, HEAD'],
      ['DELETE', '/metadata/identity/oauth2/token', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await fetch(`${tb.url}${path}`, { method, headers: credentials });
      const template = ROUTES.find((r) => new RegExp(`^${r.path.replace(/:\w+/g, '[^/]+')}$`).test(path))!.path;
      await assertMethodNotAllowed(res, method, template, allow);
    }
  });

  test("every row's own method is served (neither 404 nor 405)", async () => {
    for (const route of ROUTES) {
      const body = route.method === 'POST' ? '{}' : undefined;
      const res = await fetch(`${tb.url}${concrete(route.path)}`, { method: route.method, headers: { ...credentials, ...(body ? { 'content-type': 'application/json' } : {}) }, body });
      await res.arrayBuffer();
      assert.ok(res.status !== 404 && res.status !== 405, `${route.method} ${route.path} → ${res.status}`);
    }
  });

  test('on /v1 paths authentication comes first: an anonymous wrong method is 401, and the body is never read', async () => {
    for (const path of ['/v1/token', '/v1/credentials', '/v1/diagnostics/credentials/cdr']) {
      const res = await fetch(`${tb.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{not json' });
      assert.equal(res.status, 401, path);
      assert.equal(((await res.json()) as { code: string }).code, 'unauthenticated');
    }
  });

  test('a wrong method is 405 whatever the body: it is not parsed first', async () => {
    const res = await fetch(`${tb.url}/v1/diagnostics/credentials/cdr`, { method: 'DELETE', headers: { ...credentials, 'content-type': 'application/json' }, body: '{not json' });
    await assertMethodNotAllowed(res, 'DELETE', '/v1/diagnostics/credentials/:id', 'GET, HEAD');
  });

  test('an unknown path is still 404', async () => {
    for (const path of ['/nope', '/v1/nope', '/v1/diagnostics/credentials/cdr/nope', '/metrics/x']) {
      const res = await fetch(`${tb.url}${path}`, { method: 'DELETE', headers: credentials });
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get('allow'), null, path);
    }
  });
});

// ── 500s: one error exit per wire shape, logging the cause once ──────────────────────────────────

/** The real object, with some members replaced. */
function override<T extends object>(real: T, replacements: Record<string, unknown>): T {
  return new Proxy(real, {
    get(target, prop) {
      if (typeof prop === 'string' && prop in replacements) return replacements[prop];
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const thrower = (cause: Error) => () => {
  throw cause;
};

interface Family {
  family: string;
  request: { method: string; path: string; body?: unknown };
  /** The app's dependencies, one of them failing with `cause`. */
  deps: (cause: Error, base: AppDeps) => Partial<AppDeps>;
  shape: 'problem' | 'managed-identity';
}

const families: Family[] = [
  { family: 'token', request: { method: 'POST', path: '/v1/token', body: { credential: 'cdr' } }, deps: (cause, base) => ({ tokenService: override(base.tokenService, { getToken: thrower(cause) }) }), shape: 'problem' },
  {
    family: 'managed identity',
    request: { method: 'GET', path: '/msi/token?resource=api.read&api-version=2019-08-01' },
    deps: (cause, base) => ({ tokenService: override(base.tokenService, { getToken: thrower(cause) }) }),
    shape: 'managed-identity',
  },
  {
    family: 'managed identity (IMDS)',
    request: { method: 'GET', path: '/metadata/identity/oauth2/token?resource=api.read&api-version=2018-02-01' },
    deps: (cause, base) => ({ tokenService: override(base.tokenService, { getToken: thrower(cause) }) }),
    shape: 'managed-identity',
  },
  {
    family: 'diagnostics',
    request: { method: 'GET', path: '/v1/diagnostics/credentials/cdr' },
    deps: (cause, base) => ({ diagnostics: override(new DiagnosticService({ tokenService: base.tokenService, clock: base.clock, logger: base.logger }), { describeCredential: thrower(cause) }) }),
    shape: 'problem',
  },
  { family: 'health', request: { method: 'GET', path: '/readyz' }, deps: (cause, base) => ({ tokenService: override(base.tokenService, { listCredentials: thrower(cause) }) }), shape: 'problem' },
  {
    family: 'metrics',
    request: { method: 'GET', path: '/metrics' },
    deps: (cause, base) => ({ metrics: override(base.metrics!, { registry: override(base.metrics!.registry, { metrics: thrower(cause) }) }) }),
    shape: 'problem',
  },
];

async function listen(app: ReturnType<typeof createApp>): Promise<{ url: string; server: Server }> {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('a 500 on each route family is logged once with its cause and answered without it', () => {
  for (const f of families) {
    test(f.family, async () => {
      const loaded = validateConfig(rawConfig, dir.path);
      const logs = new LogCapture();
      const logger = createLogger({ level: 'debug', destination: logs });
      const callers = new CallerDirectory(loaded.config.callers);
      const base: AppDeps = {
        tokenService: tb.broker.tokenService,
        callers,
        imdsCaller: callers.byId('jobs'),
        metrics: tb.broker.metrics,
        clock: systemClock,
        logger,
        bodyLimitBytes: loaded.config.server.bodyLimitBytes,
      };
      // A plain Error, as a bug or a library would throw: no BrokerError, no status, no code.
      const marker = `cause-${f.family.replace(/\W+/g, '-')}-${Math.random().toString(36).slice(2)}`;
      const cause = new Error(`something deep failed: ${marker}`);
      const { url, server } = await listen(createApp({ ...base, ...f.deps(cause, base) }));
      try {
        const res = await fetch(`${url}${f.request.path}`, {
          method: f.request.method,
          headers: { ...credentials, ...(f.request.body ? { 'content-type': 'application/json' } : {}) },
          body: f.request.body ? JSON.stringify(f.request.body) : undefined,
        });
        const text = await res.text();
        assert.equal(res.status, 500, text);
        assert.ok(!text.includes(marker) && !text.includes('something deep failed'), `the cause is not sent: ${text}`);
        const body = JSON.parse(text) as Record<string, unknown>;
        const requestId = res.headers.get('x-request-id');
        if (f.shape === 'managed-identity') {
          assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
          assert.deepEqual(body, { error: 'server_error', error_description: 'Internal error', request_id: requestId });
        } else {
          assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
          assert.deepEqual(body, { type: 'urn:token-broker:problem:internal', title: 'Internal error', status: 500, code: 'internal', request_id: requestId });
        }
        const withCause = logs.entries().filter((e) => JSON.stringify(e).includes(marker));
        assert.equal(withCause.length, 1, `one log line with the cause:\n${logs.text}`);
        const line = withCause[0]!;
        assert.equal(line.level, 'error');
        assert.equal(line.msg, 'request failed');
        assert.equal(line.requestId, requestId);
        assert.equal(line.status, 500);
        const logged = line.cause as Record<string, unknown>;
        assert.deepEqual({ type: logged.type, message: logged.message }, { type: 'Error', message: cause.message });
        assert.match(String(logged.stack), /route-table\.test\.ts/, 'with the stack of the cause');
        // The access log has its own line for the request, without the cause.
        assert.equal(logs.entries().filter((e) => e.msg === 'request' && e.requestId === requestId && e.status === 500).length, 1);
      } finally {
        server.close();
        server.closeAllConnections();
      }
    });
  }
});
