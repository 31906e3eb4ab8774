// The Helm chart (helm/token-broker), rendered by the real helm binary and checked three ways:
//   1. values: values.yaml and every ci/*-values.yaml pass helm's own JSON-schema validation of
//      values.schema.json (`helm lint --strict`), and unsafe or misspelt values are refused;
//   2. objects: every rendered object is checked against the Kubernetes API models generated from
//      the Kubernetes OpenAPI spec (Debian's python3-kubernetes, test/helpers/k8s-models-check.py),
//      then for hardening and for wiring (selectors, ports, mounts ↔ config file paths);
//   3. config: the rendered ConfigMap is accepted by the broker's own validateConfig: its schema
//      and cross-field rules alone (schemaOnly, as `config check --schema-only` does), then with
//      throw-away certificates, client secrets, federated tokens, Redis passwords and CAs written
//      where the Secrets and tokens would be mounted.
// helm and python3-kubernetes come from scripts/install-chart-tools.sh. In CI (CI=true) a missing
// tool is a failure. Locally the chart tests are skipped with a loud message instead, because the
// tools need a ~36 MB npm download and a root apt-get that `npm ci` does not do.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { parse, parseAllDocuments } from 'yaml';
import { validateConfig } from '../../src/config/load.ts';
import { callerSchema, configSchema, entraCredentialSchema, oidcCredentialSchema } from '../../src/config/schema.ts';
import { assertionSchema, certificateSchema, keyVaultSchema, pkcs11Schema } from '../../src/client-auth/certificate/certificate-schema.ts';
import { clientSecretSchema } from '../../src/client-auth/client-secret-schema.ts';
import { federatedTokenSchema } from '../../src/client-auth/federated-token-schema.ts';
import { redisClusterSchema, redisSentinelSchema } from '../../src/cache/redis/redis-schema.ts';
import { ConfigError } from '../../src/kernel/errors.ts';
import { createThrowawayCertificate, type ThrowawayCertificate } from '../../src/sandbox/throwaway-certificate.ts';

const execFileAsync = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = join(ROOT, 'helm', 'token-broker');
const CI_VALUES = readdirSync(join(CHART, 'ci'))
  .filter((f) => f.endsWith('-values.yaml'))
  .sort();
const PYTHON = '/usr/bin/python3';
const MODELS_CHECK = join(ROOT, 'test', 'helpers', 'k8s-models-check.py');
const MOUNT_ROOT = '/etc/token-broker/';
/** Where the AKS workload identity webhook mounts the federated token (outside the chart's mounts). */
const AZURE_IDENTITY_TOKEN_FILE = '/var/run/secrets/azure/tokens/azure-identity-token';
const ENTRA_TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [key: string]: any };

function findHelm(): string | undefined {
  const candidates = [process.env.HELM, join(ROOT, '.tools', 'bin', 'helm'), ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'helm'))];
  return candidates.find((c): c is string => !!c && existsSync(c) && spawnSync(c, ['version', '--short'], { encoding: 'utf8' }).status === 0);
}

const helmBin = findHelm();
const hasKubeModels = spawnSync(PYTHON, ['-c', 'import kubernetes.client'], { encoding: 'utf8' }).status === 0;
const missing = [...(helmBin ? [] : ['helm']), ...(hasKubeModels ? [] : ['python3-kubernetes'])];
const inCi = process.env.CI === 'true';
if (missing.length > 0 && !inCi) {
  console.warn(
    `\n*** helm-chart.test.ts: SKIPPING the chart rendering tests: ${missing.join(' and ')} not found. ` +
      `Run scripts/install-chart-tools.sh (CI does, and fails without them). ***\n`,
  );
}
const skip = missing.length > 0 && !inCi ? `${missing.join(', ')} not installed (scripts/install-chart-tools.sh)` : false;

const helmHome = mkdtempSync(join(tmpdir(), 'token-broker-helm-'));
process.on('exit', () => rmSync(helmHome, { recursive: true, force: true }));

