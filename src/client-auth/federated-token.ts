// The `federatedToken` kind: a JWT another issuer wrote to a file (a Kubernetes projected
// service-account token, a CI system's OIDC token), sent as the client assertion (RFC 7521 §4.2,
// RFC 7523 §2.2; Entra workload identity federation, docs/design.md §9.1). The broker never signs
// it and holds no key for it.
//
// The file is read for every exchange: the kubelet rewrites a projected token at 80 % of its
// lifetime, and clients that read it once fail with AADSTS700024 hours later
// (Azure/azure-workload-identity#693, Azure/azure-sdk-for-rust#1739). A token that is expired, or
// about to be, is never sent: the caller is told which file and when it expired. The token itself
// appears in no message, log line or status; its public claims (iss, sub, aud, exp) do.
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Clock } from '../kernel/clock.ts';
import { CredentialUnavailable } from '../kernel/errors.ts';
import type { Logger } from '../observability/logger.ts';
import { JWT_BEARER_ASSERTION_TYPE } from './certificate/certificate-authentication.ts';
import type { AssertionPreview, ClientAuthentication, ClientAuthParts, ClientAuthStatus } from './client-authentication.ts';
import type { FederatedTokenConfig } from './federated-token-schema.ts';

/**
 * A token is sent only with at least this much life left: it must still be valid when the IdP
 * checks it, after the request's transit and whatever the two clocks disagree by.
 */
export const MIN_REMAINING_MS = 10_000;
/**
 * /readyz says expiring_soon once less than this share of the token's lifetime (exp − iat) is left:
 * the kubelet rewrites at 80 %, so by 90 % its rewrite is overdue by a tenth of the lifetime
 * (6 min for the usual 1 h token). Never less than a minute, the kubelet's own sync period.
 */
export const EXPIRING_SOON_FRACTION = 0.1;
const EXPIRING_SOON_FLOOR_MS = 60_000;
/** Without iat the lifetime is unknown: expiring_soon this close to exp. */
const EXPIRING_SOON_WITHOUT_IAT_MS = 5 * 60_000;
/** status(), identity() and the other cheap views re-read the file at most this often. */
const STATUS_REREAD_MS = 1_000;
/** A service-account token is 1–2 KiB; anything this large is not one (and is not read into memory). */
const MAX_FILE_BYTES = 64 * 1024;
/** How long a caller is told to wait: the writer (kubelet) usually rewrites within its sync period. */
const RETRY_AFTER_SECONDS = 10;

const B64URL_PART = /^[A-Za-z0-9_-]+$/;

/** The public facts of a federated token: what `config check`, /readyz and diagnostics show. */
export interface FederatedTokenFacts {
  header: { alg: string; kid?: string; typ?: string };
  iss: string;
  sub: string;
  aud: string | string[];
  /** NumericDate (seconds since the epoch). */
  exp: number;
  iat?: number;
  nbf?: number;
}

/** What the loader found at startup (never the token itself). */
export interface FederatedTokenMaterial {
  kind: 'federatedToken';
  /** Absolute path of the token file. */
  file: string;
  token: FederatedTokenFacts;
  /** Already expired (or about to be) when checked: reported, not refused (see loadFederatedTokenMaterial). */
  expired: boolean;
}

