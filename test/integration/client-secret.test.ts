// Client secrets (RFC 6749 §2.3.1) against a real OAuth 2.0 server (oidc-provider): it decodes a
// client_secret_basic header per spec (form-urlencoded before base64) and compares the secret it
// has for the client, which the test can change while the broker runs (its clients come from an
// adapter the test controls). Rotations happen under load, through a Kubernetes Secret volume
// symlink swap, and must cost no caller a failure; nothing the broker shows may carry a secret.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { basicAuthorization, formUrlEncode } from '../../src/client-auth/client-secret.ts';
import { startEntraStandIn, type EntraStandIn } from '../fakes/entra-stand-in.ts';
import { TEST_TENANT } from '../helpers/entra-fixture.ts';
import { sha256Hex, tempDir, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const KEY = 'client-secret-key';
const DIAGNOSTICS_KEY = 'client-secret-diagnostics-key';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Printable ASCII (RFC 6749 appendix A) with what a careless client_secret_basic breaks on: + / : % = and a space. */
const SPECIAL_SECRET = `pa+ss/wo:rd%2F=x y&z?#"'\\~!*()${randomBytes(4).toString('hex')}`;
const newSecret = (label: string) => `${label}-${randomBytes(18).toString('base64url')}`;
/**
 * Short enough that its Basic credentials (base64) stay under the length at which long opaque runs
 * are scrubbed anyway: only the credential's own redactions catch them.
 */
const echoedBasicSecret = () => `ebs-${randomBytes(6).toString('hex')} +/%=`;
/** Scopes enough for one exchange per request during the rotation runs (each request a new target). */
const ROTATION_SCOPES = Array.from({ length: 64 }, (_, i) => `s${i}`);

/** One token request as the IdP saw it: how the secret came, and which one. */
interface SeenExchange {
  clientId?: string;
  via: 'basic' | 'post' | 'none';
  secret?: string;
  scope?: string;
  status: number;
}

interface SecretIdp {
  tokenEndpoint: string;
  seen: SeenExchange[];
  /** Replaces the secret the IdP has for a client (takes effect on the next request). */
  setSecret(clientId: string, secret: string): void;
  close(): Promise<void>;
}

function decodeBasic(header: string | undefined): { clientId: string; secret: string } | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const raw = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const i = raw.indexOf(':');
  const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, '%20'));
  return { clientId: decode(raw.slice(0, i)), secret: decode(raw.slice(i + 1)) };
}

