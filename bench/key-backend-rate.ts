// Signing rate of ClientAssertionSigner.sign() when the key is not in a file: in a PKCS#11 token
// (SoftHSM2, through Pkcs11KeySigner) and in Azure Key Vault (the Key Vault REST stand-in of the
// tests, through KeyVaultKeySigner and the real @azure/keyvault-keys), each beside raw crypto.sign
// with a software key of the same type and size over the same signing input. Context, not a
// target: the HSM's own cost dominates, and a vault signature is an HTTPS round trip (here on
// loopback, to a stand-in served by this same process). The file backend is signer-rate.ts.
//
// Each figure is taken as signer-rate.ts takes its own: a warm-up, then slices alternating with the
// raw side. Sequentially (one signature at a time) and with several in flight: `sessions` for the
// token (the signer opens that many PKCS#11 sessions, one signature each), 8 for the vault. With
// several in flight the raw side is crypto.sign's callback form with as many in flight, which runs
// on libuv's thread pool as pkcs11js runs C_Sign. Every sequential figure is taken before any
// concurrent one.
//
// The SoftHSM figures are taken in a child process (this file, run with --softhsm-child): the
// PKCS#11 library is native code loaded once per process, and if it crashes, only those figures are
// lost, not the bench. The child sets SOFTHSM2_CONF in its own environment after the fixture has made
// the token and before the first signature initialises the library.
//
// SoftHSM needs Debian's softhsm2 and the optional dependency pkcs11js: softHsmPrerequisites()
// installs softhsm2 with apt-get where it can, and otherwise says what is missing; a backend that
// cannot be measured is reported as "not measured: <why>", never as a failed bench.
import { generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { AccessToken, TokenCredential } from '@azure/identity';
import jwt from 'jsonwebtoken';
import { systemClock } from '../src/kernel/clock.ts';
import { createLogger } from '../src/observability/logger.ts';
import { keyVaultSchema, pkcs11Schema, DEFAULT_PKCS11_SESSIONS, type SigningAlgorithm } from '../src/client-auth/certificate/certificate-schema.ts';
import { loadCertificate } from '../src/client-auth/certificate/certificate.ts';
import { StaticCertificateSource } from '../src/client-auth/certificate/certificate-source.ts';
import { ClientAssertionSigner, resolveAssertionProfile } from '../src/client-auth/certificate/client-assertion-signer.ts';
import type { KeySigner } from '../src/client-auth/certificate/key-signer.ts';
import { KeyVaultKeySigner } from '../src/client-auth/certificate/key-vault-key-signer.ts';
import { Pkcs11KeySigner } from '../src/client-auth/certificate/pkcs11-key-signer.ts';
import { entraIdp } from '../src/idps/entra/entra-idp.ts';
import { startKeyVaultStandIn } from '../test/fakes/key-vault-stand-in.ts';
import { tempDir } from '../test/helpers/credential-files.ts';
import { startSoftHsm, type SoftHsm } from '../test/helpers/softhsm.ts';
import { measureForeignCpu } from './foreign-cpu.ts';
import { AUDIENCE, CLIENT_ID, compareRunners, rawKeyInput, run, runConcurrent, type Op, type Runner } from './signer-rate.ts';

// ─────────────────────────────────────────── API ───────────────────────────────────────────

export type MeasuredBackend = 'softhsm' | 'keyVault';

export interface RateFigures {
  /** ClientAssertionSigner.sign() with this backend's KeySigner. */
  signerOpsPerSecond: number;
  /** crypto.sign over the same input with a software key of the same type and size, as many in flight. */
  rawOpsPerSecond: number;
  /** Bytes signed per operation (the JWS signing input), the same for both. */
  inputBytes: number;
}

/** One figure of the grid (algorithm × signatures in flight): measured, or why not. */
export interface BackendRow {
  algorithm: SigningAlgorithm;
  /** Signatures in flight: 1 (sequential), or several at once. */
  inFlight: number;
  measured?: RateFigures & { foreignCpuShare?: number };
  /** Set exactly when `measured` is absent. */
  notMeasured?: string;
}

export interface BackendMeasurement {
  backend: MeasuredBackend;
  rows: BackendRow[];
  /** Share of the machine's CPU used by other processes during this backend's busiest figure. */
  foreignCpuShare?: number;
}

export interface KeyBackendFigures {
  softHsm: BackendMeasurement;
  keyVault: BackendMeasurement;
  /** PKCS#11 sessions the token signer opened, and so the signatures in flight in its concurrent figures. */
  sessions: number;
  /** Signatures in flight in the Key Vault concurrent figures. */
  keyVaultInFlight: number;
  /** Measured seconds per side of each figure, in `slices` alternating slices, after `warmupSeconds` per side and algorithm. */
  seconds: number;
  warmupSeconds: number;
  slices: number;
}

export type Availability = { available: true } | { available: false; why: string };

export interface KeyBackendOptions {
  warmupSeconds: number;
  /** Seconds per side of each figure. */
  seconds: number;
  /** Alternating slices per figure (default 4). */
  slices?: number;
  /** PKCS#11 sessions (default: the broker's default, DEFAULT_PKCS11_SESSIONS). */
  sessions?: number;
  /** Key Vault signatures in flight in the concurrent figures (default 8). */
  keyVaultInFlight?: number;
  /** What softHsmPrerequisites() found; without it, they are checked here without installing anything. */
  softHsm?: Availability;
  /** Progress lines (stderr in the bench). */
  log?: (message: string) => void;
}

/** Where Debian's libsofthsm2 puts the module, the path test/helpers/softhsm.ts loads. */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

const KEY_VAULT_RESOURCE = 'https://vault.azure.net';
const KEY_VAULT_TIMEOUT_MS = 10_000;
const DEFAULT_KEY_VAULT_IN_FLIGHT = 8;
const DEFAULT_SLICES = 4;
/** Silence from the SoftHSM child that means it hangs: while it sets up (start, fixture, warm-ups), and during one figure (plus its expected time). */
const CHILD_SETUP_SILENCE_MS = 30_000;
const CHILD_FIGURE_SLACK_MS = 5_000;

type KeyType = 'rsa' | 'ec';
const CASES: Record<MeasuredBackend, { algorithm: SigningAlgorithm; keyType: KeyType }[]> = {
  softhsm: [
    { algorithm: 'RS256', keyType: 'rsa' },
    { algorithm: 'PS256', keyType: 'rsa' },
    { algorithm: 'ES256', keyType: 'ec' },
  ],
  keyVault: [
    { algorithm: 'RS256', keyType: 'rsa' },
    { algorithm: 'ES256', keyType: 'ec' },
  ],
};

const oneLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim().slice(0, 300);

// ─────────────────────────────────────── prerequisites ───────────────────────────────────────

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function softHsmInstalled(): boolean {
  return existsSync(SOFTHSM_MODULE) && spawnSync('softhsm2-util', ['--version'], { stdio: 'ignore' }).status === 0;
}

function pkcs11jsProblem(): string | undefined {
  try {
    createRequire(import.meta.url)('pkcs11js');
    return undefined;
  } catch (err) {
    return (
      `the optional dependency pkcs11js cannot be loaded (${oneLine(err).replace(/ Require stack:.*$/, '').slice(0, 120)}): it is a native addon built by npm install, ` +
      'which needs a C++ toolchain and Python (Debian: apt-get install build-essential python3, then npm install)'
    );
  }
}

/**
 * Checks what the SoftHSM figures need: the pkcs11js addon, and Debian's softhsm2 (the module and
 * softhsm2-util). When softhsm2 is missing and `install` is set, installs it with apt-get (as root,
 * where apt-get exists), as .ci/run does for the tests' packages. Never throws: a missing piece is
 * an Availability saying what to do. Run it before anything is measured (apt-get is CPU of its own).
 */
export function softHsmPrerequisites(options: { install: boolean; log?: (message: string) => void }): Availability {
  const log = options.log ?? (() => {});
  const addon = pkcs11jsProblem();
  if (softHsmInstalled()) return addon ? { available: false, why: addon } : { available: true };
  const missing = `Debian's softhsm2 is not installed (${existsSync(SOFTHSM_MODULE) ? 'softhsm2-util does not run' : `${SOFTHSM_MODULE} is missing`})`;
  // Without the addon the token could not be used anyway: installing softhsm2 now would buy nothing.
  if (addon) return { available: false, why: `${addon}; and ${missing}: apt-get install softhsm2` };
  if (!options.install) return { available: false, why: `${missing}: apt-get install softhsm2` };
  if (!onPath('apt-get')) return { available: false, why: `${missing} and there is no apt-get here: install SoftHSM 2 so that ${SOFTHSM_MODULE} and softhsm2-util exist` };
  if (process.getuid?.() !== 0) return { available: false, why: `${missing} and this is not root: run apt-get install softhsm2 as root` };
  log('softhsm2 is missing: apt-get install softhsm2');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', 'softhsm2']]) {
    const r = spawnSync('apt-get', args, { env, encoding: 'utf8', timeout: 300_000 });
    if (r.error || r.status !== 0) {
      const output = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-2).join(' ');
      return { available: false, why: `${missing}, and apt-get ${args[0]} failed (${r.error ? oneLine(r.error) : `exit ${r.status}`}${output ? `: ${output.slice(0, 200)}` : ''})` };
    }
  }
  if (!softHsmInstalled()) return { available: false, why: `${missing}, and still after apt-get install softhsm2` };
  log('softhsm2 installed');
  return { available: true };
}