interface ParsedToken {
  token: string;
  facts: FederatedTokenFacts;
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

type ReadResult = { ok: true; parsed: ParsedToken } | { ok: false; problem: string };

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNumericDate = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const iso = (seconds: number): string => (Math.abs(seconds) < 8.64e12 ? new Date(seconds * 1000).toISOString() : `${seconds} s`);

function decodePart(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks that the text is a compact JWS (RFC 7515 §7.1) carrying the claims RFC 7523 §3 requires
 * of an assertion. Problems describe the shape, never the content: the text is a credential.
 */
export function parseFederatedToken(text: string, file: string): ReadResult {
  // Writers end files with a newline (or not); a JWT holds no whitespace.
  const token = text.trim();
  if (token === '') return { ok: false, problem: `the federated token file ${file} is empty` };
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL_PART.test(p))) {
    const shape = parts.length === 5 ? 'five parts: an encrypted JWE, not a signed JWT' : parts.length !== 3 ? `${parts.length} part(s) separated by '.'` : 'a part that is not base64url';
    return { ok: false, problem: `the federated token file ${file} does not hold a JWT: a signed JWT is three base64url parts separated by '.' (RFC 7515 §7.1), this has ${shape}` };
  }
  const header = decodePart(parts[0]!);
  const claims = decodePart(parts[1]!);
  if (!header || !claims) {
    return { ok: false, problem: `the federated token file ${file} does not hold a JWT: its ${header ? 'payload' : 'header'} is not base64url-encoded JSON` };
  }
  if (typeof header.alg !== 'string' || header.alg === '' || header.alg.toLowerCase() === 'none') {
    return { ok: false, problem: `the JWT in ${file} is not signed (alg ${typeof header.alg === 'string' ? `'${header.alg}'` : 'missing'}): an IdP accepts only a signed assertion` };
  }
  const missing: string[] = ['iss', 'sub'].filter((c) => typeof claims[c] !== 'string' || claims[c] === '');
  const aud = claims.aud;
  if (!(typeof aud === 'string' && aud !== '') && !(Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string'))) missing.push('aud');
  if (!isNumericDate(claims.exp)) missing.push('exp');
  if (missing.length > 0) {
    return { ok: false, problem: `the JWT in ${file} has no usable ${missing.join(', ')} (RFC 7523 §3: an assertion carries iss, sub, aud and a numeric exp)` };
  }
  const facts: FederatedTokenFacts = {
    header: { alg: header.alg, ...(typeof header.kid === 'string' ? { kid: header.kid } : {}), ...(typeof header.typ === 'string' ? { typ: header.typ } : {}) },
    iss: claims.iss as string,
    sub: claims.sub as string,
    aud: aud as string | string[],
    exp: claims.exp as number,
    ...(isNumericDate(claims.iat) ? { iat: claims.iat } : {}),
    ...(isNumericDate(claims.nbf) ? { nbf: claims.nbf } : {}),
  };
  return { ok: true, parsed: { token, facts, header, claims } };
}

function readProblem(file: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? `the federated token file ${file} does not exist` : `cannot read the federated token file ${file} (${code ?? (err as Error).message})`;
}

function tooLarge(file: string, size: number): string {
  return `the federated token file ${file} is ${size} bytes: not a JWT (a service-account token is 1–2 KiB; at most ${MAX_FILE_BYTES} bytes are read)`;
}

function readSync(file: string): ReadResult {
  try {
    const size = statSync(file).size;
    if (size > MAX_FILE_BYTES) return { ok: false, problem: tooLarge(file, size) };
    return parseFederatedToken(readFileSync(file, 'utf8'), file);
  } catch (err) {
    return { ok: false, problem: readProblem(file, err) };
  }
}

async function readAsync(file: string): Promise<ReadResult> {
  try {
    const size = (await stat(file)).size;
    if (size > MAX_FILE_BYTES) return { ok: false, problem: tooLarge(file, size) };
    return parseFederatedToken(await readFile(file, 'utf8'), file);
  } catch (err) {
    return { ok: false, problem: readProblem(file, err) };
  }
}

/** Whether a token with this exp may still be sent at `nowMs`. */
function sendable(facts: FederatedTokenFacts, nowMs: number): boolean {
  return facts.exp * 1000 - nowMs >= MIN_REMAINING_MS;
}

function expiryProblem(file: string, facts: FederatedTokenFacts, nowMs: number): string {
  const when = facts.exp * 1000 <= nowMs ? `expired at ${iso(facts.exp)}` : `expires at ${iso(facts.exp)}, in less than ${MIN_REMAINING_MS / 1000} s`;
  return (
    `the federated token in ${file} ${when} (now ${new Date(nowMs).toISOString()}): it is not sent until the file holds a newer one ` +
    '(the kubelet rewrites a projected service-account token at 80 % of its lifetime: check the pod\'s token volume)'
  );
}

/**
 * Startup and `config check`: the file must exist and hold a signed JWT with iss, sub, aud and exp.
 * A token that has already expired is not a configuration error: whoever projects the file
 * (the kubelet) may rewrite it seconds later, and a broker that refused to start would only
 * crash-loop meanwhile. It is reported instead (a warning in `config check`, not_ready in /readyz)
 * and never sent.
 */
export function loadFederatedTokenMaterial(spec: FederatedTokenConfig, baseDir: string, now: Date): { material?: FederatedTokenMaterial; problems: { path: string; message: string }[] } {
  const file = resolve(baseDir, spec.file);
  const read = readSync(file);
  if (!read.ok) return { problems: [{ path: 'federatedToken.file', message: read.problem }] };
  return { material: { kind: 'federatedToken', file, token: read.parsed.facts, expired: !sendable(read.parsed.facts, now.getTime()) }, problems: [] };
}

/** The `config check` line for a federated token: its public claims, and a warning once expired. */
export function describeFederatedTokenMaterial(m: FederatedTokenMaterial): string {
  const t = m.token;
  const line =
    `federated token ${m.file}: iss ${t.iss}, sub ${t.sub}, aud ${[t.aud].flat().join(' ')}, ${t.header.alg}${t.header.kid ? ` kid ${t.header.kid}` : ''}, ` +
    `valid until ${iso(t.exp)}`;
  return m.expired ? `${line}\n    warning: this token has expired: it is not sent, and /readyz is not_ready, until the file holds a newer one` : line;
}

interface Snapshot {
  readAt: number;
  /** The last token that parsed (kept while the file is broken, for identity and the public facts). */
  good?: ParsedToken;
  /** Why the file as last read is unusable. */
  problem?: string;
}

export interface FederatedTokenOptions {
  credentialId: string;
  clock: Clock;
  logger: Logger;
}

export class FederatedTokenAuthentication implements ClientAuthentication {
  readonly kind = 'federatedToken' as const;
  readonly file: string;
  private snapshot: Snapshot;
  /** The token sent before the current one: an IdP might still echo it back (redactions). */
  private earlierToken?: string;
  /** What was last logged about the file, so each change is logged once. */
  private loggedState = '';

  constructor(
    material: FederatedTokenMaterial,
    private readonly options: FederatedTokenOptions,
  ) {
    this.file = material.file;
    // The facts read at startup stand in until the first read; the token itself is read when needed.
    this.snapshot = { readAt: -Infinity, good: { token: '', facts: material.token, header: { ...material.token.header }, claims: {} } };
  }

  /** Public claims only: the same workload identity keeps its cache entries across kubelet rewrites. */
  identity(): string {
    const facts = this.current().good!.facts;
    return `federated:${facts.iss}|${facts.sub}`;
  }

  previousIdentity(): undefined {
    return undefined;
  }

  hasPrevious(): boolean {
    return false;
  }

  assertionAlgorithm(): string {
    return this.current().good!.facts.header.alg;
  }

  /** Reads the file now (never a cached read) and sends its token, unless it has expired or is unusable. */
  async authenticate(): Promise<ClientAuthParts> {
    const read = await readAsync(this.file);
    const now = this.options.clock.now();
    this.remember(read, now);
    if (!read.ok) throw new CredentialUnavailable(`${read.problem}: nothing was sent to the identity provider`, RETRY_AFTER_SECONDS);
    if (!sendable(read.parsed.facts, now)) throw new CredentialUnavailable(expiryProblem(this.file, read.parsed.facts, now), RETRY_AFTER_SECONDS);
    return { form: { client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: read.parsed.token } };
  }

  status(nowMs: number): ClientAuthStatus {
    const snap = this.current();
    if (snap.problem) return { status: 'unavailable', detail: { file: this.file, problem: snap.problem } };
    const facts = snap.good!.facts;
    const leftMs = facts.exp * 1000 - nowMs;
    const soonMs = facts.iat !== undefined && facts.exp > facts.iat ? Math.max((facts.exp - facts.iat) * 1000 * EXPIRING_SOON_FRACTION, EXPIRING_SOON_FLOOR_MS) : EXPIRING_SOON_WITHOUT_IAT_MS;
    const status = !sendable(facts, nowMs) ? 'expired' : leftMs < soonMs ? 'expiring_soon' : 'ok';
    return {
      status,
      detail: { file: this.file, expires_at: iso(facts.exp), seconds_left: Math.floor(leftMs / 1000), iss: facts.iss, sub: facts.sub },
    };
  }

  expiresAt(): number {
    return this.current().good!.facts.exp * 1000;
  }

  describe(nowMs: number): Record<string, unknown> {
    const snap = this.current();
    const { header, iss, sub, aud, exp, iat, nbf } = snap.good!.facts;
    return {
      kind: this.kind,
      file: this.file,
      header,
      claims: { iss, sub, aud, exp, ...(iat !== undefined ? { iat } : {}), ...(nbf !== undefined ? { nbf } : {}) },
      expires_at: iso(exp),
      status: this.status(nowMs).status,
      ...(snap.problem ? { problem: snap.problem } : {}),
    };
  }

  previewAssertion(): AssertionPreview {
    const snap = this.current();
    if (snap.problem || !snap.good?.token) return { header: snap.good?.header ?? {}, claims: null, signedBy: 'external issuer' };
    return { header: snap.good.header, claims: snap.good.claims, signedBy: 'external issuer' };
  }

  redactions(): string[] {
    return [this.snapshot.good?.token, this.earlierToken].filter((t): t is string => !!t);
  }

  start(): void {
    this.current();
  }

  stop(): void {}

  /** The file as read within the last second (a fresh read otherwise): for the cheap views, never for sending. */
  private current(): Snapshot {
    const now = this.options.clock.now();
    if (now - this.snapshot.readAt >= STATUS_REREAD_MS) this.remember(readSync(this.file), now);
    return this.snapshot;
  }

  private remember(read: ReadResult, now: number): void {
    if (read.ok) {
      const before = this.snapshot.good?.token;
      if (before && before !== read.parsed.token) this.earlierToken = before;
      this.snapshot = { readAt: now, good: read.parsed };
    } else {
      this.snapshot = { readAt: now, good: this.snapshot.good, problem: read.problem };
    }
    this.logChange(read, now);
  }

  /** One line per change of the file's state: a new token, a token that expired, a file gone bad. */
  private logChange(read: ReadResult, now: number): void {
    const log = this.options.logger;
    const base = { credentialId: this.options.credentialId, file: this.file };
    if (!read.ok) {
      const state = `problem:${read.problem}`;
      if (state !== this.loggedState) log.warn({ ...base, problem: read.problem }, 'federated token file unusable: nothing is sent to the identity provider until it is fixed');
      this.loggedState = state;
      return;
    }
    const f = read.parsed.facts;
    const facts = { ...base, iss: f.iss, sub: f.sub, expiresAt: iso(f.exp) };
    const expired = !sendable(f, now);
    const state = `${expired ? 'expired' : 'ok'}:${f.iss}|${f.sub}|${f.exp}|${f.iat ?? ''}`;
    if (state === this.loggedState) return;
    this.loggedState = state;
    if (expired) log.warn(facts, 'the federated token in the file has expired: it is not sent until the file holds a newer one');
    else log.info(facts, 'federated token read from the file');
  }
}
