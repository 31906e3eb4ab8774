// Signing rate of ClientAssertionSigner.sign() against raw crypto.sign with the same key, padding
// and input size, so the ratio is the cost of everything around the signature (claims, header,
// JSON, base64url, the key backend's call), not of RSA or ECDSA itself. The timing helpers are
// shared with key-backend-rate.ts (the same measurement with the key in an HSM or a vault).
import { constants, sign as cryptoSign, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SigningAlgorithm } from '../src/client-auth/certificate/certificate-schema.ts';
import { systemClock } from '../src/kernel/clock.ts';
import { loadCertificate } from '../src/client-auth/certificate/certificate.ts';
import { StaticCertificateSource } from '../src/client-auth/certificate/certificate-source.ts';
import { FileKeySigner } from '../src/client-auth/certificate/file-key-signer.ts';
import { ClientAssertionSigner, resolveAssertionProfile } from '../src/client-auth/certificate/client-assertion-signer.ts';
import { entraIdp } from '../src/idps/entra/entra-idp.ts';
import { createThrowawayCertificate, type ThrowawayKeyType } from '../src/sandbox/throwaway-certificate.ts';

export interface SignerFigures {
  algorithm: SigningAlgorithm;
  signerOpsPerSecond: number;
  rawOpsPerSecond: number;
  /** Bytes signed per operation (the JWS signing input), the same for both. */
  inputBytes: number;
}

// A realistic Entra v2 audience and client id, so the claims are the size they are in production.
export const AUDIENCE = 'https://login.microsoftonline.com/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/oauth2/v2.0/token';
export const CLIENT_ID = '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b';

const CASES: { algorithm: SigningAlgorithm; keyType: ThrowawayKeyType }[] = [
  { algorithm: 'RS256', keyType: 'rsa' },
  { algorithm: 'PS256', keyType: 'rsa' },
  { algorithm: 'ES256', keyType: 'ec' },
];

/** The key options jsonwebtoken (via jwa) uses for each JWS algorithm, for the raw comparison. */
export function rawKeyInput(algorithm: SigningAlgorithm, key: KeyObject): SignKeyObjectInput {
  switch (algorithm) {
    case 'RS256':
      return { key, padding: constants.RSA_PKCS1_PADDING };
    case 'PS256':
      return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
    case 'ES256':
      // JWS wants r||s; asking OpenSSL for it directly is the cheapest way to get it.
      return { key, dsaEncoding: 'ieee-p1363' };
  }
}

let sink = 0; // keeps results observable so no loop body can be optimised away

export type Op = () => { length: number } | Promise<{ length: number }>;

/**
 * Calls `fn` back-to-back for `ms` of wall time; returns the calls made and the time taken. Both
 * sides are awaited (the signer is async: a key may sit in an HSM or a vault), so each pays the same.
 */
export async function run(fn: Op, ms: number): Promise<{ ops: number; ms: number }> {
  const start = performance.now();
  const end = start + ms;
  let ops = 0;
  let now = start;
  while (now < end) {
    sink += (await fn()).length;
    ops++;
    now = performance.now();
  }
  return { ops, ms: now - start };
}

/**
 * `inFlight` callers of `fn`, each calling it back-to-back until `ms` of wall time have passed; the
 * time taken runs until the last call in flight has returned, so every call counted is paid for.
 */
export async function runConcurrent(fn: Op, ms: number, inFlight: number): Promise<{ ops: number; ms: number }> {
  if (inFlight <= 1) return run(fn, ms);
  const start = performance.now();
  const end = start + ms;
  let ops = 0;
  const caller = async () => {
    while (performance.now() < end) {
      sink += (await fn()).length;
      ops++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, caller));
  return { ops, ms: performance.now() - start };
}

/** One side of a comparison: runs for about `ms` of wall time, returns the calls completed and the time taken. */
export type Runner = (ms: number) => Promise<{ ops: number; ms: number }>;

/**
 * Ops/s of `a` and `b`, each given `seconds` of wall time in alternating slices: on a shared or
 * throttled machine the speed drifts over seconds, and interleaving exposes both sides to the
 * same drift, so the ratio stays honest even when the absolute numbers move.
 */
export async function compareRunners(a: Runner, b: Runner, seconds: number, slices = 20): Promise<[number, number]> {
  const sliceMs = (seconds * 1000) / slices;
  const totals = [
    { ops: 0, ms: 0 },
    { ops: 0, ms: 0 },
  ];
  for (let i = 0; i < slices; i++) {
    for (const [side, runner] of [a, b].entries()) {
      const r = await runner(sliceMs);
      totals[side]!.ops += r.ops;
      totals[side]!.ms += r.ms;
    }
  }
  return [totals[0]!.ops / (totals[0]!.ms / 1000), totals[1]!.ops / (totals[1]!.ms / 1000)];
}

/** compareRunners with one caller on each side, back-to-back. */
function compareRates(a: Op, b: Op, seconds: number, slices = 20): Promise<[number, number]> {
  return compareRunners((ms) => run(a, ms), (ms) => run(b, ms), seconds, slices);
}

export async function measureSigners(options: { warmupSeconds: number; seconds: number }): Promise<SignerFigures[]> {
  const dir = mkdtempSync(join(tmpdir(), 'token-broker-bench-sign-'));
  try {
    const figures: SignerFigures[] = [];
    for (const { algorithm, keyType } of CASES) {
      // 2048-bit RSA or P-256, loaded through the production loader like a mounted credential.
      const cert = await createThrowawayCertificate({ keyType, rsaBits: 2048, commonName: `bench ${algorithm}` });
      writeFileSync(join(dir, `${algorithm}.crt`), cert.certPem, { mode: 0o600 });
      writeFileSync(join(dir, `${algorithm}.key`), cert.keyPem, { mode: 0o600 });
      const loaded = loadCertificate({ certFile: `${algorithm}.crt`, keyFile: `${algorithm}.key` }, dir);
      const profile = resolveAssertionProfile({ algorithm, lifetimeSeconds: 600, sendX5c: false }, loaded.keyType, entraIdp.assertionDefaults({} as never));
      const signer = new ClientAssertionSigner(new StaticCertificateSource(loaded), profile, systemClock, new FileKeySigner());

      // The raw side signs exactly the bytes the signer signs: "<header>.<claims>" of a real assertion.
      const assertion = await signer.sign(AUDIENCE, CLIENT_ID);
      const input = Buffer.from(assertion.slice(0, assertion.lastIndexOf('.')), 'ascii');
      const keyInput = rawKeyInput(algorithm, loaded.privateKey!);
      const signAssertion = () => signer.sign(AUDIENCE, CLIENT_ID);
      const signRaw = () => cryptoSign('sha256', input, keyInput);

      await run(signAssertion, options.warmupSeconds * 1000);
      await run(signRaw, options.warmupSeconds * 1000);
      const [signerOpsPerSecond, rawOpsPerSecond] = await compareRates(signAssertion, signRaw, options.seconds);
      figures.push({ algorithm, signerOpsPerSecond, rawOpsPerSecond, inputBytes: input.length });
    }
    if (sink === 0) throw new Error('nothing was signed');
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