// ───────────────────────────────────────── measuring ─────────────────────────────────────────

interface Timing {
  warmupSeconds: number;
  seconds: number;
  slices: number;
}

/** What a measurement reports as it goes (the SoftHSM child sends these as JSON lines). */
type BackendEvent =
  | { log: string }
  | { starting: { algorithm: SigningAlgorithm; inFlight: number } }
  | { row: BackendRow }
  | { failure: { algorithm: SigningAlgorithm; why: string } }
  /** The SoftHSM fixture's folder, for the parent to remove should the child die before it does. */
  | { tempDir: string };

interface PreparedCase {
  algorithm: SigningAlgorithm;
  inputBytes: number;
  signAssertion: Op;
  signRaw: Op;
  signRawOnPool: Op;
}

/** A software key of the type and size of the backend's keys (RSA 2048, e = 65537 / P-256), for the raw side. */
function softwareKey(keyType: KeyType): KeyObject {
  return keyType === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 }).privateKey : generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
}

/**
 * A ClientAssertionSigner over `keySigner`, signed with once (which opens the token or the vault
 * client and checks the pair) and warmed up, with its raw counterpart over the same bytes: the
 * "<header>.<claims>" of a real assertion.
 */
async function prepareCase(algorithm: SigningAlgorithm, keyType: KeyType, certFile: string, keySigner: KeySigner, warmupSeconds: number): Promise<PreparedCase> {
  const loaded = loadCertificate({ certFile }, '/');
  const profile = resolveAssertionProfile({ algorithm, lifetimeSeconds: 600, sendX5c: false }, loaded.keyType, entraIdp.assertionDefaults({} as never));
  const signer = new ClientAssertionSigner(new StaticCertificateSource(loaded), profile, systemClock, keySigner);
  const assertion = await signer.sign(AUDIENCE, CLIENT_ID);
  const input = Buffer.from(assertion.slice(0, assertion.lastIndexOf('.')), 'ascii');
  const keyInput = rawKeyInput(algorithm, softwareKey(keyType));
  const prepared: PreparedCase = {
    algorithm,
    inputBytes: input.length,
    signAssertion: () => signer.sign(AUDIENCE, CLIENT_ID),
    signRaw: () => cryptoSign('sha256', input, keyInput),
    signRawOnPool: () => new Promise<Buffer>((resolve, reject) => cryptoSign('sha256', input, keyInput, (err, signature) => (err ? reject(err) : resolve(signature)))),
  };
  await run(prepared.signAssertion, warmupSeconds * 1000);
  await run(prepared.signRaw, warmupSeconds * 1000);
  return prepared;
}

