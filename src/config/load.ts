// Reads the YAML config, applies the environment overrides of docs/design.md §4.1, validates it with the one
// schema, then loads every credential's certificate and reads the other files it names; every
// problem is collected with its path and reported at once, the file problems of the parts that
// parsed included. process.env is read here and nowhere else.
import { accessSync, constants, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../kernel/errors.ts';
import { assertionSchema } from '../client-auth/certificate/certificate-schema.ts';
import { clientAuthenticationFields } from '../client-auth/client-auth-schema.ts';
import { loadClientAuthMaterial, type ClientAuthMaterial, type ClientAuthSpec } from '../client-auth/create-client-authentication.ts';
import { IDP_KINDS, idpKindOf } from '../idps/idp-kinds.ts';
import { CacheCipher } from '../cache/cache-cipher.ts';
import {
  cacheSchema,
  callerSchema,
  configSchema,
  credentialBaseSchema,
  credentialSchema,
  crossFieldIssues,
  entraCredentialSchema,
  oidcCredentialSchema,
  serverSchema,
  type BrokerConfig,
  type ConfigParts,
} from './schema.ts';

export type LoadedCredentialMaterial = ClientAuthMaterial;

export interface LoadedConfig {
  config: BrokerConfig;
  /** Credential id → what its client authentication loaded (empty when validated with schemaOnly). */
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

function zodProblems(error: z.ZodError, prefix: readonly PropertyKey[] = []): ConfigProblem[] {
  return error.issues.flatMap((issue): ConfigProblem[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: formatPath([...prefix, ...issue.path, key]), message: 'unknown key' }));
    }
    return [{ path: formatPath([...prefix, ...issue.path]), message: issue.message }];
  });
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function applyEnv(raw: Record<string, unknown>, env: Env, problems: ConfigProblem[]): void {
  raw.server ??= {};
  // A server or cache that is not a mapping keeps its schema problem; the override has nowhere to go.
  const server: Record<string, unknown> = isRecord(raw.server) ? raw.server : {};
  if (env.HOST) server.host = env.HOST;
  if (env.PORT !== undefined && env.PORT !== '') {
    if (/^\d{1,5}$/.test(env.PORT)) server.port = Number(env.PORT);
    else problems.push({ path: 'env.PORT', message: `must be a port number, got '${env.PORT}'` });
  }
  if (env.LOG_LEVEL) server.logLevel = env.LOG_LEVEL;
  if (env.REDIS_URL) {
    raw.cache ??= {};
    if (isRecord(raw.cache)) {
      // REDIS_URL names a standalone server; beside a cluster or sentinels it would silently win or lose.
      const other = ['redisCluster', 'redisSentinel'].find((f) => isRecord(raw.cache) && raw.cache[f] !== undefined);
      if (other) problems.push({ path: 'env.REDIS_URL', message: `sets a standalone Redis, but cache.${other} is configured: unset REDIS_URL or remove cache.${other}` });
      else raw.cache.redisUrl = env.REDIS_URL;
    }
  }
}
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function parsedOrUndefined<T>(schema: z.ZodType<T>, value: unknown): T | undefined {
  const result = schema.safeParse(value);
  return result.success ? result.data : undefined;
}

/**
 * Loads one credential's client-authentication material from the parts of it that parsed: its own
 * block is enough to read the files; the provider (with its preset) and the assertion block decide
 * the key checks. So a credential with another problem (tenantId: common) still gets its files
 * checked in the same run.
 */
