// Every bad configuration gets a message naming its path and a non-zero exit, both from the loader
// and from `token-broker config check`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { stringify } from 'yaml';
import { loadConfigFile, validateConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/kernel/errors.ts';
import { createThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';
import { sha256Hex, tempDir, writeCredentialFiles, type TempDir } from '../helpers/credential-files.ts';

const TENANT = '00000000-0000-0000-0000-0000000000aa';
const CLIENT = '11111111-1111-1111-1111-1111111111bb';

let dir: TempDir;

function baseConfig(): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port: 8080 },
    credentials: [
      {
        id: 'powerbi',
        provider: 'entra',
        tenantId: TENANT,
        clientId: CLIENT,
        certificate: { certFile: 'good.crt', keyFile: 'good.key' },
        scopes: ['https://analysis.windows.net/powerbi/api/.default'],
      },
      {
        id: 'cdr',
        provider: 'oidc',
        preset: 'keycloak',
        issuer: 'https://idp.example/realms/ehr',
        clientId: 'cdr-broker',
        certificate: { certFile: 'good.crt', keyFile: 'good.key' },
        scopes: ['openehr'],
      },
    ],
    callers: [{ id: 'jobs', apiKeySha256: sha256Hex('k'), allow: [{ credential: 'powerbi' }] }],
  };
}

function problemsOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected the configuration to be refused');
}

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env, PORT: '', HOST: '', REDIS_URL: '' },
    timeout: 60_000,
  });
}