async function measureFigure(c: PreparedCase, inFlight: number, timing: Timing): Promise<RateFigures> {
  if (inFlight === 1) {
    const [signerOpsPerSecond, rawOpsPerSecond] = await compareRunners((ms) => run(c.signAssertion, ms), (ms) => run(c.signRaw, ms), timing.seconds, timing.slices);
    return { signerOpsPerSecond, rawOpsPerSecond, inputBytes: c.inputBytes };
  }
  // Warmed up again with as many in flight: the vault client opens its further connections, the thread pool its threads.
  const signer: Runner = (ms) => runConcurrent(c.signAssertion, ms, inFlight);
  const raw: Runner = (ms) => runConcurrent(c.signRawOnPool, ms, inFlight);
  await signer(timing.warmupSeconds * 1000);
  await raw(timing.warmupSeconds * 1000);
  const [signerOpsPerSecond, rawOpsPerSecond] = await compareRunners(signer, raw, timing.seconds, timing.slices);
  return { signerOpsPerSecond, rawOpsPerSecond, inputBytes: c.inputBytes };
}

/**
 * Prepares every case, then takes every sequential figure, then every concurrent one, reporting
 * each as it comes (with the other processes' share of the CPU meanwhile); a case or figure that
 * fails is reported and the rest still run.
 */