function loadMaterial(raw: unknown, i: number, baseDir: string, now: Date, problems: ConfigProblem[]): LoadedCredentialMaterial | undefined {
  if (!isRecord(raw)) return undefined;
  const spec: ClientAuthSpec = {
    certificate: parsedOrUndefined(clientAuthenticationFields.certificate, raw.certificate),
    clientSecret: parsedOrUndefined(clientAuthenticationFields.clientSecret, raw.clientSecret),
    federatedToken: parsedOrUndefined(clientAuthenticationFields.federatedToken, raw.federatedToken),
    assertion: parsedOrUndefined(assertionSchema.default({ sendX5c: false }), raw.assertion),
    publicClient: raw.publicClient === true,
  };
  const idpPart = raw.provider === 'entra' ? parsedOrUndefined(entraCredentialSchema, raw) : raw.provider === 'oidc' ? parsedOrUndefined(oidcCredentialSchema, raw) : undefined;
  // The key checks need the IdP kind; its defaults need the rest of the IdP part (the preset).
  const kind = raw.provider === 'entra' || raw.provider === 'oidc' ? IDP_KINDS[raw.provider] : undefined;
  const result = loadClientAuthMaterial(spec, baseDir, now, {
    defaults: idpPart ? idpKindOf(idpPart).assertionDefaults(idpPart) : undefined,
    keyTypeProblem: (keyType) => kind?.keyTypeProblem(keyType),
  });
  for (const p of result.problems) problems.push({ path: `credentials[${i}].${p.path}`, message: p.message });
  return result.material;
}

function fileProblem(path: string, file: string): ConfigProblem {
  return { path, message: `file not found or not readable: ${file}` };
}

/** Reads every file the config names (besides certificates), from the raw values so a broken sibling field hides nothing. */
function checkOtherFiles(raw: Record<string, unknown>, baseDir: string, problems: ConfigProblem[]): void {
  const cache = isRecord(raw.cache) ? raw.cache : {};
  const keyFile = cache.encryptionKeyFile;
  if (typeof keyFile === 'string' && keyFile !== '') {
    try {
      CacheCipher.fromKeyFile(resolve(baseDir, keyFile));
    } catch (err) {
      problems.push({ path: 'cache.encryptionKeyFile', message: (err as Error).message });
    }
  }
  const stateFile = cache.stateFile;
  if (typeof stateFile === 'string' && stateFile !== '') {
    // The grants are written next to it (a temporary file, then a rename): its directory must exist and be writable.
    const dir = dirname(resolve(baseDir, stateFile));
    try {
      accessSync(dir, constants.W_OK);
    } catch {
      problems.push({ path: 'cache.stateFile', message: `directory not found or not writable: ${dir}` });
    }
  }
  asArray(raw.callers).forEach((caller, i) => {
    const jwt = isRecord(caller) && isRecord(caller.jwt) ? caller.jwt : {};
    for (const field of ['jwksFile', 'jwksCaFile', 'jwksTokenFile'] as const) {
      const file = jwt[field];
      if (typeof file !== 'string' || file === '') continue;
      try {
        readFileSync(resolve(baseDir, file));
      } catch {
        problems.push(fileProblem(`callers[${i}].jwt.${field}`, resolve(baseDir, file)));
      }
    }
  });
  const cacheFiles: [string, unknown][] = [['cache.tlsCaFile', cache.tlsCaFile]];
  for (const topology of ['redisCluster', 'redisSentinel'] as const) {
    const section = isRecord(cache[topology]) ? cache[topology] : {};
    const tls = isRecord(section.tls) ? section.tls : {};
    cacheFiles.push([`cache.${topology}.passwordFile`, section.passwordFile], [`cache.${topology}.tls.caFile`, tls.caFile]);
    if (topology === 'redisSentinel') cacheFiles.push([`cache.${topology}.sentinelPasswordFile`, section.sentinelPasswordFile]);
  }
  for (const [path, file] of cacheFiles) {
    if (typeof file !== 'string' || file === '') continue;
    try {
      readFileSync(resolve(baseDir, file));
    } catch {
      problems.push(fileProblem(path, resolve(baseDir, file)));
    }
  }
}

/**
 * The schema's problems for a config that did not parse, plus what the schema could not say because
 * zod stops at the first broken level: the cross-field rules over the sections that did parse, and
 * the common fields of a credential whose provider is unknown.
 */