function helm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env = { ...process.env, HELM_CACHE_HOME: helmHome, HELM_CONFIG_HOME: helmHome, HELM_DATA_HOME: helmHome };
  const r = spawnSync(helmBin!, args, { encoding: 'utf8', env, maxBuffer: 16 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeTemp(name: string, content: string): string {
  const file = join(helmHome, name);
  writeFileSync(file, content);
  return file;
}

function render(valuesFiles: string[]): K8sObject[] {
  const r = helm(['template', 'tb', CHART, '--namespace', 'bi', ...valuesFiles.flatMap((f) => ['-f', f])]);
  assert.equal(r.status, 0, `helm template ${valuesFiles.map((f) => basename(f)).join(' ')} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => {
      assert.deepEqual(d.errors, [], 'rendered output is valid YAML');
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

const ciValues = (name: string): any => parse(readFileSync(join(CHART, 'ci', name), 'utf8'));

const one = (objects: K8sObject[], kind: string): K8sObject => {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!;
};

const isSubset = (sub: Record<string, string>, full: Record<string, string> | undefined) => Object.entries(sub).every(([k, v]) => full?.[k] === v);

/** A JWT-shaped token as a kubelet would project it (unsigned: the broker only forwards it). */
function federatedTokenJwt(now: Date): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const iat = Math.floor(now.getTime() / 1000);
  const claims = { iss: 'https://oidc.example/issuer/', sub: 'system:serviceaccount:bi:token-broker', aud: [ENTRA_TOKEN_EXCHANGE_AUDIENCE], iat, nbf: iat, exp: iat + 3600 };
  return `${b64({ alg: 'RS256', kid: 'k1' })}.${b64(claims)}.${randomBytes(256).toString('base64url')}`;
}

/** Writes throw-away material where the chart mounts Secrets and tokens, and points the config at it. */
async function materialize(config: any, root: string, now: Date): Promise<any> {
  const mapped = structuredClone(config);
  const local = (path: string) => {
    assert.ok(path.startsWith(MOUNT_ROOT), `${path} is under ${MOUNT_ROOT}`);
    const file = join(root, path.slice(MOUNT_ROOT.length));
    mkdirSync(dirname(file), { recursive: true });
    return file;
  };
  const passphrase = 'placeholder-passphrase';
  for (const credential of mapped.credentials) {
    if (credential.clientSecret) {
      const s = credential.clientSecret;
      // As `echo "$secret" > file` writes it: one trailing newline, which is not part of the secret.
      writeFileSync((s.file = local(s.file)), `${randomBytes(24).toString('base64url')}\n`);
      if (s.previousFile) writeFileSync((s.previousFile = local(s.previousFile)), `${randomBytes(24).toString('base64url')}\n`);
      continue;
    }
    if (credential.federatedToken) {
      const f = credential.federatedToken;
      // The AKS webhook's path lies outside the chart's mount root.
      const file = f.file === AZURE_IDENTITY_TOKEN_FILE ? join(root, 'projected', f.file) : local(f.file);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync((f.file = file), federatedTokenJwt(now));
      continue;
    }
    // A public client (a delegated credential) has no material to write.
    if (credential.publicClient) continue;
    const c = credential.certificate;
    const cert = await createThrowawayCertificate({ commonName: credential.id });
    if (c.passphraseFile) writeFileSync((c.passphraseFile = local(c.passphraseFile)), `${passphrase}\n`);
    if (c.pkcs11 || c.keyVault) {
      // The key stays in the HSM or the vault: a certificate, and for an HSM its PIN and library.
      assert.equal(c.keyFile, undefined, `${credential.id}: no keyFile beside pkcs11 or keyVault`);
      writeFileSync((c.certFile = local(c.certFile)), cert.certPem);
      if (c.pkcs11) {
        writeFileSync((c.pkcs11.pinFile = local(c.pkcs11.pinFile)), '1234\n');
        // The vendor's library is in the image (outside the chart's mounts): a stand-in file.
        const module = join(root, 'image', c.pkcs11.module);
        mkdirSync(dirname(module), { recursive: true });
        writeFileSync((c.pkcs11.module = module), 'not a real PKCS#11 library\n');
      }
      if (c.keyVault?.caFile) writeFileSync((c.keyVault.caFile = local(c.keyVault.caFile)), (await createThrowawayCertificate({ commonName: 'vault-ca', isCa: true })).certPem);
    } else if (c.pfxFile) {
      writeFileSync((c.pfxFile = local(c.pfxFile)), pfx(cert, passphrase));
    } else {
      writeFileSync((c.certFile = local(c.certFile)), cert.certPem);
      const keyPem = c.passphraseFile
        ? (createPrivateKey(cert.keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string)
        : cert.keyPem;
      writeFileSync((c.keyFile = local(c.keyFile)), keyPem);
    }
  }
  if (mapped.cache?.encryptionKeyFile) writeFileSync((mapped.cache.encryptionKeyFile = local(mapped.cache.encryptionKeyFile)), `${randomBytes(32).toString('base64')}\n`);
  const redisCa = async () => (await createThrowawayCertificate({ commonName: 'redis-ca', isCa: true })).certPem;
  if (mapped.cache?.tlsCaFile) writeFileSync((mapped.cache.tlsCaFile = local(mapped.cache.tlsCaFile)), await redisCa());
  // A cluster's or sentinel's password files and CA, where the chart mounts their Secrets.
  for (const section of [mapped.cache?.redisCluster, mapped.cache?.redisSentinel]) {
    if (!section) continue;
    for (const field of ['passwordFile', 'sentinelPasswordFile'] as const) {
      if (section[field]) writeFileSync((section[field] = local(section[field])), `${randomBytes(24).toString('base64url')}\n`);
    }
    if (section.tls?.caFile) writeFileSync((section.tls.caFile = local(section.tls.caFile)), await redisCa());
  }
  // The projected service-account files kubeApiAccess mounts (outside the broker's own mount root).
  for (const caller of mapped.callers ?? []) {
    for (const field of ['jwksCaFile', 'jwksTokenFile', 'jwksFile'] as const) {
      const path = caller.jwt?.[field];
      if (!path) continue;
      const file = join(root, 'projected', path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, field === 'jwksFile' ? '{"keys":[]}' : 'placeholder\n');
      caller.jwt[field] = file;
    }
  }
  return mapped;
}

function pfx(cert: ThrowawayCertificate, passphrase: string): Buffer {
  const key = forge.pki.privateKeyFromPem(createPrivateKey(cert.keyPem).export({ type: 'pkcs1', format: 'pem' }) as string);
  const p12 = forge.pkcs12.toPkcs12Asn1(key, [forge.pki.certificateFromPem(cert.certPem)], passphrase, { algorithm: '3des' });
  return Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary');
}

/** Config fields the chart fills from Secrets instead of passing through from values. */
const CHART_MANAGED = new Set([
  'config.cache.redisUrl',
  'config.cache.encryptionKeyFile',
  'config.cache.tlsCaFile',
  'config.metrics',
  // redis.cluster and redis.sentinel take Secrets (redis.passwordSecret, sentinelPasswordSecret, caSecret) instead.
  'redis.cluster.passwordFile',
  'redis.sentinel.passwordFile',
  'redis.sentinel.sentinelPasswordFile',
  'redis.cluster.tls.caFile',
  'redis.sentinel.tls.caFile',
]);

/** The chart's own Redis mounts, and where the test expects the password files. */
const REDIS_PASSWORD_FILE = '/etc/token-broker/redis-password/redis-password';
const REDIS_SENTINEL_PASSWORD_FILE = '/etc/token-broker/redis-sentinel-password/sentinel-password';
const REDIS_CA_FILE = '/etc/token-broker/redis-ca/ca.crt';

/**
 * Broker config fields the chart carries but the broker does not accept (none today). The test
 * accepts a ConfigError only when every problem is one of these.
 */
const NOT_YET_SUPPORTED: RegExp[] = [];

describe('values.schema.json mirrors the broker config schema', () => {
  const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
  const defs = schema.definitions;
  const props = (o: any) => new Set(Object.keys(o.properties));
  const unwrap = (s: any) => (typeof s.unwrap === 'function' ? s.unwrap() : s);

  const pairs: Array<[string, string[], Set<string>]> = [
    ['config.server', Object.keys(unwrap(configSchema.shape.server).shape), props(schema.properties.config.properties.server)],
    ['config.cache', Object.keys(unwrap(configSchema.shape.cache).shape), props(schema.properties.config.properties.cache)],
    ['entra credential', Object.keys(entraCredentialSchema.shape), props(defs.entraCredential)],
    ['oidc credential', Object.keys(oidcCredentialSchema.shape), props(defs.oidcCredential)],
    ['assertion', Object.keys(assertionSchema.shape), props(defs.assertion)],
    ['certificate (file form)', Object.keys(certificateSchema.shape), props(defs.certificateFiles)],
    // The chart adds pinSecret and caSecret (Secrets it mounts and turns into pinFile and caFile).
    ['certificate.pkcs11', Object.keys(pkcs11Schema.shape), props(defs.pkcs11)],
    ['certificate.keyVault', Object.keys(keyVaultSchema.shape), props(defs.keyVault)],
    ['client secret (file form)', Object.keys(clientSecretSchema.shape), props(defs.clientSecretFiles)],
    ['federated token (file form)', Object.keys(federatedTokenSchema.shape), props(defs.federatedTokenFile)],
    ['caller', Object.keys(callerSchema.shape), props(defs.caller)],
    ['config', Object.keys(configSchema.shape), props(schema.properties.config)],
    // The broker's own blocks, passed through config.cache, and the chart's redis.cluster / redis.sentinel.
    ['config.cache.redisCluster', Object.keys(redisClusterSchema.shape), props(defs.redisCluster)],
    ['config.cache.redisSentinel', Object.keys(redisSentinelSchema.shape), props(defs.redisSentinel)],
    ['config.cache.redisCluster.tls', Object.keys(unwrap(redisClusterSchema.shape.tls).shape), props(defs.redisTlsFiles)],
    ['config.cache.redisSentinel.tls', Object.keys(unwrap(redisSentinelSchema.shape.tls).shape), props(defs.redisTlsFiles)],
    ['redis.cluster', Object.keys(redisClusterSchema.shape), props(schema.properties.redis.properties.cluster)],
    ['redis.sentinel', Object.keys(redisSentinelSchema.shape), props(schema.properties.redis.properties.sentinel)],
    ['redis.cluster.tls', Object.keys(unwrap(redisClusterSchema.shape.tls).shape), props(defs.redisTlsValues)],
    ['redis.sentinel.tls', Object.keys(unwrap(redisSentinelSchema.shape.tls).shape), props(defs.redisTlsValues)],
  ];
  for (const [where, brokerKeys, chartKeys] of pairs) {
    test(`${where}: every broker field can be set through the chart`, () => {
      const absent = brokerKeys.filter((k) => !chartKeys.has(k) && !CHART_MANAGED.has(`${where}.${k}`));
      assert.deepEqual(absent, [], `add ${absent.join(', ')} to helm/token-broker/values.schema.json (${where}) and, if it needs a Secret, to the templates`);
    });
  }
});

describe('helm chart', { skip }, () => {
  const rendered = new Map<string, K8sObject[]>();
  let modelCheck: { problems: string[]; checked: string[]; unchecked: string[] };

  before(async () => {
    if (missing.length > 0) throw new Error(`${missing.join(' and ')} not found: run scripts/install-chart-tools.sh before the tests (CI must)`);
    for (const file of CI_VALUES) rendered.set(file, render([join(CHART, 'ci', file)]));
    // One python process for every variant: importing the generated models takes most of its time.
    const child = execFileAsync(PYTHON, [MODELS_CHECK], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    child.child.stdin!.end(JSON.stringify(Object.fromEntries(rendered)));
    modelCheck = JSON.parse((await child).stdout);
  });

  test('there are ci values files for the main variants', () => {
    assert.deepEqual(CI_VALUES, [
      'auth0-client-secret-values.yaml',
      'delegated-values.yaml',
      'entra-keycloak-pfx-values.yaml',
      'hsm-key-vault-values.yaml',
      'minimal-values.yaml',
      'redis-cluster-values.yaml',
      'redis-hpa-values.yaml',
      'redis-sentinel-values.yaml',
      'workload-identity-values.yaml',
    ]);
  });

  test('values.yaml and every ci/*-values.yaml pass helm lint --strict (values.schema.json included)', () => {
    for (const args of [[], ...CI_VALUES.map((f) => ['-f', join(CHART, 'ci', f)])]) {
      const r = helm(['lint', '--strict', CHART, ...args]);
      assert.equal(r.status, 0, `helm lint ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
      assert.doesNotMatch(r.stdout + r.stderr, /don't meet the specifications/);
    }
  });

  test('the schema refuses unsafe, misspelt or secret-bearing values', () => {
    const minimal = join(CHART, 'ci', 'minimal-values.yaml');
    const entra = 'id: x, provider: entra, tenantId: 00000000-0000-0000-0000-000000000000, clientId: 11111111-1111-1111-1111-111111111111, scopes: [s]';
    const oidc = 'id: x, provider: oidc, issuer: "https://idp.example/", clientId: c';
    const bad: Array<[string, RegExp]> = [
      ['securityContext: { readOnlyRootFilesystem: false }', /readOnlyRootFilesystem/],
      ['securityContext: { allowPrivilegeEscalation: true }', /allowPrivilegeEscalation/],
      ['podSecurityContext: { runAsNonRoot: false }', /runAsNonRoot/],
      ['securityContext: { capabilities: { drop: [NET_RAW] } }', /capabilities/],
      ['replicaCont: 3', /replicaCont/],
      ['config: { cache: { redisUrl: "redis://:secret@redis:6379" } }', /redisUrl/],
      ['config: { server: { prot: 8080 } }', /prot/],
      ['image: { repository: r, tag: latest }', /tag/],
      ['resources: { limits: { memory: null } }', /memory/],
      ['config: { credentials: [{ id: x, provider: entra, tenantId: common, clientId: 11111111-1111-1111-1111-111111111111, scopes: [s], certificate: { existingSecret: x } }] }', /credentials/],
      ['config: { credentials: [{ id: x, provider: oidc, clientId: c, certificate: { existingSecret: x } }] }', /credentials/],
      ['config: { credentials: [{ id: x, provider: oidc, issuer: "https://i", clientId: c, certificate: { existingSecret: x, pfxKey: p, certKey: c } }] }', /credentials/],
      ['config: { callers: [{ id: nobody, allow: [] }] }', /callers/],
      // How a credential authenticates: exactly one of certificate, clientSecret, federatedToken.
      [`config: { credentials: [{ ${entra}, certificate: { existingSecret: a }, clientSecret: { existingSecret: b } }] }`, /subschemas 0, 1 matched/],
      [`config: { credentials: [{ ${entra} }] }`, /missing property 'federatedToken'/],
      [`config: { credentials: [{ ${entra}, clientSecret: { existingSecret: a, value: hunter2 } }] }`, /additional properties 'value' not allowed/],
      [`config: { credentials: [{ ${entra}, clientSecret: { existingSecret: a, method: client_secret_basic } }] }`, /method': value must be 'client_secret_post'/],
      [`config: { credentials: [{ ${oidc}, clientSecret: { existingSecret: a, method: client_secret_jwt } }] }`, /value must be one of 'client_secret_basic', 'client_secret_post'/],
      [`config: { credentials: [{ ${oidc}, clientSecret: { existingSecret: a, file: /s } }] }`, /additional properties 'file' not allowed/],
      [`config: { credentials: [{ ${entra}, federatedToken: { projected: { expirationSeconds: 300 } } }] }`, /minimum: got 300, want 600/],
      [`config: { credentials: [{ ${entra}, federatedToken: { azureWorkloadIdentity: true, file: /t } }] }`, /additional properties 'file' not allowed/],
      [`config: { credentials: [{ ${entra}, federatedToken: { azureWorkloadIdentity: false } }] }`, /azureWorkloadIdentity': value must be true/],
      [`config: { credentials: [{ ${oidc}, federatedToken: { azureWorkloadIdentity: true } }] }`, /additional properties 'azureWorkloadIdentity' not allowed/],
      [`config: { credentials: [{ ${oidc}, federatedToken: { projected: { expirationSeconds: 3600 } } }] }`, /missing property 'audience'/],
      // Redis topologies: credentials never in a seed URL or in the passed-through blocks.
      ['redis: { cluster: { nodes: ["redis://:hunter2@redis:6379"] } }', /cluster\/nodes\/0/],
      ['redis: { cluster: { nodes: ["redis://redis:6379/1"] } }', /cluster\/nodes\/0/],
      ['redis: { cluster: { nodes: ["redis:6379"] } }', /cluster\/nodes\/0/],
      ['redis: { sentinel: { sentinels: ["redis-sentinel"], masterName: m } }', /sentinel\/sentinels\/0/],
      ['redis: { cluster: { nodes: ["redis://redis:6379"], password: hunter2 } }', /additional properties 'password' not allowed/],
      ['config: { cache: { redisCluster: { nodes: ["redis://redis:6379"], password: hunter2 } } }', /additional properties 'password' not allowed/],
      ['config: { cache: { redisSentinel: { sentinels: ["redis:26379"] } } }', /missing property 'masterName'/],
      ['config: { cache: { redisCluster: { nodes: [] } } }', /redisCluster\/nodes/],
    ];
    for (const [override, where] of bad) {
      const r = helm(['template', 'tb', CHART, '-f', minimal, '-f', writeTemp('bad-values.yaml', override)]);
      assert.notEqual(r.status, 0, `accepted: ${override}`);
      assert.match(r.stderr, /don't meet the specifications of the schema/, override);
      assert.match(r.stderr, where, override);
    }
  });

  test('a client secret\'s previousKey must differ from its key', () => {
    const values = 'config: { credentials: [{ id: x, provider: oidc, issuer: "https://i", clientId: c, clientSecret: { existingSecret: s, key: k, previousKey: k } }] }';
    const r = helm(['template', 'tb', CHART, '-f', join(CHART, 'ci', 'minimal-values.yaml'), '-f', writeTemp('same-key.yaml', values)]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /config\.credentials\[0\]\.clientSecret\.previousKey: must differ from key \(k\)/);
  });

  test('federated tokens: projected defaults to the Entra audience, an operator\'s client-id annotation wins', () => {
    const entra = (id: string, clientId: string, federatedToken: string) =>
      `{ id: ${id}, provider: entra, tenantId: 00000000-0000-0000-0000-000000000000, clientId: ${clientId}, scopes: [s], federatedToken: ${federatedToken} }`;
    const values = [
      'config:',
      `  credentials: [${entra('a', '44444444-4444-4444-4444-444444444444', '{ projected: {} }')}, ${entra('b', '55555555-5555-5555-5555-555555555555', '{ azureWorkloadIdentity: true }')}]`,
      'serviceAccount: { annotations: { azure.workload.identity/client-id: 66666666-6666-6666-6666-666666666666, team: bi } }',
    ].join('\n');
    const objects = render([join(CHART, 'ci', 'minimal-values.yaml'), writeTemp('federated-defaults.yaml', values)]);
    const pod = one(objects, 'Deployment').spec.template.spec;
    const config = parse(one(objects, 'ConfigMap').data['config.yaml']);
    assert.deepEqual(config.credentials.map((c: any) => c.federatedToken), [{ file: '/etc/token-broker/credentials/a/token' }, { file: AZURE_IDENTITY_TOKEN_FILE }]);
    const mount = pod.containers[0].volumeMounts.find((m: any) => m.mountPath === '/etc/token-broker/credentials/a');
    const projected = pod.volumes.find((v: any) => v.name === mount.name);
    assert.deepEqual(projected.projected.sources, [{ serviceAccountToken: { path: 'token', audience: ENTRA_TOKEN_EXCHANGE_AUDIENCE, expirationSeconds: 3600 } }]);
    assert.deepEqual(one(objects, 'ServiceAccount').metadata.annotations, { 'azure.workload.identity/client-id': '66666666-6666-6666-6666-666666666666', team: 'bi' });
  });

  test('Redis: at most one topology, and nothing the chart would drop or the broker refuse', () => {
    const fails: Array<[string, RegExp]> = [
      [
        'redis: { existingSecret: r, cluster: { nodes: ["redis://redis:6379"] } }',
        /redis: set exactly one of redis\.existingSecret \(standalone\), redis\.cluster\.nodes \(cluster\) and redis\.sentinel\.sentinels \(sentinel\); found redis\.existingSecret and redis\.cluster\.nodes/,
      ],
      ['redis: { cluster: { nodes: ["redis://redis:6379"] }, sentinel: { sentinels: ["redis:26379"], masterName: m } }', /set exactly one of .*; found redis\.cluster\.nodes and redis\.sentinel\.sentinels/],
      ['redis: { existingSecret: r }\nconfig: { cache: { redisSentinel: { sentinels: ["redis:26379"], masterName: m } } }', /found redis\.existingSecret and config\.cache\.redisSentinel/],
      ['redis: { cluster: { nodes: ["redis://redis:6379"] } }\nconfig: { cache: { redisCluster: { nodes: ["redis://other:6379"] } } }', /found redis\.cluster\.nodes and config\.cache\.redisCluster/],
      ['redis: { sentinel: { sentinels: ["redis:26379"] } }', /redis\.sentinel\.masterName: required with redis\.sentinel\.sentinels/],
      ['redis: { sentinel: { masterName: m } }', /redis\.sentinel: masterName, username and tls apply to redis\.sentinel\.sentinels, which is empty/],
      ['redis: { cluster: { username: u } }', /redis\.cluster: username and tls apply to redis\.cluster\.nodes, which is empty/],
      ['redis: { existingSecret: r, passwordSecret: p }', /redis\.passwordSecret: for redis\.cluster or redis\.sentinel; a standalone server's password is part of its URL/],
      ['redis: { cluster: { nodes: ["redis://redis:6379"] }, sentinelPasswordSecret: p }', /redis\.sentinelPasswordSecret: for redis\.sentinel only/],
      ['redis: { caSecret: c }', /redis\.caSecret: no Redis is configured/],
      ['redis: { cluster: { nodes: ["redis://redis:6379"] }, caSecret: c }', /redis\.caSecret: a CA for TLS, but TLS to the cluster is off \(set redis\.cluster\.tls\.enabled\)/],
      ['redis: { sentinel: { sentinels: ["redis:26379"], masterName: m, tls: { serverName: s } } }', /redis\.sentinel\.tls\.serverName: TLS is off/],
      ['redis: { passwordSecret: p }\nconfig: { cache: { redisCluster: { nodes: ["redis://redis:6379"], passwordFile: /mnt/p } } }', /config\.cache\.redisCluster\.passwordFile: the password comes from redis\.passwordSecret; set only one/],
    ];
    for (const [values, message] of fails) {
      const r = helm(['template', 'tb', CHART, '-f', join(CHART, 'ci', 'minimal-values.yaml'), '-f', writeTemp('redis-topology.yaml', values)]);
      assert.notEqual(r.status, 0, `rendered: ${values}`);
      assert.doesNotMatch(r.stderr, /don't meet the specifications of the schema/, `${values}: the template refuses it, not the schema`);
      assert.match(r.stderr, message, values);
    }
  });

  test('Redis: a passed-through config.cache block gets the files of the Secrets the chart mounts', () => {
    const values = [
      'redis: { passwordSecret: tb-redis, caSecret: tb-redis-ca }',
      'config: { cache: { redisSentinel: { sentinels: ["redis:26379"], masterName: m, sentinelPasswordFile: /mnt/kv/sentinel-password, tls: { serverName: redis.cache } } } }',
    ].join('\n');
    const objects = render([join(CHART, 'ci', 'minimal-values.yaml'), writeTemp('redis-passthrough.yaml', values)]);
    const config = parse(one(objects, 'ConfigMap').data['config.yaml']);
    assert.deepEqual(config.cache.redisSentinel, {
      sentinels: ['redis:26379'],
      masterName: 'm',
      passwordFile: REDIS_PASSWORD_FILE,
      sentinelPasswordFile: '/mnt/kv/sentinel-password',
      tls: { serverName: 'redis.cache', caFile: REDIS_CA_FILE },
    });
    const c = one(objects, 'Deployment').spec.template.spec.containers[0];
    assert.ok(!c.env.some((e: any) => e.name === 'REDIS_URL'));
    assert.deepEqual(c.volumeMounts.filter((m: any) => m.name.startsWith('redis-')).map((m: any) => m.mountPath).sort(), ['/etc/token-broker/redis-ca', '/etc/token-broker/redis-password']);
  });

  test('the default values alone refuse to render: a credential is required', () => {
    const r = helm(['template', 'tb', CHART]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /config\.credentials: at least one credential is required/);
  });

  for (const file of CI_VALUES) {
    describe(file, () => {
      const objects = () => rendered.get(file)!;

      test('renders into Kubernetes objects that match the API models', () => {
        const kinds = objects().map((o) => o.kind).sort();
        const expected = ['ConfigMap', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount'];
        if (file.startsWith('redis-hpa')) expected.push('HorizontalPodAutoscaler', 'ServiceMonitor');
        assert.deepEqual(kinds, expected.sort());
        for (const o of objects()) {
          assert.match(o.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${o.kind} name`);
          assert.equal(o.metadata.labels?.['app.kubernetes.io/name'], 'token-broker', `${o.kind} labels`);
        }
        const mine = (list: string[]) => list.filter((entry) => entry.startsWith(`${file}: `));
        assert.deepEqual(mine(modelCheck.problems), [], 'fields and types as the Kubernetes API defines them');
        assert.equal(mine(modelCheck.checked).length + mine(modelCheck.unchecked).length, objects().length);
        assert.deepEqual(mine(modelCheck.unchecked), file.startsWith('redis-hpa') ? [`${file}: ServiceMonitor/tb-token-broker`] : []);
      });

      test('the Deployment is hardened, sized and probed', () => {
        const deployment = one(objects(), 'Deployment');
        const pod = deployment.spec.template.spec;
        const hpa = objects().find((o) => o.kind === 'HorizontalPodAutoscaler');
        if (hpa) {
          assert.equal(deployment.spec.replicas, undefined, 'the HPA owns the replica count');
          assert.ok(hpa.spec.minReplicas >= 2);
          assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name);
        } else {
          assert.ok(deployment.spec.replicas >= 2, 'two or more replicas');
        }
        assert.equal(pod.securityContext.runAsNonRoot, true);
        assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
        assert.equal(pod.automountServiceAccountToken, false);
        for (const key of ['hostNetwork', 'hostPID', 'hostIPC']) assert.ok(!pod[key], key);
        assert.ok(!pod.volumes.some((v: any) => v.hostPath), 'no hostPath volumes');
        assert.equal(pod.containers.length, 1);
        const c = pod.containers[0];
        assert.doesNotMatch(c.image, /:latest$/);
        assert.match(c.image, /(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$/, 'pinned tag or digest');
        assert.equal(c.securityContext.runAsNonRoot, true);
        assert.equal(c.securityContext.readOnlyRootFilesystem, true);
        assert.equal(c.securityContext.allowPrivilegeEscalation, false);
        assert.notEqual(c.securityContext.privileged, true);
        assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
        assert.equal(c.securityContext.capabilities.add, undefined);
        for (const [kind, name] of [['requests', 'cpu'], ['requests', 'memory'], ['limits', 'memory']]) {
          assert.ok(c.resources?.[kind!]?.[name!], `resources.${kind}.${name}`);
        }
        const portNames = c.ports.map((p: any) => p.name);
        for (const [probe, path] of [['livenessProbe', '/livez'], ['readinessProbe', '/readyz'], ['startupProbe', '/livez']]) {
          assert.equal(c[probe!]?.httpGet?.path, path, `${probe} on ${path}`);
          assert.ok(portNames.includes(c[probe!].httpGet.port), `${probe} port is a container port`);
        }
        const tmp = pod.volumes.find((v: any) => v.name === c.volumeMounts.find((m: any) => m.mountPath === '/tmp')?.name);
        assert.ok(tmp?.emptyDir, '/tmp is a writable emptyDir under the read-only root filesystem');
        for (const m of c.volumeMounts) {
          const v = pod.volumes.find((x: any) => x.name === m.name);
          if (v.secret || v.configMap || v.projected) assert.equal(m.readOnly, true, `${m.name} mounted read-only`);
          assert.equal(m.subPath, undefined, `${m.name}: no subPath, so rotated Secrets reach the pod`);
        }
        const sa = one(objects(), 'ServiceAccount');
        assert.equal(sa.automountServiceAccountToken, false);
        assert.equal(pod.serviceAccountName, sa.metadata.name);
      });

      test('selectors, ports and mounts are wired to each other and to the broker config', () => {
        const deployment = one(objects(), 'Deployment');
        const pod = deployment.spec.template.spec;
        const podLabels = deployment.spec.template.metadata.labels;
        const c = pod.containers[0];
        assert.ok(isSubset(deployment.spec.selector.matchLabels, podLabels), 'Deployment selector');
        const service = one(objects(), 'Service');
        assert.ok(isSubset(service.spec.selector, podLabels), 'Service selector');
        const portNames = c.ports.map((p: any) => p.name);
        for (const p of service.spec.ports) assert.ok(portNames.includes(p.targetPort), `Service port ${p.name} targets a container port`);
        assert.ok(isSubset(one(objects(), 'PodDisruptionBudget').spec.selector.matchLabels, podLabels), 'PDB selector');
        const np = one(objects(), 'NetworkPolicy');
        assert.ok(isSubset(np.spec.podSelector.matchLabels, podLabels), 'NetworkPolicy selector');
        for (const rule of np.spec.ingress) for (const p of rule.ports) assert.ok(portNames.includes(p.port), `NetworkPolicy admits container port ${p.port}`);
        const monitor = objects().find((o) => o.kind === 'ServiceMonitor');
        if (monitor) {
          assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
          assert.ok(isSubset(monitor.spec.selector.matchLabels, service.metadata.labels), 'ServiceMonitor selects the Service');
          for (const e of monitor.spec.endpoints) {
            assert.ok(service.spec.ports.some((p: any) => p.name === e.port), `ServiceMonitor endpoint port ${e.port}`);
            assert.equal(e.path, '/metrics');
            assert.match(e.interval, /^\d+(ms|s|m|h)$/);
          }
        }

        const configMap = one(objects(), 'ConfigMap');
        // Cluster seed nodes are URLs too, but never with credentials (the schema refuses them).
        assert.doesNotMatch(configMap.data['config.yaml'], /rediss?:\/\/[^\s'"]*@|BEGIN [A-Z ]*PRIVATE KEY/, 'no secrets in the ConfigMap');
        const config = parse(configMap.data['config.yaml']);
        assert.equal(config.cache?.redisUrl, undefined, 'the standalone URL comes from a Secret (env REDIS_URL)');
        const env = Object.fromEntries(c.env.map((e: any) => [e.name, e]));
        assert.equal(env.BROKER_CONFIG.value, '/etc/token-broker/config/config.yaml');
        const configMount = c.volumeMounts.find((m: any) => m.mountPath === dirname(env.BROKER_CONFIG.value));
        assert.equal(pod.volumes.find((v: any) => v.name === configMount.name).configMap.name, configMap.metadata.name);
        assert.match(deployment.spec.template.metadata.annotations['checksum/config'], /^[0-9a-f]{64}$/);
        const http = c.ports.find((p: any) => p.name === 'http');
        assert.equal(http.containerPort, config.server.port, 'container port = config.server.port');

        // Every file the broker config names is a key of a Secret mounted read-only at that folder
        // (federated tokens: below).
        const secretFiles = (cr: any): string[] =>
          cr.certificate
            ? // An HSM's PIN and a vault's CA too; the PKCS#11 module is in the image.
              [...Object.values(cr.certificate).filter((v) => typeof v === 'string'), cr.certificate.pkcs11?.pinFile, cr.certificate.keyVault?.caFile].filter(Boolean)
            : cr.clientSecret
              ? [cr.clientSecret.file, cr.clientSecret.previousFile].filter(Boolean)
              : [];
        const redisFiles = (section: any): string[] => (section ? [section.passwordFile, section.sentinelPasswordFile, section.tls?.caFile].filter(Boolean) : []);
        const files = [
          ...config.credentials.flatMap(secretFiles),
          ...['encryptionKeyFile', 'tlsCaFile'].map((k) => config.cache?.[k]).filter(Boolean),
          ...redisFiles(config.cache?.redisCluster),
          ...redisFiles(config.cache?.redisSentinel),
        ] as string[];
        assert.ok(files.length >= config.credentials.filter((cr: any) => !cr.federatedToken).length);
        for (const file of files) {
          const mount = c.volumeMounts.find((m: any) => m.mountPath === dirname(file));
          assert.ok(mount, `${file} is inside a volume mount`);
          const volume = pod.volumes.find((v: any) => v.name === mount.name);
          assert.ok(volume.secret, `${file} comes from a Secret`);
          assert.ok(volume.secret.items.some((i: any) => i.path === basename(file)), `the Secret volume projects ${basename(file)}`);
          assert.ok(volume.secret.defaultMode <= 0o440, `${file} is not world-readable`);
        }
        // A federated token is the projected service-account token the chart mounts there, with
        // the audience the IdP expects, or (AKS workload identity) the one the AKS webhook mounts
        // into pods with its label, for the client id on the service account.
        const sa = one(objects(), 'ServiceAccount');
        for (const cr of config.credentials.filter((x: any) => x.federatedToken)) {
          const tokenFile: string = cr.federatedToken.file;
          if (tokenFile === AZURE_IDENTITY_TOKEN_FILE) {
            assert.equal(podLabels['azure.workload.identity/use'], 'true', `${cr.id}: the pod asks the AKS webhook for the token`);
            assert.equal(deployment.spec.selector.matchLabels['azure.workload.identity/use'], undefined, 'not part of the selector');
            assert.match(sa.metadata.annotations?.['azure.workload.identity/client-id'] ?? '', /^[0-9a-f-]{36}$/, 'the service account names a client id');
            assert.ok(!c.volumeMounts.some((m: any) => tokenFile.startsWith(`${m.mountPath}/`)), 'the chart mounts nothing over the webhook\'s token');
            continue;
          }
          const mount = c.volumeMounts.find((m: any) => m.mountPath === dirname(tokenFile));
          assert.ok(mount, `${tokenFile} is inside a volume mount`);
          assert.equal(mount.readOnly, true);
          const volume = pod.volumes.find((v: any) => v.name === mount.name);
          const source = volume.projected?.sources?.find((x: any) => x.serviceAccountToken)?.serviceAccountToken;
          assert.ok(source, `${tokenFile} is a projected service-account token`);
          assert.equal(source.path, basename(tokenFile));
          const wanted = ciValues(file).config.credentials.find((x: any) => x.id === cr.id).federatedToken.projected;
          assert.equal(source.audience, wanted.audience ?? ENTRA_TOKEN_EXCHANGE_AUDIENCE, `${cr.id}: the token's audience`);
          assert.equal(source.expirationSeconds, wanted.expirationSeconds ?? 3600);
          assert.ok(source.expirationSeconds >= 600, 'Kubernetes refuses projected tokens shorter than 10 minutes');
          assert.ok(volume.projected.defaultMode <= 0o440, `${tokenFile} is not world-readable`);
        }
        // A Key Vault key reached with workload identity needs the webhook as well.
        if (!config.credentials.some((x: any) => x.federatedToken?.file === AZURE_IDENTITY_TOKEN_FILE || x.certificate?.keyVault?.authentication === 'workloadIdentity')) {
          assert.equal(podLabels['azure.workload.identity/use'], undefined, 'no AKS webhook label without a credential that needs it');
        }
        if (env.REDIS_URL) {
          assert.ok(env.REDIS_URL.valueFrom.secretKeyRef.name, 'REDIS_URL from a Secret');
          assert.equal(env.REDIS_URL.value, undefined);
        }
        // Egress to Redis exactly when the cache has a topology; the sentinels' port only with sentinels.
        const topology = env.REDIS_URL ? 'standalone' : config.cache?.redisCluster ? 'cluster' : config.cache?.redisSentinel ? 'sentinel' : undefined;
        const values = ciValues(file);
        const redisPorts = new Set<number>(values.networkPolicy?.egress?.redis?.ports ?? [6379]);
        const sentinelPorts = new Set<number>(values.networkPolicy?.egress?.redis?.sentinelPorts ?? [26379]);
        const redisRules = np.spec.egress.filter((rule: any) => rule.ports.some((p: any) => redisPorts.has(p.port)));
        if (!topology) {
          assert.deepEqual(redisRules, [], 'no egress to Redis without one');
        } else {
          assert.equal(redisRules.length, 1, `one egress rule to Redis (${topology})`);
          const ports = redisRules[0].ports.map((p: any) => p.port);
          const expected = topology === 'sentinel' ? new Set([...redisPorts, ...sentinelPorts]) : redisPorts;
          assert.deepEqual(ports.sort(), [...expected].sort(), `Redis ports (${topology})`);
          if (values.networkPolicy?.egress?.redis?.to) assert.deepEqual(redisRules[0].to, values.networkPolicy.egress.redis.to);
        }
        if (config.metrics) assert.ok(c.ports.some((p: any) => p.name === 'metrics' && p.containerPort === config.metrics.port));
      });

      test('the broker accepts the rendered config', async () => {
        const configMap = one(objects(), 'ConfigMap');
        const config = parse(configMap.data['config.yaml']);
        const now = new Date();
        const root = mkdtempSync(join(tmpdir(), 'token-broker-chart-'));
        try {
          const env = one(objects(), 'Deployment').spec.template.spec.containers[0].env.some((e: any) => e.name === 'REDIS_URL')
            ? { REDIS_URL: 'rediss://default:placeholder@redis.bi.svc:6379/0' }
            : {};
          // What `config check --schema-only` checks: the field names and rules, no files.
          const schemaOnly = validateConfig(config, root, env, `${file} ConfigMap`, now, { schemaOnly: true });
          assert.equal(schemaOnly.config.credentials.length, config.credentials.length);
          const local = await materialize(config, root, now);
          try {
            const loaded = validateConfig(local, root, env, `${file} ConfigMap`, now);
            assert.equal(loaded.config.credentials.length, config.credentials.length);
            if (env.REDIS_URL) assert.equal(loaded.config.cache.redisUrl, env.REDIS_URL);
            if (config.cache.redisCluster || config.cache.redisSentinel) assert.equal(loaded.config.cache.redisUrl, undefined);
          } catch (err) {
            if (!(err instanceof ConfigError)) throw err;
            const unexpected = err.problems.filter((p) => !NOT_YET_SUPPORTED.some((re) => re.test(p.path)));
            assert.deepEqual(unexpected, [], `problems beyond the fields this broker version does not support yet:\n${err.message}`);
            assert.ok(file.startsWith('redis-hpa'), `only the redis-hpa variant carries not-yet-supported fields:\n${err.message}`);
          }
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
        if (file.startsWith('redis-hpa')) {
          // Fields filled in by the chart: present with the shape it promises.
          assert.deepEqual(config.metrics, { port: 9090 });
          assert.equal(config.cache.encryptionKeyFile, '/etc/token-broker/cache-key/cache-key');
          assert.equal(config.cache.tlsCaFile, REDIS_CA_FILE);
          assert.deepEqual([config.cache.redisCluster, config.cache.redisSentinel], [undefined, undefined], 'standalone: the URL alone');
          const gateway = config.callers.find((x: any) => x.id === 'gateway');
          assert.deepEqual(Object.keys(gateway.jwt).sort(), ['audience', 'issuer', 'jwksCaFile', 'jwksTokenFile', 'jwksUri', 'subject']);
          assert.equal(gateway.jwt.audience, 'token-broker', 'jwt callers default to callerTokens.audience');
          assert.match(config.callers.find((x: any) => x.id === 'azure-sdk-jobs').identityHeaderSha256, /^[0-9a-f]{64}$/);
        }
        const container = one(objects(), 'Deployment').spec.template.spec.containers[0];
        const pod = one(objects(), 'Deployment').spec.template.spec;
        const secretAt = (path: string) => {
          const mount = container.volumeMounts.find((m: any) => m.mountPath === dirname(path));
          return pod.volumes.find((v: any) => v.name === mount?.name)?.secret;
        };
        if (file.startsWith('redis-cluster')) {
          assert.deepEqual(config.cache.redisCluster, {
            nodes: [0, 1, 2].map((i) => `rediss://redis-cluster-${i}.redis-cluster-headless.cache.svc.cluster.local:6379`),
            username: 'token-broker',
            passwordFile: REDIS_PASSWORD_FILE,
            tls: { serverName: 'redis-cluster.cache.svc.cluster.local', caFile: REDIS_CA_FILE },
          });
          assert.equal(secretAt(REDIS_PASSWORD_FILE).secretName, 'token-broker-redis-cluster');
          assert.equal(config.cache.encryptionKeyFile, '/etc/token-broker/cache-key/cache-key');
          assert.deepEqual([config.cache.tlsCaFile, config.cache.redisSentinel], [undefined, undefined], 'the CA goes inside redisCluster');
          assert.ok(!container.env.some((e: any) => e.name === 'REDIS_URL'), 'no REDIS_URL beside redisCluster (the broker refuses both)');
        }
        if (file.startsWith('redis-sentinel')) {
          assert.deepEqual(config.cache.redisSentinel, {
            sentinels: [0, 1, 2].map((i) => `redis-node-${i}.redis-headless.cache.svc.cluster.local:26379`),
            masterName: 'mymaster',
            passwordFile: REDIS_PASSWORD_FILE,
            sentinelPasswordFile: REDIS_SENTINEL_PASSWORD_FILE,
            tls: { caFile: REDIS_CA_FILE },
          });
          // Two keys of one Secret, each in its own read-only mount.
          assert.deepEqual(secretAt(REDIS_PASSWORD_FILE), { secretName: 'token-broker-redis', defaultMode: 0o440, items: [{ key: 'redis-password', path: 'redis-password' }] });
          assert.deepEqual(secretAt(REDIS_SENTINEL_PASSWORD_FILE), { secretName: 'token-broker-redis', defaultMode: 0o440, items: [{ key: 'sentinel-password', path: 'sentinel-password' }] });
          assert.deepEqual([config.cache.tlsCaFile, config.cache.redisCluster], [undefined, undefined]);
          assert.ok(!container.env.some((e: any) => e.name === 'REDIS_URL'), 'no REDIS_URL beside redisSentinel');
        }
        const credential = (id: string) => config.credentials.find((x: any) => x.id === id);
        if (file.startsWith('auth0-client-secret')) {
          // A Secret reference becomes the broker's own clientSecret block (docs/design.md §9.1).
          assert.deepEqual(credential('cdr-auth0').clientSecret, {
            file: '/etc/token-broker/credentials/cdr-auth0/client-secret',
            previousFile: '/etc/token-broker/credentials/cdr-auth0/client-secret.previous',
            method: 'client_secret_post',
          });
          assert.deepEqual(credential('reports').clientSecret, { file: '/etc/token-broker/credentials/reports/client-secret' }, 'method left to the broker\'s default');
          assert.deepEqual(credential('powerbi').clientSecret, { file: '/etc/token-broker/credentials/powerbi/client-secret' });
          for (const c of config.credentials) assert.equal(c.certificate, undefined);
        }
        if (file.startsWith('workload-identity')) {
          assert.deepEqual(credential('powerbi').federatedToken, { file: AZURE_IDENTITY_TOKEN_FILE });
          assert.deepEqual(credential('graph').federatedToken, { file: '/etc/token-broker/credentials/graph/token' });
          for (const c of config.credentials) assert.deepEqual([c.certificate, c.clientSecret], [undefined, undefined]);
        }
      });
    });
  }

  test('a config change rolls the pods (checksum annotation)', () => {
    const minimal = join(CHART, 'ci', 'minimal-values.yaml');
    const checksum = (objects: K8sObject[]) => one(objects, 'Deployment').spec.template.metadata.annotations['checksum/config'];
    const before = checksum(rendered.get('minimal-values.yaml')!);
    assert.equal(checksum(render([minimal])), before, 'stable for the same values');
    assert.notEqual(checksum(render([minimal, writeTemp('log-level.yaml', 'config: { server: { logLevel: debug } }')])), before);
  });
});