async function measureGrid(
  cases: { algorithm: SigningAlgorithm; prepare: () => Promise<PreparedCase> }[],
  inFlight: number,
  timing: Timing,
  emit: (event: BackendEvent) => void,
): Promise<void> {
  const prepared: PreparedCase[] = [];
  for (const { algorithm, prepare } of cases) {
    try {
      prepared.push(await prepare());
    } catch (err) {
      emit({ failure: { algorithm, why: oneLine(err) } });
    }
  }
  for (const n of inFlight > 1 ? [1, inFlight] : [1]) {
    for (const c of prepared) {
      emit({ starting: { algorithm: c.algorithm, inFlight: n } });
      try {
        const { result, foreignShare } = await measureForeignCpu([process.pid], () => measureFigure(c, n, timing));
        emit({ row: { algorithm: c.algorithm, inFlight: n, measured: { ...result, foreignCpuShare: foreignShare } } });
      } catch (err) {
        emit({ row: { algorithm: c.algorithm, inFlight: n, notMeasured: oneLine(err) } });
      }
    }
  }
}

/** Builds a BackendMeasurement from events; `finish` fills every row not reported with why. */
function collector(backend: MeasuredBackend, inFlight: number) {
  const rows: BackendRow[] = CASES[backend].flatMap(({ algorithm }) => (inFlight > 1 ? [1, inFlight] : [1]).map((n) => ({ algorithm, inFlight: n })));
  const measurement: BackendMeasurement = { backend, rows };
  let current: { algorithm: SigningAlgorithm; inFlight: number } | undefined;
  return {
    emit(event: BackendEvent): void {
      if ('row' in event) {
        const i = rows.findIndex((r) => r.algorithm === event.row.algorithm && r.inFlight === event.row.inFlight);
        if (i >= 0) rows[i] = event.row;
        const share = event.row.measured?.foreignCpuShare;
        if (share !== undefined) measurement.foreignCpuShare = Math.max(measurement.foreignCpuShare ?? 0, share);
        current = undefined;
      } else if ('failure' in event) {
        for (const r of rows) if (r.algorithm === event.failure.algorithm && !r.measured) r.notMeasured = event.failure.why;
      } else if ('starting' in event) {
        current = event.starting;
      }
    },
    /** What was being measured when the measurement stopped, if anything. */
    inProgress: () => current,
    /** Every row neither measured nor failed gets `why`; with `stoppedAt`, the rows after it say the run stopped before them. */
    finish(why: string, stoppedAt?: { algorithm: SigningAlgorithm; inFlight: number }): BackendMeasurement {
      for (const r of rows) {
        if (r.measured || r.notMeasured) continue;
        const here = !stoppedAt || (r.algorithm === stoppedAt.algorithm && r.inFlight === stoppedAt.inFlight);
        r.notMeasured = here ? why : `not reached: the run stopped at ${stoppedAt.algorithm} with ${stoppedAt.inFlight} in flight`;
      }
      return measurement;
    },
  };
}

