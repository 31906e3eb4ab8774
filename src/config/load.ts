// Reads the YAML config, applies the environment overrides of DESIGN §4, validates it with the one
// schema, then loads every credential's certificate; every problem is collected with its path and
// reported at once. process.env is read here and nowhere else.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../core/errors.ts';
import { CertificateLoadError, loadCertificate, type LoadedCertificate } from '../credentials/certificate.ts';
import { resolveAssertionProfile, type AssertionProfile } from '../credentials/client-assertion-signer.ts';
import { CacheCipher } from '../cache/cache-cipher.ts';
import { configSchema, credentialSchema, type BrokerConfig, type CredentialConfig } from './schema.ts';

export interface LoadedCredentialMaterial {
  certificate: LoadedCertificate;
  profile: AssertionProfile;
}

export interface LoadedConfig {
  config: BrokerConfig;
  /** Credential id → its certificate and assertion profile. */
  materials: Map<string, LoadedCredentialMaterial>;
  /** Folder that relative paths in the file resolve against. */
  baseDir: string;
  /** Where the config came from, for messages. */
  source: string;
}

export type Env = Record<string, string | undefined>;

/** `credentials[0].certificate.keyFile` from a zod path. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part)), '');
}

function zodProblems(error: z.ZodError): ConfigProblem[] {
  return error.issues.flatMap((issue): ConfigProblem[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown key' }));
    }
    if (issue.code === 'invalid_union' && issue.path.at(-1) !== undefined) {
      return [{ path: formatPath(issue.path), message: issue.message }];
    }
    return [{ path: formatPath(issue.path), message: issue.message }];
  });
}

function applyEnv(raw: Record<string, unknown>, env: Env, problems: ConfigProblem[]): void {
  const server = (raw.server ??= {}) as Record<string, unknown>;
  if (env.HOST) server.host = env.HOST;
  if (env.PORT !== undefined && env.PORT !== '') {
    if (/^\d{1,5}$/.test(env.PORT)) server.port = Number(env.PORT);
    else problems.push({ path: 'env.PORT', message: `must be a port number, got '${env.PORT}'` });
  }
  if (env.LOG_LEVEL) server.logLevel = env.LOG_LEVEL;
  if (env.REDIS_URL) ((raw.cache ??= {}) as Record<string, unknown>).redisUrl = env.REDIS_URL;
}

function loadMaterial(
  credential: CredentialConfig,
  i: number,
  baseDir: string,
  now: Date,
  materials: Map<string, LoadedCredentialMaterial>,
  problems: ConfigProblem[],
): void {
  let certificate: LoadedCertificate;
  try {
    certificate = loadCertificate(credential.certificate, baseDir, now);
  } catch (err) {
    if (!(err instanceof CertificateLoadError)) throw err;
    for (const p of err.problems) problems.push({ path: `credentials[${i}].certificate.${p.field}`, message: p.message });
    return;
  }
  if (credential.provider === 'entra' && certificate.keyType !== 'rsa') {
    // Entra accepts RSA certificate credentials only ('ES256' is not a supported signature algorithm, AADSTS5002738).
    problems.push({ path: `credentials[${i}].certificate`, message: 'Entra ID accepts only RSA certificates (2048+ bits) for client assertions; this one has an EC key' });
    return;
  }
  try {
    materials.set(credential.id, { certificate, profile: resolveAssertionProfile(credential.provider, credential.assertion, certificate.keyType, credential.provider === 'oidc' ? credential.preset : undefined) });
  } catch (err) {
    problems.push({ path: `credentials[${i}].assertion.algorithm`, message: (err as Error).message });
  }
}

/** Validates an already-parsed config object (the demo and tests build one in memory). */
export function validateConfig(raw: unknown, baseDir: string, env: Env = {}, source = '(in memory)', now: Date = new Date()): LoadedConfig {
  const problems: ConfigProblem[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([{ path: '', message: 'the configuration must be a mapping (YAML object)' }]);
  }
  const copy = structuredClone(raw) as Record<string, unknown>;
  applyEnv(copy, env, problems);
  const parsed = configSchema.safeParse(copy);
  const materials = new Map<string, LoadedCredentialMaterial>();
  if (!parsed.success) {
    problems.push(...zodProblems(parsed.error));
    // Still check the certificates of the credentials that are themselves well-formed, so one run
    // reports everything (a typo elsewhere should not hide an expired certificate).
    const rawCredentials = Array.isArray(copy.credentials) ? copy.credentials : [];
    rawCredentials.forEach((raw, i) => {
      const credential = credentialSchema.safeParse(raw);
      if (credential.success) loadMaterial(credential.data, i, baseDir, now, materials, problems);
    });
    throw new ConfigError(problems);
  }
  const config = parsed.data;
  config.credentials.forEach((credential, i) => loadMaterial(credential, i, baseDir, now, materials, problems));
  if (config.cache.encryptionKeyFile && !config.cache.redisUrl) {
    problems.push({ path: 'cache.encryptionKeyFile', message: 'encrypts tokens at rest in Redis: set cache.redisUrl too (the in-memory cache never leaves the process)' });
  }
  if (config.cache.encryptionKeyFile) {
    try {
      CacheCipher.fromKeyFile(resolve(baseDir, config.cache.encryptionKeyFile));
    } catch (err) {
      problems.push({ path: 'cache.encryptionKeyFile', message: (err as Error).message });
    }
  }
  config.callers.forEach((caller, i) => {
    for (const field of ['jwksFile', 'jwksCaFile', 'jwksTokenFile'] as const) {
      const file = caller.jwt?.[field];
      if (!file) continue;
      try {
        readFileSync(resolve(baseDir, file));
      } catch {
        problems.push({ path: `callers[${i}].jwt.${field}`, message: `file not found or not readable: ${resolve(baseDir, file)}` });
      }
    }
  });
  if (config.cache.tlsCaFile) {
    try {
      readFileSync(resolve(baseDir, config.cache.tlsCaFile));
    } catch {
      problems.push({ path: 'cache.tlsCaFile', message: `file not found or not readable: ${resolve(baseDir, config.cache.tlsCaFile)}` });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: Object.freeze(config) as BrokerConfig, materials, baseDir, source };
}

/** Loads and validates the config file; throws ConfigError listing every problem. */
export function loadConfigFile(path: string, env: Env = {}, now: Date = new Date()): LoadedConfig {
  const absolute = resolve(path);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([{ path: '', message: code === 'ENOENT' ? `config file not found: ${absolute}` : `cannot read config file ${absolute} (${code})` }]);
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ path: '', message: `YAML error${e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : ''}: ${e.message.split('\n')[0]}` })),
    );
  }
  return validateConfig(doc.toJS(), dirname(absolute), env, absolute, now);
}

/** The config named by BROKER_CONFIG, with env overrides. */
export function loadConfigFromEnv(env: Env = process.env): LoadedConfig {
  const path = env.BROKER_CONFIG;
  if (!path) throw new ConfigError([{ path: 'env.BROKER_CONFIG', message: 'set BROKER_CONFIG to the path of the YAML config file' }]);
  return loadConfigFile(path, env);
}
