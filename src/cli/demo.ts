// `npm run demo`: the whole flow on one machine with nothing to set up. A sandbox OIDC provider
// (oidc-provider, in-process, loopback only) and a throw-away certificate stand in for a real IdP.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { buildBroker } from '../broker.ts';
import { loadConfigFile } from '../config/load.ts';
import { createLogger } from '../observability/logger.ts';

export const DEMO_API_KEY = 'demo-key';
export const DEMO_CREDENTIAL = 'demo';
const DEMO_CLIENT_ID = 'token-broker-demo';

export async function runDemo(env: NodeJS.ProcessEnv = process.env): Promise<{ stop: () => Promise<void> }> {
  // Dev-only dependencies, loaded here so the production server never needs them.
  const { createThrowawayCertificate } = await import('../sandbox/throwaway-certificate.ts');
  const { startSandboxIdp } = await import('../sandbox/sandbox-idp.ts');

  const dir = mkdtempSync(join(tmpdir(), 'token-broker-demo-'));
  const cert = await createThrowawayCertificate({ commonName: 'token-broker demo (throw-away)' });
  writeFileSync(join(dir, 'demo.crt'), cert.certPem, { mode: 0o600 });
  writeFileSync(join(dir, 'demo.key'), cert.keyPem, { mode: 0o600 });
  const idp = await startSandboxIdp({ clients: [{ clientId: DEMO_CLIENT_ID, certificatePem: cert.certPem }] });

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
  const broker = buildBroker(loaded, { logger: createLogger({ level: loaded.config.server.logLevel }) });
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

  const stop = async () => {
    await broker.close();
    await idp.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { stop };
}