const notMeasured = (backend: MeasuredBackend, inFlight: number, why: string) => collector(backend, inFlight).finish(why);

// ─────────────────────────────────────────── SoftHSM ──────────────────────────────────────────

/** The SoftHSM side, run in the child: start the token, point SOFTHSM2_CONF at it, measure. */
async function softHsmChild(sessions: number, timing: Timing, emit: (event: BackendEvent) => void): Promise<void> {
  let hsm: SoftHsm;
  try {
    // The fixture initialises the library (with its own SOFTHSM2_CONF), makes the keys and finalizes
    // it again: it runs before anything else in this process initialises the library.
    hsm = await startSoftHsm();
  } catch (err) {
    for (const { algorithm } of CASES.softhsm) emit({ failure: { algorithm, why: `the SoftHSM token could not be set up: ${oneLine(err)}` } });
    return;
  }
  // SoftHSM reads SOFTHSM2_CONF at C_Initialize, which the first signature below calls; the library
  // then stays initialised, with this configuration, for the rest of this process.
  process.env.SOFTHSM2_CONF = hsm.env.SOFTHSM2_CONF;
  emit({ tempDir: dirname(hsm.pinFile) });
  const logger = createLogger({ level: 'silent' });
  const signers: Pkcs11KeySigner[] = [];
  try {
    emit({ log: `SoftHSM token '${hsm.tokenLabel}' ready (RSA 2048 and P-256 keys generated in it, not extractable); ${sessions} PKCS#11 session(s) per signer` });
    const cases = CASES.softhsm.map(({ algorithm, keyType }) => ({
      algorithm,
      prepare: () => {
        const key = hsm[keyType];
        const config = pkcs11Schema.parse({ module: hsm.module, tokenLabel: hsm.tokenLabel, keyLabel: key.label, pinFile: hsm.pinFile, sessions });
        const keySigner = new Pkcs11KeySigner(config, '/', `bench-${algorithm.toLowerCase()}`, logger);
        signers.push(keySigner);
        return prepareCase(algorithm, keyType, key.certFile, keySigner, timing.warmupSeconds);
      },
    }));
    await measureGrid(cases, sessions, timing, emit);
  } finally {
    for (const s of signers) s.close();
    hsm.close();
  }
}