/** oidc-provider with client_secret_basic / client_secret_post clients read from a map the test changes. */
async function startSecretIdp(clients: { clientId: string; secret: string; method: 'client_secret_basic' | 'client_secret_post'; scope?: string }[]): Promise<SecretIdp> {
  const originalWarn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING')) return;
    originalWarn(...args);
  };
  const { default: Provider } = await import('oidc-provider');
  const registered = new Map(
    clients.map((c) => [
      c.clientId,
      {
        client_id: c.clientId,
        client_secret: c.secret,
        token_endpoint_auth_method: c.method,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: c.scope ?? 'api.read',
      },
    ]),
  );
  const store = new Map<string, Record<string, unknown>>();
  // Clients come from here on every request (oidc-provider rebuilds one whose properties changed).
  class Adapter {
    constructor(private readonly model: string) {}
    async find(id: string) {
      return this.model === 'Client' ? registered.get(id) : store.get(`${this.model}:${id}`);
    }
    async upsert(id: string, payload: Record<string, unknown>) {
      store.set(`${this.model}:${id}`, payload);
    }
    async findByUserCode() {
      return undefined;
    }
    async findByUid() {
      return undefined;
    }
    async consume() {}
    async destroy(id: string) {
      store.delete(`${this.model}:${id}`);
    }
    async revokeByGrantId() {}
  }
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    adapter: Adapter,
    ttl: { ClientCredentials: () => 3600 },
    scopes: ['openid', 'api.read', ...ROTATION_SCOPES],
    features: { devInteractions: { enabled: false }, clientCredentials: { enabled: true } },
  } as never);
  provider.proxy = false;
  const seen: SeenExchange[] = [];
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path !== '/token') return;
    const params = (ctx as unknown as { oidc?: { params?: Record<string, unknown> } }).oidc?.params ?? {};
    const basic = decodeBasic(ctx.headers.authorization);
    const posted = typeof params.client_secret === 'string' ? params.client_secret : undefined;
    seen.push({
      clientId: basic?.clientId ?? (params.client_id as string | undefined),
      via: basic ? 'basic' : posted ? 'post' : 'none',
      secret: basic?.secret ?? posted,
      scope: params.scope as string | undefined,
      status: ctx.status,
    });
  });
  server.on('request', provider.callback());
  return {
    tokenEndpoint: `${issuer}/token`,
    seen,
    setSecret(clientId, secret) {
      registered.set(clientId, { ...registered.get(clientId)!, client_secret: secret });
    },
    close: () =>
      new Promise<void>((resolve) => {
        console.warn = originalWarn;
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A Kubernetes Secret volume: files are links into a timestamped folder behind a `..data` link swapped atomically. */
function writeSecretVolume(volume: string, files: Record<string, string>, generation: number) {
  const data = join(volume, `..${generation}`);
  mkdirSync(data, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(data, name), content);
  symlinkSync(`..${generation}`, join(volume, '..data_tmp'));
  renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
  for (const name of Object.keys(files)) {
    try {
      symlinkSync(`..data/${name}`, join(volume, name));
    } catch {
      // already linked
    }
  }
}

/** What the broker has shown: every log line, problem body, /readyz and diagnostics answer, to search for secrets. */
const shown: string[] = [];

async function readyz(tb: TestBroker): Promise<any> {
  const text = await (await fetch(`${tb.url}/readyz`)).text();
  shown.push(text);
  return JSON.parse(text);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(20);
  }
}

function brokerConfig(credentials: Record<string, unknown>[]) {
  return {
    server: { certificateReloadSeconds: 0.2 },
    credentials,
    callers: [
      // The load below is far above the default per-caller limit; it measures rotations, not the limiter.
      { id: 'jobs', apiKeySha256: sha256Hex(KEY), allow: credentials.map((c) => ({ credential: c.id })), rateLimit: { requestsPerSecond: 100_000, burst: 1_000_000 } },
      { id: 'engineers', apiKeySha256: sha256Hex(DIAGNOSTICS_KEY), diagnostics: true, allow: credentials.map((c) => ({ credential: c.id })) },
    ],
  };
}

/**
 * A bounded load: `workers` callers requesting tokens back to back. Each request for a scope not
 * used before is an exchange with the IdP; `allowExchanges(n)` lets the next n requests be such,
 * the others are for a token already held. Every answer is kept.
 */
class Load {
  readonly answers: { status: number; scope: string; body: string }[] = [];
  private nextScope = 1;
  private readonly scopes: string[];
  private allowed = 0;
  private completedExchanges = 0;
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(
    private readonly tb: TestBroker,
    private readonly credential: string,
    scopes: string[] = ROTATION_SCOPES,
    workers = 4,
  ) {
    this.scopes = scopes;
    this.loops = Array.from({ length: workers }, () => this.loop());
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const exchange = this.allowed > 0 && this.nextScope < this.scopes.length;
      const scope = exchange ? this.scopes[this.nextScope++]! : this.scopes[0]!;
      if (exchange) this.allowed--;
      const res = await this.tb.token(KEY, { credential: this.credential, scope });
      const body = await res.text();
      this.answers.push({ status: res.status, scope, body });
      if (res.status !== 200) shown.push(body);
      if (exchange) this.completedExchanges++;
      await sleep(2);
    }
  }

  /** Lets n more requests exchange, and resolves once they all have answered. */
  async exchanges(n: number): Promise<string[]> {
    const first = this.nextScope;
    const target = this.completedExchanges + n;
    this.allowed += n;
    await waitFor(`${n} exchanges`, () => this.completedExchanges >= target);
    return this.scopes.slice(first, first + n);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

let dir: TempDir;
const secrets = {
  basic: newSecret('basic'),
  post: newSecret('post'),
  wrong: newSecret('wrong'),
  wrongAtIdp: newSecret('registered'),
  rotateA: newSecret('rotate-a'),
  rotateB: newSecret('rotate-b'),
  laggingA: newSecret('lagging-a'),
  laggingB: newSecret('lagging-b'),
  entraV1: newSecret('entra-v1'),
  entraWrong: newSecret('entra-wrong'),
  entraRegistered: newSecret('entra-registered'),
  entraExpired: newSecret('entra-expired'),
  entraA: newSecret('entra-a'),
  entraB: newSecret('entra-b'),
  entraC: newSecret('entra-c'),
  echoBasic: echoedBasicSecret(),
  echoPost: `${newSecret('echo-post')} a+b/c%d=e`,
};
let idp: SecretIdp;

before(async () => {
  dir = tempDir();
  idp = await startSecretIdp([
    { clientId: 'basic-client', secret: secrets.basic, method: 'client_secret_basic' },
    { clientId: 'post-client', secret: secrets.post, method: 'client_secret_post' },
    { clientId: 'special-client', secret: SPECIAL_SECRET, method: 'client_secret_basic' },
    { clientId: 'wrong-client', secret: secrets.wrongAtIdp, method: 'client_secret_basic' },
    { clientId: 'rotating-client', secret: secrets.rotateA, method: 'client_secret_basic', scope: ROTATION_SCOPES.join(' ') },
    { clientId: 'lagging-client', secret: secrets.laggingA, method: 'client_secret_post', scope: ROTATION_SCOPES.join(' ') },
  ]);
});
after(async () => {
  await idp.close();
  dir.remove();
});

describe('client_secret_basic and client_secret_post against oidc-provider', () => {
  let tb: TestBroker;

  before(async () => {
    const file = (name: string, value: string) => dir.write(name, `${value}\n`);
    tb = await startTestBroker(
      brokerConfig([
        { id: 'basic', provider: 'oidc', clientId: 'basic-client', tokenEndpoint: idp.tokenEndpoint, clientSecret: { file: file('basic-secret', secrets.basic) }, scopes: ['api.read'] },
        {
          id: 'post',
          provider: 'oidc',
          clientId: 'post-client',
          tokenEndpoint: idp.tokenEndpoint,
          clientSecret: { file: file('post-secret', secrets.post), method: 'client_secret_post' },
          scopes: ['api.read'],
        },
        // Written without a trailing newline, as `kubectl create secret --from-literal` does.
        { id: 'special', provider: 'oidc', clientId: 'special-client', tokenEndpoint: idp.tokenEndpoint, clientSecret: { file: dir.write('special-secret', SPECIAL_SECRET) }, scopes: ['api.read'] },
        { id: 'wrong', provider: 'oidc', clientId: 'wrong-client', tokenEndpoint: idp.tokenEndpoint, clientSecret: { file: 'wrong-secret' }, scopes: ['api.read'] },
      ]),
      (file('wrong-secret', secrets.wrong), dir.path),
    );
  });
  after(async () => {
    shown.push(tb.logs.text);
    await tb.close();
  });

  for (const [credential, clientId, via] of [
    ['basic', 'basic-client', 'basic'],
    ['post', 'post-client', 'post'],
  ] as const) {
    test(`client_secret_${via}: the credential gets a token; the IdP got the secret ${via === 'basic' ? 'in Authorization: Basic' : 'as the client_secret form field'}`, async () => {
      const res = await tb.token(KEY, { credential });
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.cache, 'miss');
      assert.ok(typeof body.access_token === 'string' && body.access_token.length > 10);
      const exchange = idp.seen.filter((s) => s.clientId === clientId).at(-1)!;
      assert.deepEqual([exchange.via, exchange.status], [via, 200]);
    });
  }

  test('a secret holding + / : % = and a space works with client_secret_basic (form-urlencoded before base64)', async () => {
    const res = await tb.token(KEY, { credential: 'special' });
    assert.equal(res.status, 200, await res.clone().text());
    const exchange = idp.seen.filter((s) => s.clientId === 'special-client').at(-1)!;
    assert.equal(exchange.via, 'basic');
    assert.equal(exchange.secret, SPECIAL_SECRET, 'the IdP decoded exactly the secret in the file');
  });

  test('a wrong secret: 502 idp_rejected, idp_error invalid_client, and a hint naming the secret file', async () => {
    const res = await tb.token(KEY, { credential: 'wrong' });
    const text = await res.text();
    shown.push(text);
    assert.equal(res.status, 502, text);
    assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    const body = JSON.parse(text) as Record<string, any>;
    assert.equal(body.code, 'idp_rejected');
    assert.equal(body.idp_error, 'invalid_client');
    assert.ok(body.hint.includes(join(dir.path, 'wrong-secret')), body.hint);
    assert.match(body.hint, /client secret/);
    assert.deepEqual(
      idp.seen.filter((s) => s.clientId === 'wrong-client').map((s) => s.status),
      [401],
      'no previous secret: no retry',
    );
  });

  test('/readyz and the diagnostics page describe each secret by its file, never by its value', async () => {
    const ready = await readyz(tb);
    assert.equal(ready.status, 'ok');
    const basic = ready.checks.client_authentication.find((c: any) => c.credential === 'basic');
    assert.equal(basic.kind, 'clientSecret');
    assert.equal(basic.status, 'ok');
    assert.equal(basic.file, join(dir.path, 'basic-secret'));
    assert.ok(!Number.isNaN(Date.parse(basic.modified_at)));
    for (const id of ['basic', 'post', 'special', 'wrong']) {
      const res = await fetch(`${tb.url}/v1/diagnostics/credentials/${id}`, { headers: { authorization: `Bearer ${DIAGNOSTICS_KEY}` } });
      const text = await res.text();
      shown.push(text);
      assert.equal(res.status, 200, text);
      const auth = JSON.parse(text).client_authentication;
      assert.equal(auth.kind, 'clientSecret');
      assert.equal(auth.file, join(dir.path, `${id}-secret`));
    }
    const post = JSON.parse(shown.at(-3)!).client_authentication;
    assert.deepEqual([post.method, post.length], ['client_secret_post', secrets.post.length]);
  });
});

describe('secret rotation under load', () => {
  test('the file (a Secret volume swap), then the IdP: the new secret is used at once, refused ones are retried with the old, zero failures', async () => {
    const volume = join(dir.path, 'rotating');
    writeSecretVolume(volume, { 'client-secret': `${secrets.rotateA}\n` }, 1);
    const tb = await startTestBroker(
      brokerConfig([{ id: 'rotating', provider: 'oidc', clientId: 'rotating-client', tokenEndpoint: idp.tokenEndpoint, clientSecret: { file: join(volume, 'client-secret') }, scopes: ROTATION_SCOPES }]),
      dir.path,
    );
    const load = new Load(tb, 'rotating');
    const attemptsFor = (scopes: string[]) => scopes.map((scope) => idp.seen.filter((s) => s.scope === scope).map((s) => [s.secret, s.status]));
    try {
      const before = await load.exchanges(6);
      assert.deepEqual(attemptsFor(before), before.map(() => [[secrets.rotateA, 200]]));

      // The new secret reaches the pod before the IdP has it.
      writeSecretVolume(volume, { 'client-secret': `${secrets.rotateB}\n` }, 2);
      await waitFor('the new secret to be loaded', () => tb.logs.text.includes('client secret reloaded'));
      const lagging = await load.exchanges(6);
      assert.deepEqual(
        attemptsFor(lagging),
        lagging.map(() => [
          [secrets.rotateB, 401],
          [secrets.rotateA, 200],
        ]),
        'the new secret first, then once the previous one',
      );

      // The IdP catches up.
      idp.setSecret('rotating-client', secrets.rotateB);
      const after = await load.exchanges(6);
      assert.deepEqual(attemptsFor(after), after.map(() => [[secrets.rotateB, 200]]));

      // A file emptied by mistake keeps the last good secret in use and shows in /readyz.
      writeSecretVolume(volume, { 'client-secret': '' }, 3);
      const ready = await waitFor('the reload problem', async () => {
        const r = await readyz(tb);
        return r.checks.client_authentication[0].reload_problem ? r : undefined;
      });
      assert.equal(ready.status, 'degraded');
      assert.match(ready.checks.client_authentication[0].reload_problem, /clientSecret\.file: .*client-secret is empty/);
      const meanwhile = await load.exchanges(4);
      assert.deepEqual(attemptsFor(meanwhile), meanwhile.map(() => [[secrets.rotateB, 200]]));
    } finally {
      await load.stop();
      shown.push(tb.logs.text);
      await tb.close();
    }
    assert.ok(load.answers.length >= 22);
    assert.deepEqual(
      load.answers.filter((a) => a.status !== 200),
      [],
      'zero failed requests',
    );
  });

  test('previousFile while the IdP still has the old secret (a restart mid-rotation): retried with it, zero failures, until the IdP catches up', async () => {
    const volume = join(dir.path, 'lagging');
    writeSecretVolume(volume, { 'client-secret': `${secrets.laggingB}\n`, 'client-secret.old': `${secrets.laggingA}\n` }, 1);
    const tb = await startTestBroker(
      brokerConfig([
        {
          id: 'lagging',
          provider: 'oidc',
          clientId: 'lagging-client',
          tokenEndpoint: idp.tokenEndpoint,
          clientSecret: { file: join(volume, 'client-secret'), previousFile: join(volume, 'client-secret.old'), method: 'client_secret_post' },
          scopes: ROTATION_SCOPES,
        },
      ]),
      dir.path,
    );
    const load = new Load(tb, 'lagging');
    const attemptsFor = (scopes: string[]) => scopes.map((scope) => idp.seen.filter((s) => s.clientId === 'lagging-client' && s.scope === scope).map((s) => [s.via, s.secret, s.status]));
    try {
      const lagging = await load.exchanges(8);
      assert.deepEqual(
        attemptsFor(lagging),
        lagging.map(() => [
          ['post', secrets.laggingB, 401],
          ['post', secrets.laggingA, 200],
        ]),
      );
      idp.setSecret('lagging-client', secrets.laggingB);
      const caughtUp = await load.exchanges(8);
      assert.deepEqual(attemptsFor(caughtUp), caughtUp.map(() => [['post', secrets.laggingB, 200]]));
      const ready = await readyz(tb);
      assert.equal(ready.status, 'ok');
      assert.equal(ready.checks.client_authentication[0].previous_file, join(volume, 'client-secret.old'));
    } finally {
      await load.stop();
      shown.push(tb.logs.text);
      await tb.close();
    }
    assert.deepEqual(
      load.answers.filter((a) => a.status !== 200),
      [],
      'zero failed requests',
    );
    assert.match(shown.at(-1)!, /refused right after a rotation: retrying once with the previous secret/);
  });
});

describe('Entra ID (the stand-in): the secret as the client_secret form field, v2 through msal-node and v1', () => {
  let entra: EntraStandIn;
  let tb: TestBroker;
  const apps = { v2: '5a0c2f6e-0000-4000-8000-000000000002', v1: '5a0c2f6e-0000-4000-8000-000000000001', wrong: '5a0c2f6e-0000-4000-8000-00000000000a', expired: '5a0c2f6e-0000-4000-8000-00000000000e' };
  const credential = (id: string, clientId: string, extra: Record<string, unknown>) => ({
    id,
    provider: 'entra',
    tenantId: TEST_TENANT,
    clientId,
    authorityHost: entra.url,
    clientSecret: { file: `${id}-secret` },
    scopes: ['https://analysis.windows.net/powerbi/api/.default'],
    ...extra,
  });

  before(async () => {
    entra = await startEntraStandIn();
    entra.addApp({ tenantId: TEST_TENANT, clientId: apps.v2, secrets: [SPECIAL_SECRET] });
    entra.addApp({ tenantId: TEST_TENANT, clientId: apps.v1, secrets: [secrets.entraV1] });
    entra.addApp({ tenantId: TEST_TENANT, clientId: apps.wrong, secrets: [secrets.entraRegistered] });
    entra.addApp({ tenantId: TEST_TENANT, clientId: apps.expired, secrets: [{ value: secrets.entraExpired, expiresAt: new Date(Date.now() - 86_400_000) }] });
    dir.write('entra-v2-secret', `${SPECIAL_SECRET}\n`);
    dir.write('entra-v1-secret', `${secrets.entraV1}\n`);
    dir.write('entra-wrong-secret', `${secrets.entraWrong}\n`);
    dir.write('entra-expired-secret', `${secrets.entraExpired}\n`);
    tb = await startTestBroker(
      brokerConfig([
        credential('entra-v2', apps.v2, {}),
        credential('entra-v1', apps.v1, { endpointVersion: 'v1' }),
        credential('entra-wrong', apps.wrong, {}),
        credential('entra-expired', apps.expired, {}),
      ]),
      dir.path,
    );
  });
  after(async () => {
    shown.push(tb.logs.text);
    await tb.close();
    await entra.close();
  });

  for (const [id, path] of [
    ['entra-v2', '/oauth2/v2.0/token'],
    ['entra-v1', '/oauth2/token'],
  ] as const) {
    test(`${id}: a token, with the secret sent as the client_secret form field (method left out)`, async () => {
      const res = await tb.token(KEY, { credential: id });
      assert.equal(res.status, 200, await res.clone().text());
      const seen = entra.requests.filter((r) => r.path.endsWith(path)).at(-1)!;
      assert.deepEqual([seen.clientAuth, seen.outcome], [['client_secret_post'], 200]);
      assert.equal(seen.form.client_id, id === 'entra-v2' ? apps.v2 : apps.v1);
    });
  }

  test('a wrong secret: 502 with AADSTS7000215 and a hint naming the secret file (not the catalogue\'s "send an assertion")', async () => {
    const res = await tb.token(KEY, { credential: 'entra-wrong' });
    const text = await res.text();
    shown.push(text);
    assert.equal(res.status, 502, text);
    const body = JSON.parse(text) as Record<string, any>;
    assert.deepEqual([body.code, body.idp_error], ['idp_rejected', 'AADSTS7000215']);
    assert.ok(body.hint.includes(join(dir.path, 'entra-wrong-secret')), body.hint);
    assert.doesNotMatch(body.hint, /client assertion/);
  });

  test('an expired secret: AADSTS7000222, and the hint says so', async () => {
    const res = await tb.token(KEY, { credential: 'entra-expired' });
    const text = await res.text();
    shown.push(text);
    const body = JSON.parse(text) as Record<string, any>;
    assert.deepEqual([res.status, body.idp_error], [502, 'AADSTS7000222']);
    assert.match(body.hint, /expired/);
    assert.ok(body.hint.includes(join(dir.path, 'entra-expired-secret')));
  });

  test('rotation under load, the way Entra allows: new secret added, file swapped, old secret removed; and a file ahead of the portal: zero failures', async () => {
    const clientId = '5a0c2f6e-0000-4000-8000-0000000000f0';
    const resources = Array.from({ length: 40 }, (_, i) => `https://r${i}.rotation.test`);
    for (const r of resources) entra.knownResources.add(r);
    entra.addApp({ tenantId: TEST_TENANT, clientId, secrets: [secrets.entraA] });
    const volume = join(dir.path, 'entra-rotating');
    writeSecretVolume(volume, { 'client-secret': `${secrets.entraA}\n` }, 1);
    const rotating = await startTestBroker(
      brokerConfig([{ ...credential('entra-rotating', clientId, {}), clientSecret: { file: join(volume, 'client-secret') }, scopes: resources.map((r) => `${r}/.default`) }]),
      dir.path,
    );
    const load = new Load(rotating, 'entra-rotating', resources.map((r) => `${r}/.default`));
    const outcomes = (scopes: string[]) => scopes.map((scope) => entra.requests.filter((r) => r.form.scope?.includes(scope)).map((r) => r.aadsts ?? r.outcome));
    let reloads = 0;
    const reloaded = () => rotating.logs.text.split('client secret reloaded').length - 1 > reloads;
    try {
      assert.deepEqual(outcomes(await load.exchanges(5)), Array(5).fill([200]));
      // Both secrets at Entra, then the file: every exchange succeeds at once.
      entra.addSecret(clientId, secrets.entraB);
      writeSecretVolume(volume, { 'client-secret': `${secrets.entraB}\n` }, 2);
      await waitFor('the new secret to be loaded', reloaded);
      reloads++;
      entra.removeSecret(clientId, secrets.entraA);
      assert.deepEqual(outcomes(await load.exchanges(5)), Array(5).fill([200]));
      // The next secret reaches the file before it is added at Entra: the one in use before is
      // tried once after AADSTS7000215, until Entra has the new one.
      writeSecretVolume(volume, { 'client-secret': `${secrets.entraC}\n` }, 3);
      await waitFor('the next secret to be loaded', reloaded);
      assert.deepEqual(outcomes(await load.exchanges(5)), Array(5).fill([7000215, 200]));
      entra.addSecret(clientId, secrets.entraC);
      assert.deepEqual(outcomes(await load.exchanges(5)), Array(5).fill([200]));
    } finally {
      await load.stop();
      shown.push(rotating.logs.text);
      await rotating.close();
    }
    assert.deepEqual(
      load.answers.filter((a) => a.status !== 200),
      [],
      'zero failed requests',
    );
  });
});

describe('an IdP that echoes the request in its error', () => {
  test('the secret it quotes (in the form body or the Authorization header) never reaches the problem body or the logs', async () => {
    const echoed: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const description = `rejected: ${body} authorization=${req.headers.authorization ?? ''}`;
        echoed.push(description);
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_request', error_description: description }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
    const tb = await startTestBroker(
      brokerConfig([
        { id: 'echo-basic', provider: 'oidc', clientId: 'echo-client', tokenEndpoint: url, clientSecret: { file: dir.write('echo-basic-secret', secrets.echoBasic) } },
        { id: 'echo-post', provider: 'oidc', clientId: 'echo-client', tokenEndpoint: url, clientSecret: { file: dir.write('echo-post-secret', secrets.echoPost), method: 'client_secret_post' } },
      ]),
      dir.path,
    );
    try {
      for (const id of ['echo-basic', 'echo-post']) {
        const res = await tb.token(KEY, { credential: id });
        const text = await res.text();
        shown.push(text);
        assert.equal(res.status, 502, text);
        assert.equal(JSON.parse(text).idp_error, 'invalid_request');
      }
      // The echo did carry them: what the broker showed was scrubbed, not merely never sent.
      assert.ok(echoed[0]!.includes(basicAuthorization('echo-client', secrets.echoBasic)));
      assert.ok(echoed[1]!.includes(`client_secret=${formUrlEncode(secrets.echoPost)}`));
    } finally {
      shown.push(tb.logs.text);
      await tb.close();
      server.closeAllConnections();
      server.close();
    }
  });
});

test('nothing the broker showed (logs, problem bodies, /readyz, diagnostics) carries a secret, raw or encoded', () => {
  const everything = shown.join('\n');
  assert.ok(shown.length > 10, 'the runs above were captured');
  const clientOf: Record<string, string> = { basic: 'basic-client', wrong: 'wrong-client', rotateA: 'rotating-client', rotateB: 'rotating-client', echoBasic: 'echo-client' };
  for (const [name, value] of [...Object.entries(secrets), ['special', SPECIAL_SECRET] as const]) {
    const forms = new Set([value, encodeURIComponent(value), formUrlEncode(value), basicAuthorization(clientOf[name] ?? 'special-client', value).slice(6)]);
    for (const form of forms) assert.ok(!everything.includes(form), `the ${name} secret (${form === value ? 'as is' : 'encoded'}) was shown`);
  }
});
