#!/usr/bin/env node
// The `token-broker` command: serve, demo, config check, thumbprint, inspect, explain.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { parseArgs } from 'node:util';
import { describeClientAuthMaterial } from '../client-auth/create-client-authentication.ts';
import { loadConfigFile } from '../config/load.ts';
import { idpKindOf } from '../idps/idp-kinds.ts';
import { ConfigError } from '../kernel/errors.ts';
import { computeThumbprints } from '../client-auth/certificate/thumbprints.ts';

const USAGE = `usage: token-broker <command>

commands:
  serve [--config FILE]        run the broker (default config: $BROKER_CONFIG)
  demo                         run the broker against a local sandbox IdP (see README)
  config check [--schema-only] FILE
                               validate a config file and its certificates; exit 1 on any problem
                               (--schema-only: the schema and cross-field rules, no file read)
  thumbprint CERT [--json]     SHA-1/SHA-256 thumbprints and x5t / x5t#S256 of a PEM or DER certificate
  inspect <jwt | -> [options]  check a client assertion against its IdP's rules (inspect --help)
  explain <text | -> [--json]  explain an IdP error (AADSTS, Keycloak, Okta, Auth0, invalid_client …)
  sign-in CREDENTIAL --url URL start a delegated credential's sign-in on a running broker and wait for it
                               (sign-in --help)
`;

class UsageError extends Error {}

function fail(message: string, code = 2): never {
  process.stderr.write(`token-broker: ${message}\n`);
  process.exit(code);
}

async function configCheck(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { 'schema-only': { type: 'boolean', default: false } }, allowPositionals: true });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('config check takes exactly one FILE');
  const schemaOnly = values['schema-only'];
  try {
    const loaded = loadConfigFile(file, process.env, new Date(), { schemaOnly });
    const lines = [
      `ok: ${loaded.source}${schemaOnly ? ' (schema only: certificate, key and other files not read)' : ''}`,
      `  ${loaded.config.credentials.length} credential(s), ${loaded.config.callers.length} caller(s)`,
    ];
    for (const c of loaded.config.credentials) {
      const m = loaded.materials.get(c.id);
      lines.push(
        `  ${c.id}: ${c.provider} ${Object.values(idpKindOf(c).listingFacts(c)).join(' ')}` +
          (m ? ` ${describeClientAuthMaterial(m)}` : ''),
      );
    }
    process.stdout.write(lines.join('\n') + '\n');
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 1);
    throw err;
  }
}

function thumbprint(args: string[]): void {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean', default: false } }, allowPositionals: true });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('thumbprint takes exactly one certificate file');
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    fail(`cannot read ${file} (${(err as NodeJS.ErrnoException).code})`, 1);
  }
  const text = raw.toString('utf8');
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0];
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem ?? raw);
  } catch {
    fail(`${file}: not a PEM or DER certificate`, 1);
  }
  const t = computeThumbprints(cert.raw);
  const out = {
    subject: cert.subject.replace(/\n/g, ', '),
    not_after: new Date(cert.validTo).toISOString(),
    sha1: t.sha1Hex,
    sha256: t.sha256Hex,
    x5t: t.x5t,
    'x5t#S256': t.x5tS256,
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  process.stdout.write(
    [
      `subject    ${out.subject}`,
      `not after  ${out.not_after}`,
      `SHA-1      ${out.sha1}   (the thumbprint the Azure portal lists)`,
      `SHA-256    ${out.sha256}`,
      `x5t        ${out.x5t}   (header for RS256)`,
      `x5t#S256   ${out['x5t#S256']}   (header for PS256)`,
    ].join('\n') + '\n',
  );
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve': {
        const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } } });
        const { serve } = await import('../main.ts');
        await serve(values.config ? { ...process.env, BROKER_CONFIG: values.config } : process.env);
        return;
      }
      case 'demo': {
        const { demoCommand } = await import('./demo.ts');
        await demoCommand();
        return;
      }
      case 'config':
        if (rest[0] !== 'check') throw new UsageError('the config command is: config check [--schema-only] FILE');
        await configCheck(rest.slice(1));
        return;
      case 'thumbprint':
        thumbprint(rest);
        return;
      case 'inspect': {
        const { inspect, INSPECT_USAGE } = await import('./inspect.ts');
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(INSPECT_USAGE);
          return;
        }
        process.exitCode = await inspect(rest);
        return;
      }
      case 'explain': {
        const [{ explain, EXPLAIN_USAGE }, { defaultIo }] = await Promise.all([import('./explain.ts'), import('./inspect.ts')]);
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(EXPLAIN_USAGE);
          return;
        }
        process.exitCode = await explain(rest, defaultIo);
        return;
      }
      case 'sign-in': {
        const { signInCommand, SIGN_IN_USAGE } = await import('./sign-in.ts');
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(SIGN_IN_USAGE);
          return;
        }
        const io = { out: (t: string) => process.stdout.write(t), err: (t: string) => process.stderr.write(t), env: process.env, sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
        process.exitCode = await signInCommand(rest, io);
        return;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      fail(`${(err as Error).message}\n\n${USAGE}`);
    }
    throw err;
  }
}

await main(process.argv.slice(2));