/** Runs softHsmChild in a child process and collects what it reports; never throws. */
async function measureSoftHsm(sessions: number, timing: Timing, log: (message: string) => void): Promise<BackendMeasurement> {
  const collect = collector('softhsm', sessions);
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--softhsm-child'], {
    env: { ...process.env, BENCH_SOFTHSM_CHILD: JSON.stringify({ sessions, timing }) },
    // stdin is the child's lifeline (it exits when the pipe closes), as with the server children.
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const killChild = () => child.kill('SIGKILL');
  process.once('exit', killChild);
  const lines = createInterface({ input: child.stdout });
  const drained = new Promise<void>((resolve) => lines.once('close', resolve));
  // A figure takes its warm-ups and both sides' seconds; the concurrent ones warm up twice.
  const figureMs = CHILD_FIGURE_SLACK_MS + 2 * 2 * (timing.warmupSeconds + timing.seconds) * 1000;
  let silentFor: number | undefined;
  let fixtureDir: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const watch = (ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      silentFor = ms;
      child.kill('SIGKILL');
    }, ms);
  };
  watch(CHILD_SETUP_SILENCE_MS);
  lines.on('line', (line) => {
    let event: BackendEvent;
    try {
      event = JSON.parse(line) as BackendEvent;
    } catch {
      process.stderr.write(`[softhsm] ${line}\n`);
      return;
    }
    watch('starting' in event ? figureMs : CHILD_SETUP_SILENCE_MS);
    if ('log' in event) log(event.log);
    if ('tempDir' in event && basename(event.tempDir).startsWith('token-broker-softhsm-')) fixtureDir = event.tempDir;
    collect.emit(event);
  });
  let spawnError: Error | undefined;
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.once('exit', (c, s) => resolve([c, s]));
    child.once('error', (err) => {
      spawnError = err;
      resolve([null, null]);
    });
  });
  clearTimeout(timer);
  process.off('exit', killChild);
  if (spawnError) return collect.finish(`the SoftHSM child could not be started: ${oneLine(spawnError)}`);
  await drained;
  // A child that died took its fixture's cleanup with it (the token's files, with the keys).
  if (fixtureDir) rmSync(fixtureDir, { recursive: true, force: true });
  if (code === 0) return collect.finish('not reported by the SoftHSM child');
  const during = collect.inProgress();
  let why = silentFor
    ? `the process signing with SoftHSM hung (no answer within ${(silentFor / 1000).toFixed(1)} s; stopped)`
    : `the process signing with SoftHSM died (${signal ? `killed by ${signal}` : `exit code ${code}`})`;
  if (during) {
    why += ` while signing ${during.algorithm} with ${during.inFlight} in flight`;
    // Seen with SoftHSM 2.6, as a crash or a hang, when C_Initialize got no arguments and C_Sign ran
    // on several sessions at once.
    if (during.inFlight > 1) why += " (SoftHSM takes no locks between sessions unless C_Initialize gets CKF_OS_LOCKING_OK: see Pkcs11KeySigner's C_Initialize call)";
  }
  return collect.finish(why, during);
}

// ────────────────────────────────────────── Key Vault ─────────────────────────────────────────

/** A Key Vault access token as Entra would mint one for the vault (the stand-in checks aud, exp and nbf, not the signature). */
function vaultCredential(tenantId: string): TokenCredential {
  const appId = 'b1e2c3d4-5f6a-4b7c-8d9e-0f1a2b3c4d5e';
  const claims = { aud: KEY_VAULT_RESOURCE, iss: `https://sts.windows.net/${tenantId}/`, tid: tenantId, appid: appId, sub: appId };
  const token = jwt.sign(claims, randomBytes(32), { algorithm: 'HS256', expiresIn: 3600, notBefore: 0 });
  const { exp } = jwt.decode(token) as { exp: number };
  const accessToken: AccessToken = { token, expiresOnTimestamp: exp * 1000, tokenType: 'Bearer' };
  return { getToken: async () => accessToken };
}