function schemaProblems(error: z.ZodError, raw: Record<string, unknown>): ConfigProblem[] {
  const problems = zodProblems(error);
  const credentials = asArray(raw.credentials);
  const callers = asArray(raw.callers);
  const extra: ConfigProblem[] = [];
  credentials.forEach((c, i) => {
    if (!isRecord(c) || c.provider === 'entra' || c.provider === 'oidc') return;
    const base = credentialBaseSchema.safeParse(c);
    if (!base.success) extra.push(...zodProblems(base.error, ['credentials', i]));
  });
  const parts: ConfigParts = {
    server: parsedOrUndefined(serverSchema, raw.server),
    cache: parsedOrUndefined(cacheSchema, raw.cache),
    credentials: credentials.map((c) => parsedOrUndefined(credentialSchema, c)),
    callers: callers.map((c) => parsedOrUndefined(callerSchema, c)),
    credentialIds: credentials.map((c) => (isRecord(c) ? c.id : undefined)),
    callerIds: callers.map((c) => (isRecord(c) ? c.id : undefined)),
  };
  extra.push(...crossFieldIssues(parts).map((x) => ({ path: formatPath(x.path), message: x.message })));
  // zod runs the cross-field rules itself when the other problems were not fatal to it: no twins.
  const seen = new Set(problems.map((p) => `${p.path}\n${p.message}`));
  for (const p of extra) {
    const key = `${p.path}\n${p.message}`;
    if (!seen.has(key)) problems.push(p);
    seen.add(key);
  }
  return problems;
}

export interface ValidateOptions {
  /**
   * Check the schema and the cross-field rules only, reading no file the config names: for a
   * config rendered by the Helm chart on a machine without its Secrets (`config check --schema-only`).
   */
  schemaOnly?: boolean;
}

/** Validates an already-parsed config object (the demo and tests build one in memory). */
export function validateConfig(
  raw: unknown,
  baseDir: string,
  env: Env = {},
  source = '(in memory)',
  now: Date = new Date(),
  options: ValidateOptions = {},
): LoadedConfig {
  const problems: ConfigProblem[] = [];
  if (!isRecord(raw)) {
    throw new ConfigError([{ path: '', message: 'the configuration must be a mapping (YAML object)' }]);
  }
  const copy = structuredClone(raw);
  applyEnv(copy, env, problems);
  const parsed = configSchema.safeParse(copy);
  if (!parsed.success) problems.push(...schemaProblems(parsed.error, copy));
  // Files are checked whatever else is wrong, so one run reports everything (a typo elsewhere
  // should not hide an expired certificate).
  const materials = new Map<string, LoadedCredentialMaterial>();
  if (!options.schemaOnly) {
    asArray(copy.credentials).forEach((credential, i) => {
      const material = loadMaterial(credential, i, baseDir, now, problems);
      const id = parsed.data?.credentials[i]?.id;
      if (material && id !== undefined) materials.set(id, material);
    });
    checkOtherFiles(copy, baseDir, problems);
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return { config: Object.freeze(parsed.data) as BrokerConfig, materials, baseDir, source };
}

/** Loads and validates the config file; throws ConfigError listing every problem. */
export function loadConfigFile(path: string, env: Env = {}, now: Date = new Date(), options: ValidateOptions = {}): LoadedConfig {
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
  return validateConfig(doc.toJS(), dirname(absolute), env, absolute, now, options);
}

/** The config named by BROKER_CONFIG, with env overrides. */
export function loadConfigFromEnv(env: Env = process.env): LoadedConfig {
  const path = env.BROKER_CONFIG;
  if (!path) throw new ConfigError([{ path: 'env.BROKER_CONFIG', message: 'set BROKER_CONFIG to the path of the YAML config file' }]);
  return loadConfigFile(path, env);
}