before(async () => {
  dir = tempDir();
  await writeCredentialFiles(dir, 'good');
  await writeCredentialFiles(dir, 'weak', { rsaBits: 1024 });
  await writeCredentialFiles(dir, 'expired', { notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  await writeCredentialFiles(dir, 'ec', { keyType: 'ec', keyFormat: 'sec1' });
  const other = await createThrowawayCertificate();
  dir.write('mismatch.crt', (await createThrowawayCertificate()).certPem);
  dir.write('mismatch.key', other.keyPem);
  dir.write('garbage.key', 'not a key\n');
});

after(() => dir.remove());

describe('config validation', () => {
  test('a good config loads, with defaults filled in', () => {
    const loaded = validateConfig(baseConfig(), dir.path);
    const powerbi = loaded.config.credentials[0]!;
    assert.equal(powerbi.provider, 'entra');
    assert.equal(powerbi.provider === 'entra' && powerbi.cloud, 'public');
    assert.equal(powerbi.provider === 'entra' && powerbi.endpointVersion, 'v2');
    const material = (id: string) => {
      const m = loaded.materials.get(id)!;
      assert.equal(m.kind, 'certificate');
      return m as Extract<typeof m, { kind: 'certificate' }>;
    };
    assert.equal(material('powerbi').profile.algorithm, 'PS256');
    assert.equal(material('powerbi').profile.thumbprint, 'x5t#S256');
    assert.equal(material('cdr').profile.algorithm, 'RS256');
    assert.deepEqual(loaded.config.callers[0]!.allow[0]!.scopes, ['*']);
  });

  const cases: { name: string; mutate: (c: any) => void; path: string; message: RegExp }[] = [
    { name: 'unknown top-level key', mutate: (c) => (c.serverr = {}), path: 'serverr', message: /unknown key/ },
    { name: 'unknown nested key', mutate: (c) => (c.credentials[0].certificate.cerFile = 'x'), path: 'credentials[0].certificate.cerFile', message: /unknown key/ },
    { name: 'bad credential id', mutate: (c) => (c.credentials[0].id = 'Power BI'), path: 'credentials[0].id', message: /a-z0-9/ },
    { name: 'duplicate credential id', mutate: (c) => (c.credentials[1].id = 'powerbi'), path: 'credentials[1].id', message: /duplicate/ },
    { name: 'client id not a GUID', mutate: (c) => (c.credentials[0].clientId = 'my-app'), path: 'credentials[0].clientId', message: /GUID/ },
    { name: 'tenant common', mutate: (c) => (c.credentials[0].tenantId = 'common'), path: 'credentials[0].tenantId', message: /tenant GUID/ },
    { name: 'unknown cloud', mutate: (c) => (c.credentials[0].cloud = 'germany'), path: 'credentials[0].cloud', message: /./ },
    { name: 'unknown provider', mutate: (c) => (c.credentials[0].provider = 'adfs'), path: 'credentials[0].provider', message: /./ },
    { name: 'oidc without issuer or tokenEndpoint', mutate: (c) => delete c.credentials[1].issuer, path: 'credentials[1].issuer', message: /issuer.*tokenEndpoint/ },
    { name: 'tokenParams overriding client_assertion', mutate: (c) => (c.credentials[1].tokenParams = { client_assertion: 'x' }), path: 'credentials[1].tokenParams.client_assertion', message: /cannot be overridden/ },
    { name: 'assertion lifetime over 10 minutes', mutate: (c) => (c.credentials[0].assertion = { lifetimeSeconds: 3600 }), path: 'credentials[0].assertion.lifetimeSeconds', message: /600/ },
    { name: 'no scopes on entra', mutate: (c) => (c.credentials[0].scopes = []), path: 'credentials[0].scopes', message: /at least one scope/ },
    { name: 'certificate with neither PEM nor PFX', mutate: (c) => (c.credentials[0].certificate = {}), path: 'credentials[0].certificate.certFile', message: /required/ },
    { name: 'missing certificate file', mutate: (c) => (c.credentials[0].certificate.certFile = 'nope.crt'), path: 'credentials[0].certificate.certFile', message: /file not found/ },
    { name: 'missing key file', mutate: (c) => (c.credentials[0].certificate.keyFile = 'nope.key'), path: 'credentials[0].certificate.keyFile', message: /file not found/ },
    { name: 'key that does not match its certificate', mutate: (c) => (c.credentials[0].certificate = { certFile: 'mismatch.crt', keyFile: 'mismatch.key' }), path: 'credentials[0].certificate.keyFile', message: /does not match/ },
    { name: 'RSA key under 2048 bits', mutate: (c) => (c.credentials[0].certificate = { certFile: 'weak.crt', keyFile: 'weak.key' }), path: 'credentials[0].certificate.keyFile', message: /1024 bits.*2048/ },
    { name: 'expired certificate', mutate: (c) => (c.credentials[0].certificate = { certFile: 'expired.crt', keyFile: 'expired.key' }), path: 'credentials[0].certificate.certFile', message: /expired on/ },
    { name: 'unparseable key', mutate: (c) => (c.credentials[0].certificate.keyFile = 'garbage.key'), path: 'credentials[0].certificate.keyFile', message: /no PEM private key/ },
    { name: 'PS256 with an EC key', mutate: (c) => (c.credentials[1].certificate = { certFile: 'ec.crt', keyFile: 'ec.key' }, c.credentials[1].assertion = { algorithm: 'PS256' }), path: 'credentials[1].assertion.algorithm', message: /EC key/ },
    { name: 'EC certificate on an entra credential', mutate: (c) => (c.credentials[0].certificate = { certFile: 'ec.crt', keyFile: 'ec.key' }), path: 'credentials[0].certificate', message: /only RSA/ },
    { name: 'caller key hash not hex', mutate: (c) => (c.callers[0].apiKeySha256 = 'secret'), path: 'callers[0].apiKeySha256', message: /SHA-256/ },
    { name: 'caller allowed an unknown credential', mutate: (c) => (c.callers[0].allow = [{ credential: 'nope' }]), path: 'callers[0].allow[0].credential', message: /no credential with id 'nope'/ },
    { name: 'two callers with the same key', mutate: (c) => c.callers.push({ id: 'twin', apiKeySha256: sha256Hex('k') }), path: 'callers[1].apiKeySha256', message: /already used/ },
    { name: 'port out of range', mutate: (c) => (c.server.port = 70000), path: 'server.port', message: /./ },
  ];

  for (const c of cases) {
    test(`refuses: ${c.name}`, () => {
      const config = baseConfig();
      c.mutate(config);
      const problems = problemsOf(() => validateConfig(config, dir.path));
      const match = problems.find((p) => p.path === c.path);
      assert.ok(match, `no problem at ${c.path}; got ${JSON.stringify(problems)}`);
      assert.match(match.message, c.message);
    });
  }

  test('every problem is reported at once', () => {
    const config = baseConfig() as any;
    config.serverr = 1;
    config.credentials[0].clientId = 'x';
    config.callers[0].allow = [{ credential: 'nope' }];
    const paths = problemsOf(() => validateConfig(config, dir.path)).map((p) => p.path);
    assert.ok(paths.includes('serverr') && paths.includes('credentials[0].clientId'), JSON.stringify(paths));
  });

  test('certificate problems of several credentials are reported together', () => {
    const config = baseConfig() as any;
    config.credentials[0].certificate = { certFile: 'weak.crt', keyFile: 'weak.key' };
    config.credentials[1].certificate = { certFile: 'expired.crt', keyFile: 'expired.key' };
    const paths = problemsOf(() => validateConfig(config, dir.path)).map((p) => p.path);
    assert.deepEqual(paths.sort(), ['credentials[0].certificate.keyFile', 'credentials[1].certificate.certFile']);
  });

  test('independent problems in every part are reported together: schema, cross-field and files', () => {
    const config = baseConfig() as any;
    config.credentials[0].tenantId = 'common';
    config.credentials[0].certificate.certFile = 'nope.crt';
    config.credentials[1].provider = 'oicd';
    config.credentials[1].certificate = { certFile: 'weak.crt', keyFile: 'weak.key' };
    config.credentials[1].timeoutMs = 5;
    config.callers.push({ id: 'jobs', apiKeySha256: sha256Hex('other'), allow: [{ credential: 'nope' }, { credential: 'cdr' }] });
    config.callers.push({ id: 'k8s', jwt: { issuer: 'https://kubernetes.default.svc', audience: 'token-broker', subject: 'system:serviceaccount:bi:*', jwksFile: 'absent-jwks.json' } });
    config.cache = { redisUrl: 'http://not-redis', tlsCaFile: 'absent-ca.pem' };
    const problems = problemsOf(() => validateConfig(config, dir.path));
    const at = (path: string) => problems.filter((p) => p.path === path).map((p) => p.message);
    assert.match(at('credentials[0].tenantId').join(), /'common' is a multi-tenant alias.*tenant GUID/);
    assert.match(at('credentials[0].certificate.certFile').join(), /file not found/);
    assert.match(at('credentials[1].provider').join(), /unknown provider 'oicd': must be one of 'entra', 'oidc' \(did you mean 'oidc'\?\)/);
    assert.match(at('credentials[1].certificate.keyFile').join(), /1024 bits/);
    assert.match(at('credentials[1].timeoutMs').join(), /100/);
    assert.match(at('callers[1].id').join(), /duplicate caller id 'jobs'/);
    assert.match(at('callers[1].allow[0].credential').join(), /no credential with id 'nope'/);
    assert.deepEqual(at('callers[1].allow[1].credential'), [], "'cdr' is configured, even with a broken provider");
    assert.match(at('callers[2].jwt.jwksFile').join(), /file not found or not readable/);
    assert.match(at('cache.redisUrl').join(), /redis:\/\//);
    assert.match(at('cache.tlsCaFile').join(), /file not found or not readable/);
    const keys = problems.map((p) => `${p.path}: ${p.message}`);
    assert.equal(new Set(keys).size, keys.length, `no problem twice: ${JSON.stringify(keys)}`);
  });

  test('a provider that is missing or not a string gets the allowed values too', () => {
    const config = baseConfig() as any;
    delete config.credentials[0].provider;
    config.credentials[1].provider = 42;
    const problems = problemsOf(() => validateConfig(config, dir.path));
    assert.match(problems.find((p) => p.path === 'credentials[0].provider')!.message, /^required: one of 'entra', 'oidc'$/);
    assert.match(problems.find((p) => p.path === 'credentials[1].provider')!.message, /^unknown provider 42: must be one of 'entra', 'oidc'$/);
  });

  test('schemaOnly: no file is read, schema and cross-field problems still refuse', () => {
    const config = baseConfig() as any;
    for (const c of config.credentials) c.certificate = { certFile: '/nonexistent/tls.crt', keyFile: '/nonexistent/tls.key' };
    config.cache = { redisUrl: 'rediss://redis:6380', encryptionKeyFile: '/nonexistent/cache-key', tlsCaFile: '/nonexistent/ca.crt' };
    const loaded = validateConfig(config, dir.path, {}, '(test)', new Date(), { schemaOnly: true });
    assert.equal(loaded.config.credentials.length, 2);
    assert.equal(loaded.materials.size, 0);
    config.callers[0].allow = [{ credential: 'nope' }];
    config.credentials[0].tenantId = 'organizations';
    const problems = problemsOf(() => validateConfig(config, dir.path, {}, '(test)', new Date(), { schemaOnly: true }));
    assert.deepEqual(problems.map((p) => p.path).sort(), ['callers[0].allow[0].credential', 'credentials[0].tenantId']);
  });

  test('Redis topologies: exactly one, every bad field named, passwords only from files', () => {
    const withCache = (cache: unknown, env: Record<string, string> = {}) => {
      const config = baseConfig() as any;
      config.cache = cache;
      return problemsOf(() => validateConfig(config, dir.path, env)).map((p) => `${p.path}: ${p.message}`);
    };
    const password = dir.write('redis-password', 'secret\n');
    // Accepted, with what the factory needs read from the files.
    const ok = baseConfig() as any;
    ok.cache = { redisCluster: { nodes: ['redis://10.0.0.1:6379', 'rediss://[::1]:6380'], passwordFile: password, username: 'broker', tls: {} } };
    assert.deepEqual(validateConfig(ok, dir.path).config.cache.redisCluster!.nodes.length, 2);
    ok.cache = { redisSentinel: { sentinels: ['10.0.0.1:26379', 'sentinel-2.redis:26379'], masterName: 'mymaster', passwordFile: password, sentinelPasswordFile: password } };
    assert.equal(validateConfig(ok, dir.path).config.cache.redisSentinel!.masterName, 'mymaster');

    assert.deepEqual(withCache({ redisUrl: 'redis://a:6379', redisCluster: { nodes: ['redis://b:6379'] } }), [
      'cache: set exactly one of cache.redisUrl, cache.redisCluster and cache.redisSentinel (found cache.redisUrl and cache.redisCluster)',
    ]);
    assert.deepEqual(withCache({ redisCluster: { nodes: ['redis://b:6379'] } }, { REDIS_URL: 'redis://a:6379' }), [
      'env.REDIS_URL: sets a standalone Redis, but cache.redisCluster is configured: unset REDIS_URL or remove cache.redisCluster',
    ]);
    assert.match(withCache({ redisCluster: { nodes: ['redis://:pw@b:6379'] } }).join('\n'), /^cache\.redisCluster\.nodes\[0\]: must be redis:\/\/host:port .*without credentials/m);
    assert.match(withCache({ redisCluster: { nodes: [] } }).join('\n'), /^cache\.redisCluster\.nodes: name at least one seed node/m);
    assert.match(withCache({ redisCluster: { nodes: ['redis://b'] } }).join('\n'), /^cache\.redisCluster\.nodes\[0\]: must be redis:\/\/host:port/m);
    assert.match(withCache({ redisSentinel: { sentinels: ['s:26379'] } }).join('\n'), /^cache\.redisSentinel\.masterName: /m);
    assert.match(withCache({ redisSentinel: { sentinels: ['s'], masterName: 'm' } }).join('\n'), /^cache\.redisSentinel\.sentinels\[0\]: must be host:port/m);
    assert.match(withCache({ redisSentinel: { sentinels: ['s:1'], masterName: 'm', password: 'inline' } }).join('\n'), /^cache\.redisSentinel\.password: unknown key/m);
    assert.match(withCache({ redisCluster: { nodes: ['redis://b:1'], passwordFile: '/nonexistent/pw' } }).join('\n'), /^cache\.redisCluster\.passwordFile: file not found or not readable/m);
    const sentinelFiles = withCache({ redisSentinel: { sentinels: ['s:1'], masterName: 'm', sentinelPasswordFile: '/nonexistent/pw', tls: { caFile: '/nonexistent/ca' } } }).join('\n');
    assert.match(sentinelFiles, /^cache\.redisSentinel\.sentinelPasswordFile: file not found/m);
    assert.match(sentinelFiles, /^cache\.redisSentinel\.tls\.caFile: file not found/m);
    assert.match(withCache({ redisCluster: { nodes: ['redis://b:1'] }, tlsCaFile: password }).join('\n'), /^cache\.tlsCaFile: is for a rediss:\/\/ cache\.redisUrl/m);
    assert.match(withCache({ redisUrl: 'redis://a:1', keyPrefix: 'tb{x}:' }).join('\n'), /^cache\.keyPrefix: must not contain \{ or \}/m);
  });

  test('env overrides HOST, PORT and LOG_LEVEL; a bad PORT is named', () => {
    const loaded = validateConfig(baseConfig(), dir.path, { HOST: '127.0.0.2', PORT: '9999', LOG_LEVEL: 'warn' });
    assert.equal(loaded.config.server.host, '127.0.0.2');
    assert.equal(loaded.config.server.port, 9999);
    assert.equal(loaded.config.server.logLevel, 'warn');
    const problems = problemsOf(() => validateConfig(baseConfig(), dir.path, { PORT: 'eighty' }));
    assert.equal(problems[0]!.path, 'env.PORT');
  });

  test('server or cache that is not a mapping, with env overrides set: a problem naming it, not a crash', () => {
    const env = { HOST: '127.0.0.2', REDIS_URL: 'redis://127.0.0.1:6379' };
    const problems = problemsOf(() => validateConfig({ ...baseConfig(), server: 'x', cache: 5 }, dir.path, env));
    assert.deepEqual(problems.map((p) => p.path).sort(), ['cache', 'server']);
  });

  test('a missing file and broken YAML are reported with the path and line', () => {
    assert.match(problemsOf(() => loadConfigFile(`${dir.path}/absent.yaml`))[0]!.message, /config file not found/);
    const file = dir.write('broken.yaml', 'server:\n  port: [1,\n');
    assert.match(problemsOf(() => loadConfigFile(file))[0]!.message, /YAML error at line \d/);
    const dup = dir.write('dup.yaml', 'server: {}\nserver: {}\n');
    assert.match(problemsOf(() => loadConfigFile(dup))[0]!.message, /YAML error/);
  });

  test('relative certificate paths resolve against the config file folder', () => {
    const file = dir.write('relative.yaml', stringify(baseConfig()));
    const loaded = loadConfigFile(file);
    const material = loaded.materials.get('powerbi')!;
    assert.equal(material.kind === 'certificate' && material.certificate.files[0], `${dir.path}/good.crt`);
  });
});

describe('token-broker config check', () => {
  test('prints a summary and exits 0 for a good file', () => {
    const file = dir.write('good.yaml', stringify(baseConfig()));
    const run = cli(['config', 'check', file]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^ok: /);
    assert.match(run.stdout, /powerbi: entra v2 public PS256 cert [0-9A-F]{40}/);
  });

  test('prints every problem with its path and exits 1', () => {
    const config = baseConfig() as any;
    config.credentials[0].certificate = { certFile: 'mismatch.crt', keyFile: 'mismatch.key' };
    config.credentials[1].certificate = { certFile: 'weak.crt', keyFile: 'weak.key' };
    config.bogus = true;
    const file = dir.write('bad.yaml', stringify(config));
    const run = cli(['config', 'check', file]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /bogus: unknown key/);
    assert.match(run.stderr, /credentials\[0\]\.certificate\.keyFile: the private key does not match/);
    assert.match(run.stderr, /credentials\[1\]\.certificate\.keyFile: RSA key of 1024 bits/);
    assert.doesNotMatch(run.stderr, /at .*\.ts:\d+/, 'no stack trace');
  });

  test('several independent problems in one file: all listed with their paths, exit 1', () => {
    const config = baseConfig() as any;
    config.credentials[0].tenantId = 'common';
    config.credentials[0].certificate.certFile = 'nope.crt';
    config.credentials[1].provider = 'keycloak';
    config.callers[0].allow = [{ credential: 'nope' }];
    const file = dir.write('many.yaml', stringify(config));
    const run = cli(['config', 'check', file]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /credentials\[0\]\.tenantId: 'common' is a multi-tenant alias/);
    assert.match(run.stderr, /credentials\[0\]\.certificate\.certFile: file not found/);
    assert.match(run.stderr, /credentials\[1\]\.provider: unknown provider 'keycloak': must be one of 'entra', 'oidc'/);
    assert.match(run.stderr, /callers\[0\]\.allow\[0\]\.credential: no credential with id 'nope'/);
    assert.doesNotMatch(run.stderr, /at .*\.ts:\d+/, 'no stack trace');
  });

  test('keys in an HSM or Key Vault: each missing or conflicting field named', () => {
    const pin = dir.write('hsm.pin', '1234\n');
    const module = dir.write('libfake-pkcs11.so', 'not really a library');
    const withCertificate = (certificate: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
      const config = baseConfig() as any;
      config.credentials[0].certificate = certificate;
      Object.assign(config.credentials[0], extra);
      return config;
    };
    const problems = (config: unknown) => problemsOf(() => validateConfig(config, dir.path)).map((p) => `${p.path}: ${p.message}`).join('\n');
    const pkcs11 = { module, tokenLabel: 'broker', keyLabel: 'rsa', pinFile: pin };
    const loaded = validateConfig(withCertificate({ certFile: 'good.crt', pkcs11 }), dir.path);
    assert.equal(loaded.config.credentials[0]!.certificate!.pkcs11!.sessions, 2);
    const material = loaded.materials.get('powerbi');
    assert.equal(material?.kind === 'certificate' && material.keyLocation, "key in PKCS#11 token 'broker', label 'rsa'");
    assert.equal(material?.kind === 'certificate' && material.certificate.privateKey, undefined, 'no private key read');
    const vault = { keyId: 'https://contoso.vault.azure.net/keys/powerbi' };
    assert.equal(validateConfig(withCertificate({ certFile: 'good.crt', keyVault: vault }), dir.path).config.credentials[0]!.certificate!.keyVault!.authentication, 'managedIdentity');

    assert.match(problems(withCertificate({ certFile: 'good.crt', keyFile: 'good.key', pkcs11 })), /^credentials\[0\]\.certificate\.pkcs11: give one place for the key: keyFile and pkcs11 both name one/m);
    assert.match(problems(withCertificate({ pkcs11 })), /^credentials\[0\]\.certificate\.certFile: required with pkcs11/m);
    // Without certFile the certificate is the vault's: read when the broker starts, not by config check.
    const vaultOnly = validateConfig(withCertificate({ keyVault: vault }), dir.path);
    assert.equal(vaultOnly.materials.get('powerbi'), undefined);
    assert.match(problems(withCertificate({ certFile: 'good.crt', pkcs11: { ...pkcs11, slot: 3 } })), /^credentials\[0\]\.certificate\.pkcs11\.tokenLabel: give exactly one of tokenLabel or slot/m);
    assert.match(problems(withCertificate({ certFile: 'good.crt', pkcs11: { module, tokenLabel: 'b', pinFile: pin } })), /^credentials\[0\]\.certificate\.pkcs11\.keyLabel: give exactly one of keyLabel or keyId/m);
    assert.match(problems(withCertificate({ certFile: 'good.crt', pkcs11: { ...pkcs11, pin: '1234' } })), /^credentials\[0\]\.certificate\.pkcs11\.pin: unknown key/m);
    assert.match(problems(withCertificate({ certFile: 'good.crt', pkcs11: { ...pkcs11, pinFile: '/nonexistent/pin' } })), /^credentials\[0\]\.certificate\.pkcs11\.pinFile: file not found/m);
    assert.match(problems(withCertificate({ certFile: 'good.crt', keyVault: { keyId: 'http://contoso.vault.azure.net/keys/k' } })), /^credentials\[0\]\.certificate\.keyVault\.keyId: must be https:\/\/<vault>\/keys\/<name>/m);
    assert.match(problems(withCertificate({ certFile: 'good.crt', keyVault: { ...vault, authentication: { credential: 'powerbi' } } })), /keyVault\.authentication\.credential: a credential cannot get its own Key Vault token/);
    assert.match(problems(withCertificate({ certFile: 'good.crt', keyVault: { ...vault, authentication: { credential: 'nope' } } })), /keyVault\.authentication\.credential: no credential with id 'nope'/);
  });

  test('delegated credentials: each missing or conflicting field named', () => {
    const keys = dir.write('delegated-keys', `${'a'.repeat(64)}\n`);
    const delegated = (credential: Record<string, unknown>, cache: Record<string, unknown> = { encryptionKeyFile: keys, stateFile: join(dir.path, 'state.enc') }, signInCaller = true) => {
      const config = baseConfig() as any;
      config.cache = cache;
      config.credentials.push({ id: 'cdr-user', provider: 'oidc', issuer: 'https://idp.example/realms/ehr', clientId: 'connector', publicClient: true, scopes: ['openehr'], ...credential });
      config.callers.push({ id: 'admins', apiKeySha256: 'b'.repeat(64), signIn: signInCaller });
      return config;
    };
    const problems = (config: unknown) => problemsOf(() => validateConfig(config, dir.path)).map((p) => `${p.path}: ${p.message}`).join('\n');
    const code = { flow: 'authorization_code', redirectUri: 'https://broker.example/v1/sign-in/callback' };
    const loaded = validateConfig(delegated({ signIn: code }), dir.path);
    const credential = loaded.config.credentials.find((c) => c.id === 'cdr-user')!;
    assert.equal(credential.signIn?.keepAliveSeconds, 1200);
    assert.equal(loaded.materials.get('cdr-user')?.kind, 'publicClient');
    assert.equal(validateConfig(delegated({ signIn: { flow: 'device_code' } }), dir.path).config.credentials.length, 3);

    assert.match(problems(delegated({ signIn: { flow: 'authorization_code' } })), /^credentials\[2\]\.signIn\.redirectUri: required for authorization_code/m);
    assert.match(problems(delegated({ signIn: { ...code, redirectUri: 'https://broker.example/callback' } })), /^credentials\[2\]\.signIn\.redirectUri: must end in \/v1\/sign-in\/callback/m);
    assert.match(problems(delegated({ signIn: { flow: 'device_code', redirectUri: code.redirectUri } })), /^credentials\[2\]\.signIn\.redirectUri: the device code flow has no redirect/m);
    assert.match(problems(delegated({ signIn: { flow: 'password' } })), /^credentials\[2\]\.signIn\.flow: /m);
    assert.match(problems(delegated({})), /^credentials\[2\]\.publicClient: a public client can only hold delegated tokens/m);
    assert.match(problems(delegated({ signIn: code, clientSecret: { file: keys } })), /^credentials\[2\]\.clientSecret: a public client \(publicClient: true\) has no client authentication/m);
    assert.match(problems(delegated({ signIn: code, issuer: undefined, tokenEndpoint: 'https://idp.example/token' })), /^credentials\[2\]\.issuer: a delegated credential needs issuer/m);
    assert.match(problems(delegated({ signIn: code }, { stateFile: join(dir.path, 'state.enc') })), /^cache\.encryptionKeyFile: required with a delegated credential/m);
    assert.match(problems(delegated({ signIn: code }, { encryptionKeyFile: keys })), /^cache\.stateFile: required with a delegated credential and the in-memory cache/m);
    assert.match(problems(delegated({ signIn: code }, { encryptionKeyFile: keys, stateFile: '/nonexistent/dir/state.enc' })), /^cache\.stateFile: directory not found or not writable: \/nonexistent\/dir/m);
    assert.match(problems(delegated({ signIn: code }, { encryptionKeyFile: keys, redisUrl: 'redis://r:6379', stateFile: join(dir.path, 's') })), /^cache\.stateFile: is for the in-memory cache/m);
    assert.match(problems(delegated({ signIn: code }, undefined, false)), /^callers: no caller has signIn: true/m);
    const entra = baseConfig() as any;
    entra.cache = { encryptionKeyFile: keys, stateFile: join(dir.path, 'state.enc') };
    entra.credentials[0].signIn = { ...code };
    entra.credentials[0].endpointVersion = 'v1';
    entra.callers.push({ id: 'admins', apiKeySha256: 'b'.repeat(64), signIn: true });
    assert.match(problems(entra), /^credentials\[0\]\.endpointVersion: delegated credentials use the v2\.0 endpoints/m);
  });

  test('--schema-only passes a chart-rendered config whose files do not exist, and still fails on schema problems', () => {
    const config = baseConfig() as any;
    for (const c of config.credentials) c.certificate = { certFile: '/etc/token-broker/certs/tls.crt', keyFile: '/etc/token-broker/certs/tls.key' };
    config.cache = { redisUrl: 'rediss://redis:6380', tlsCaFile: '/etc/token-broker/redis-ca/ca.crt' };
    const file = dir.write('rendered.yaml', stringify(config));
    const full = cli(['config', 'check', file]);
    assert.equal(full.status, 1, 'without the flag the missing files are problems');
    assert.match(full.stderr, /credentials\[0\]\.certificate\.certFile: file not found/);
    const ok = cli(['config', 'check', '--schema-only', file]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: .*rendered\.yaml \(schema only: certificate, key and other files not read\)$/m);
    assert.match(ok.stdout, /^ {2}powerbi: entra v2 public$/m);
    config.credentials[0].tenantId = 'common';
    config.callers[0].allow = [{ credential: 'nope' }];
    const bad = cli(['config', 'check', dir.write('rendered-bad.yaml', stringify(config)), '--schema-only']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /credentials\[0\]\.tenantId: /);
    assert.match(bad.stderr, /callers\[0\]\.allow\[0\]\.credential: /);
    assert.doesNotMatch(bad.stderr, /file not found/);
    assert.equal(cli(['config', 'check', '--schema-onyl', file]).status, 2);
  });

  test('a missing file exits 1 and usage errors exit 2', () => {
    const run = cli(['config', 'check', `${dir.path}/nope.yaml`]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /config file not found/);
    assert.equal(cli(['config', 'check']).status, 2);
    assert.equal(cli(['frobnicate']).status, 2);
  });

  test('serve with a bad config exits 1 naming the path', () => {
    const config = baseConfig() as any;
    config.credentials[0].certificate = { certFile: 'expired.crt', keyFile: 'expired.key' };
    const file = dir.write('serve-bad.yaml', stringify(config));
    const run = cli(['serve'], { BROKER_CONFIG: file });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /credentials\[0\]\.certificate\.certFile: certificate expired on/);
  });
});