async function measureKeyVault(inFlight: number, timing: Timing, log: (m: string) => void): Promise<BackendMeasurement> {
  const collect = collector('keyVault', inFlight);
  const dir = tempDir('token-broker-bench-kv-');
  try {
    const kv = await startKeyVaultStandIn();
    try {
      const caFile = dir.write('vault-ca.pem', kv.caPem);
      const credential = vaultCredential(kv.tenantId);
      const logger = createLogger({ level: 'silent' });
      const keys = { rsa: await kv.addCertificate('bench-rsa', 'rsa'), ec: await kv.addCertificate('bench-ec', 'ec') };
      log(`Key Vault stand-in at ${kv.url} (RSA 2048 and P-256 keys, in this process); ${inFlight} in flight for the concurrent figures`);
      const cases = CASES.keyVault.map(({ algorithm, keyType }) => ({
        algorithm,
        prepare: () => {
          const key = keys[keyType];
          const certFile = dir.write(`${keyType}.crt`, key.certPem);
          // caFile: the vault's TLS is trusted through the keyVault option, as a private-CA vault is configured.
          const config = keyVaultSchema.parse({ keyId: key.keyId, authentication: { credential: 'bench-vault-access' }, caFile });
          const keySigner = new KeyVaultKeySigner(config, dir.path, `bench-${algorithm.toLowerCase()}`, credential, logger, KEY_VAULT_TIMEOUT_MS);
          return prepareCase(algorithm, keyType, certFile, keySigner, timing.warmupSeconds);
        },
      }));
      await measureGrid(cases, inFlight, timing, (e) => collect.emit(e));
      // Every authenticated sign request must have been a 200 over a SHA-256 digest, or the figures
      // measured something else (the SDK's first request of each client goes without a token: 401).
      const signs = kv.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/sign') && r.caller);
      const odd = signs.filter((r) => r.status !== 200 || r.signedBytes !== 32).length;
      const measurement = collect.finish('not reported');
      if (odd > 0) {
        for (const r of measurement.rows) {
          delete r.measured;
          r.notMeasured = `${odd} of ${signs.length} sign requests to the stand-in were not a 200 over a 32-byte digest`;
        }
      }
      return measurement;
    } finally {
      await kv.close();
    }
  } catch (err) {
    return notMeasured('keyVault', inFlight, `the Key Vault stand-in could not be set up: ${oneLine(err)}`);
  } finally {
    dir.remove();
  }
}

// ─────────────────────────────────────────── entry ────────────────────────────────────────────

const describeBackend = (name: string, m: BackendMeasurement) => {
  const missing = m.rows.filter((r) => !r.measured);
  if (missing.length === 0) return `${name} done`;
  if (missing.length === m.rows.length) return `${name} not measured: ${missing[0]!.notMeasured}`;
  return `${name} done, ${missing.length} of ${m.rows.length} figures not measured: ${[...new Set(missing.map((r) => r.notMeasured))].join('; ')}`;
};

/**
 * Signing rates per key backend beyond the key file: SoftHSM (RS256, PS256, ES256; sequential and
 * with `sessions` in flight) and the Key Vault stand-in (RS256, ES256; sequential and with
 * `keyVaultInFlight`), each beside raw crypto.sign. Never throws for a backend that cannot be
 * measured: its rows say why.
 */
export async function measureKeyBackends(options: KeyBackendOptions): Promise<KeyBackendFigures> {
  const log = options.log ?? (() => {});
  const sessions = options.sessions ?? DEFAULT_PKCS11_SESSIONS;
  const keyVaultInFlight = options.keyVaultInFlight ?? DEFAULT_KEY_VAULT_IN_FLIGHT;
  const timing: Timing = { warmupSeconds: options.warmupSeconds, seconds: options.seconds, slices: options.slices ?? DEFAULT_SLICES };
  const availability = options.softHsm ?? softHsmPrerequisites({ install: false });
  const softHsm = availability.available ? await measureSoftHsm(sessions, timing, log) : notMeasured('softhsm', sessions, availability.why);
  log(describeBackend('SoftHSM', softHsm));
  const keyVault = await measureKeyVault(keyVaultInFlight, timing, log);
  log(describeBackend('Key Vault stand-in', keyVault));
  return { softHsm, keyVault, sessions, keyVaultInFlight, ...timing };
}

// The SoftHSM child: node --import tsx bench/key-backend-rate.ts --softhsm-child (started by measureSoftHsm).
if (import.meta.url === `file://${process.argv[1]}` && process.argv.includes('--softhsm-child')) {
  const { sessions, timing } = JSON.parse(process.env.BENCH_SOFTHSM_CHILD ?? '{}') as { sessions: number; timing: Timing };
  // The parent's pipe closing means the parent is gone: so is the point of measuring.
  process.stdin.on('close', () => process.exit(1));
  process.stdin.resume();
  const emit = (event: BackendEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);
  softHsmChild(sessions, timing, emit).then(
    // The callback runs once everything written before it has been handed to the pipe.
    () => process.stdout.write('', () => process.exit(0)),
    (err: unknown) => {
      process.stderr.write(`bench softhsm child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
