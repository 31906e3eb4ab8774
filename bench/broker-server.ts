// Server child: the real broker, built the way production builds it (validateConfig → buildBroker),
// in front of a sandbox IdP, so the only thing that differs from production is where the token
// comes from. Started by bench/run.ts; see server-process.ts for the protocol.
//
// Env: BENCH_API_KEY — the caller key the load generator sends (only its SHA-256 is configured).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildBroker } from '../src/broker.ts';
import { validateConfig } from '../src/config/load.ts';
import { createLogger } from '../src/observability/logger.ts';
import { startSandboxIdp } from '../src/sandbox/sandbox-idp.ts';
import { createThrowawayCertificate } from '../src/sandbox/throwaway-certificate.ts';
import { announceReady } from './server-process.ts';

// run.ts asks for this credential id.
const BENCH_CREDENTIAL = 'bench';
const CLIENT_ID = 'token-broker-bench';

const apiKey = process.env.BENCH_API_KEY;
if (!apiKey) throw new Error('broker-server: set BENCH_API_KEY');

// The certificate is read from files, as an operator would mount it; they live only as long as the child.
const dir = mkdtempSync(join(tmpdir(), 'token-broker-bench-'));
try {
  const cert = await createThrowawayCertificate({ commonName: 'token-broker bench (throw-away)' });
  writeFileSync(join(dir, 'bench.crt'), cert.certPem, { mode: 0o600 });
  writeFileSync(join(dir, 'bench.key'), cert.keyPem, { mode: 0o600 });
  const idp = await startSandboxIdp({ clients: [{ clientId: CLIENT_ID, certificatePem: cert.certPem }] });

  const loaded = validateConfig(
    {
      server: { host: '127.0.0.1', port: 0, logLevel: 'info' },
      credentials: [
        {
          id: BENCH_CREDENTIAL,
          provider: 'oidc',
          preset: 'generic',
          issuer: idp.issuer,
          clientId: CLIENT_ID,
          certificate: { certFile: 'bench.crt', keyFile: 'bench.key' },
          scopes: ['api.read', 'api.write'],
        },
      ],
      callers: [
        {
          id: 'bench',
          apiKeySha256: createHash('sha256').update(apiKey).digest('hex'),
          allow: [{ credential: BENCH_CREDENTIAL, scopes: ['*'] }],
          // The per-caller limiter still runs on every request (it is on the production hot path),
          // but at its highest settings, so the load run measures served tokens rather than 429s.
          rateLimit: { requestsPerSecond: 100_000, burst: 1_000_000 },
        },
      ],
    },
    dir,
  );
  // Level 'info' as in production, so every request still builds and writes its access-log and
  // audit lines; only the sink is /dev/null, so the terminal's speed is not part of the figure.
  const logger = createLogger({ level: 'info', destination: pino.destination('/dev/null') });
  const broker = buildBroker(loaded, { logger });
  const { server } = await broker.listen(0, '127.0.0.1');
  const { port } = server.address() as { port: number };

  announceReady(port, async () => {
    await broker.close();
    await idp.close();
    rmSync(dir, { recursive: true, force: true });
  });
} catch (err) {
  rmSync(dir, { recursive: true, force: true });
  throw err;
}
