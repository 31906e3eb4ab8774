// `npm run demo`: the whole flow on one machine with nothing to set up. A sandbox OIDC provider
// (oidc-provider, in-process, loopback only) and a throw-away certificate stand in for a real IdP.
// The certificate and its private key live in a temporary folder that is removed however the demo
// ends: Ctrl-C, SIGTERM, SIGHUP, a port already in use, a failure while starting.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { buildBroker, type Broker } from '../broker.ts';
import { loadConfigFile } from '../config/load.ts';
import { ConfigError } from '../kernel/errors.ts';
import { ListenError } from '../http/http-errors.ts';
import { createLogger } from '../observability/logger.ts';
import type { SandboxIdp } from '../sandbox/sandbox-idp.ts';

export const DEMO_API_KEY = 'demo-key';
export const DEMO_CREDENTIAL = 'demo';
const DEMO_CLIENT_ID = 'token-broker-demo';
/** SIGHUP too: closing the terminal must not leave the private key behind. */
const DEMO_STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface Demo {
  /** Stops the broker and the sandbox IdP and removes the folder; the same promise every call. */
  stop(): Promise<void>;
}

export async function runDemo(env: NodeJS.ProcessEnv = process.env): Promise<Demo> {
  // Dev-only dependencies, loaded here so the production server never needs them.
  const { createThrowawayCertificate } = await import('../sandbox/throwaway-certificate.ts');
  const { startSandboxIdp } = await import('../sandbox/sandbox-idp.ts');

  const dir = mkdtempSync(join(tmpdir(), 'token-broker-demo-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  // Whatever ends the process (process.exit anywhere, an uncaught exception), the private key goes too.
  process.once('exit', removeDir);
  let idp: SandboxIdp | undefined;
  let broker: Broker | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      try {
        await broker?.close();
        await idp?.close();
      } finally {
        removeDir();
        process.off('exit', removeDir);
      }
    })());

  try {
    const cert = await createThrowawayCertificate({ commonName: 'token-broker demo (throw-away)' });
    writeFileSync(join(dir, 'demo.crt'), cert.certPem, { mode: 0o600 });
    writeFileSync(join(dir, 'demo.key'), cert.keyPem, { mode: 0o600 });
    idp = await startSandboxIdp({ clients: [{ clientId: DEMO_CLIENT_ID, certificatePem: cert.certPem }] });

    const config = {
      server: { host: '127.0.0.1', port: 8080 },
      credentials: [
        {
          id: DEMO_CREDENTIAL,
          provider: 'oidc',
          preset: 'generic',
          issuer: idp.issuer,
          clientId: DEMO_CLIENT_ID,
          certificate: { certFile: 'demo.crt', keyFile: 'demo.key' },
          scopes: ['api.read', 'api.write'],
        },
      ],
      callers: [
        {
          id: 'demo',
          apiKeySha256: createHash('sha256').update(DEMO_API_KEY).digest('hex'),
          allow: [{ credential: DEMO_CREDENTIAL, scopes: ['*'] }],
          diagnostics: true,
        },
      ],
    };
    const configPath = join(dir, 'config.yaml');
    writeFileSync(configPath, stringify(config));
    const loaded = loadConfigFile(configPath, { PORT: env.PORT, LOG_LEVEL: env.LOG_LEVEL });
    broker = buildBroker(loaded, { logger: createLogger({ level: loaded.config.server.logLevel }) });
    const { url } = await broker.listen();

    const curl = `curl -s -X POST ${url}/v1/token -H 'Authorization: Bearer ${DEMO_API_KEY}' -H 'Content-Type: application/json' -d '{"credential":"${DEMO_CREDENTIAL}"}'`;
    process.stdout.write(
      [
        '',
        'token-broker demo — SANDBOX: a local OIDC provider and a throw-away certificate; nothing leaves this machine.',
        `  broker       ${url}`,
        `  sandbox IdP  ${idp.issuer}  (oidc-provider, client '${DEMO_CLIENT_ID}', private_key_jwt)`,
        `  credential   ${DEMO_CREDENTIAL}       caller API key: ${DEMO_API_KEY}`,
        `  config       ${configPath}`,
        '',
        'Get a token:',
        `  ${curl}`,
        '',
        `List what the caller may use:  curl -s ${url}/v1/credentials -H 'Authorization: Bearer ${DEMO_API_KEY}'`,
        `Assertion diagnostics page:    ${url}/diagnostics  (caller key ${DEMO_API_KEY})`,
        'Ctrl-C stops the demo.',
        '',
        '',
      ].join('\n'),
    );
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return { stop };
}

/**
 * `token-broker demo`: runs until SIGINT, SIGTERM or SIGHUP. A port already in use is one line on
 * stderr and exit 1, like `serve`.
 */
export async function demoCommand(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const started = runDemo(env);
  // Listening from the start, so a Ctrl-C while the demo starts still removes the folder. Every
  // signal is the same stop: npm forwards the terminal's Ctrl-C, so the demo sees SIGINT twice.
  const shutdown = () => started.then((demo) => demo.stop()).then(() => process.exit(0), () => process.exit(1));
  for (const signal of DEMO_STOP_SIGNALS) process.on(signal, shutdown);
  try {
    await started;
  } catch (err) {
    if (err instanceof ListenError || err instanceof ConfigError) {
      process.stderr.write(`token-broker: ${err.message}${err instanceof ListenError ? ' (set PORT to use another port)' : ''}\n`);
      process.exit(1);
    }
    throw err;
  }
}
