// The `clientSecret` kind (RFC 6749 §2.3.1): a shared secret read from a file and re-read when the
// file changes, sent as `Authorization: Basic` (client_secret_basic, the default) or as the
// `client_secret` form field (client_secret_post, and always where the request can carry it only
// in the body: Entra, msal-node). During a rotation the secret in use before it, or the one in
// `previousFile`, is at hand for one retry after the IdP refuses the new one.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Clock } from '../kernel/clock.ts';
import type { IdpRejected } from '../kernel/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { ClientAuthentication, ClientAuthParts, ClientAuthStatus, ClientAuthTarget, ClientAuthUse } from './client-authentication.ts';
import type { ClientSecretConfig, ClientSecretMethod } from './client-secret-schema.ts';
import { ROTATION_FALLBACK_WINDOW_MS, WatchedFiles, contentFingerprint } from './watched-files.ts';

/** What identifies a client-secret credential in cache keys: nothing derived from the secret (docs/design.md §6.2). */
export const CLIENT_SECRET_IDENTITY = 'client_secret';

const DEFAULT_METHOD: ClientSecretMethod = 'client_secret_basic';

/** One secret as read from its file. `value` never leaves this module except in a token request. */
export interface LoadedClientSecret {
  /** Absolute path of the file. */
  file: string;
  value: string;
  /** The file's mtime when it was read (a symlinked file: its target's). */
  modifiedAt: Date;
}

export interface ClientSecretProblem {
  /** The config field: file or previousFile. */
  field: 'file' | 'previousFile';
  message: string;
}

export class ClientSecretLoadError extends Error {
  constructor(readonly problems: ClientSecretProblem[]) {
    super(problems.map((p) => `${p.field}: ${p.message}`).join('; '));
  }
}

/** What a clientSecret block loaded at startup (and `config check`). */
export interface ClientSecretMaterial {
  current: LoadedClientSecret;
  previous?: LoadedClientSecret;
  /** As configured (absent: client_secret_basic, or a form field where the IdP takes only that). */
  method?: ClientSecretMethod;
}

/**
 * Reads one secret file. A file written with `echo` ends in a newline that is not part of the
 * secret: exactly one trailing `\n` or `\r\n` is dropped. RFC 6749 appendix A allows a client
 * secret only printable ASCII (%x20-7E). Messages name the file, never a character of the secret.
 */
export function readClientSecret(path: string, field: ClientSecretProblem['field']): LoadedClientSecret {
  let raw: string;
  let modifiedAt: Date;
  try {
    raw = readFileSync(path, 'utf8');
    modifiedAt = statSync(path).mtime;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = code === 'ENOENT' ? `file not found: ${path}` : code === 'EACCES' ? `file not readable: ${path}` : `cannot read ${path} (${code ?? 'error'})`;
    throw new ClientSecretLoadError([{ field, message }]);
  }
  const value = raw.replace(/\r?\n$/, '');
  const problem = (message: string) => new ClientSecretLoadError([{ field, message: `${path} ${message}` }]);
  if (value.length === 0) throw problem('is empty: write the client secret into it');
  if (value.startsWith('\uFEFF')) throw problem('starts with a byte-order mark (U+FEFF): save it without one');
  if (/[\r\n]/.test(value)) throw problem('holds more than one line (only one trailing newline is not part of the secret): write the secret alone');
  if (/[^\x20-\x7E]/.test(value)) throw problem('holds a character outside printable ASCII (RFC 6749 appendix A allows %x20-7E in a client secret): check for a tab or a character pasted from a rich-text page');
  return { file: path, value, modifiedAt };
}

/** Reads `file` and `previousFile` (relative to the config's folder); every problem is reported at once. */
export function loadClientSecret(spec: ClientSecretConfig, baseDir: string): ClientSecretMaterial {
  const problems: ClientSecretProblem[] = [];
  const read = (file: string, field: ClientSecretProblem['field']) => {
    try {
      return readClientSecret(resolve(baseDir, file), field);
    } catch (err) {
      if (!(err instanceof ClientSecretLoadError)) throw err;
      problems.push(...err.problems);
      return undefined;
    }
  };
  const current = read(spec.file, 'file');
  const previous = spec.previousFile ? read(spec.previousFile, 'previousFile') : undefined;
  if (!current || problems.length > 0) throw new ClientSecretLoadError(problems);
  return { current, previous, method: spec.method };
}

/** The `config check` line: where the secrets are and their length, never a character of them. */
export function describeClientSecretMaterial(m: ClientSecretMaterial): string {
  const facts = (s: LoadedClientSecret) => `${s.file}, ${s.value.length} character${s.value.length === 1 ? '' : 's'}, modified ${s.modifiedAt.toISOString()}`;
  return `client secret${m.method ? ` (${m.method})` : ''} from ${facts(m.current)}` + (m.previous ? `; previous from ${facts(m.previous)}` : '');
}

/** RFC 6749 appendix B: application/x-www-form-urlencoded, as for a form value (space → '+'). */
export function formUrlEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded *before* being joined and base64-encoded. */
export function basicAuthorization(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${formUrlEncode(clientId)}:${formUrlEncode(secret)}`, 'utf8').toString('base64')}`;
}

export interface ClientSecretOptions {
  credentialId: string;
  baseDir: string;
  clock: Clock;
  logger: Logger;
  /** How often the files are re-read as a fallback to watching them. */
  intervalMs: number;
}

export class ClientSecretAuthentication implements ClientAuthentication {
  readonly kind = 'clientSecret' as const;
  private current: LoadedClientSecret;
  /** The content of `previousFile`, as last read successfully. */
  private fromPreviousFile?: LoadedClientSecret;
  /** The secret `file` held before its last change, while the change is recent. */
  private rotatedOut?: { secret: LoadedClientSecret; until: number };
  private problems: Partial<Record<ClientSecretProblem['field'], string>> = {};
  private lastFingerprint: string;
  /** Whether the last request could carry the secret only as a form field (for describe()). */
  private lastFormOnly?: boolean;
  /** The client id of the last request, for the Basic credentials among redactions(). */
  private lastClientId?: string;
  private readonly watched: WatchedFiles;
  private readonly files: string[];

  constructor(
    private readonly spec: ClientSecretConfig,
    material: ClientSecretMaterial,
    private readonly options: ClientSecretOptions,
  ) {
    this.current = material.current;
    this.fromPreviousFile = material.previous;
    this.files = [resolve(options.baseDir, spec.file), ...(spec.previousFile ? [resolve(options.baseDir, spec.previousFile)] : [])];
    this.lastFingerprint = contentFingerprint(this.files);
    this.watched = new WatchedFiles(() => this.files, { intervalMs: options.intervalMs, check: () => this.check() });
  }

  identity(): string {
    return CLIENT_SECRET_IDENTITY;
  }

  /** Tokens do not depend on which secret obtained them: the cache key stays the same across a rotation. */
  previousIdentity(): undefined {
    return undefined;
  }

  hasPrevious(): boolean {
    return this.previous() !== undefined;
  }

  /**
   * The secret for one retry after a refusal: the one `file` held until its last change (while
   * that change is recent, it is what the IdP last accepted), else the one in `previousFile`.
   */
  private previous(): LoadedClientSecret | undefined {
    const rotated = this.rotatedOut && this.rotatedOut.until > this.options.clock.now() ? this.rotatedOut.secret : undefined;
    return [rotated, this.fromPreviousFile].find((s) => s !== undefined && s.value !== this.current.value);
  }

  private method(formOnly: boolean | undefined): ClientSecretMethod {
    return formOnly ? 'client_secret_post' : (this.spec.method ?? DEFAULT_METHOD);
  }

  async authenticate(target: ClientAuthTarget, use: ClientAuthUse = 'current'): Promise<ClientAuthParts> {
    const secret = (use === 'previous' ? this.previous() : undefined) ?? this.current;
    this.lastFormOnly = target.formOnly ?? false;
    this.lastClientId = target.clientId;
    if (this.method(target.formOnly) === 'client_secret_post') return { form: { client_secret: secret.value } };
    return { form: {}, authorization: basicAuthorization(target.clientId, secret.value) };
  }

  /**
   * The catalogue's hint for invalid_client / AADSTS7000215 speaks of assertions and registered
   * keys; for a secret, the fix is to compare the file with the IdP's secret.
   */
  rejectionHint(err: IdpRejected): string {
    const previous = this.previous();
    const also = previous ? ` (the previous secret, from ${previous.file === this.current.file ? 'before the last change of that file' : previous.file}, was refused too)` : '';
    const expired = err.idp.errorCodes?.includes(7000222) ? ' The secret has expired at the IdP: create a new one, write it to the file.' : '';
    return `the IdP did not accept the client secret read from ${this.current.file}${also}: check that the file holds the current secret value of this client at the IdP (the value, not its id), with nothing else in it.${expired}`;
  }

  status(nowMs: number): ClientAuthStatus {
    const problem = this.reloadProblem();
    return {
      status: 'ok',
      detail: {
        file: this.current.file,
        ...(this.spec.previousFile ? { previous_file: resolve(this.options.baseDir, this.spec.previousFile) } : {}),
        modified_at: this.current.modifiedAt.toISOString(),
        age_seconds: Math.max(0, Math.floor((nowMs - this.current.modifiedAt.getTime()) / 1000)),
        ...(problem ? { reload_problem: problem } : {}),
      },
    };
  }

  expiresAt(): undefined {
    return undefined;
  }

  describe(nowMs: number): Record<string, unknown> {
    const problem = this.reloadProblem();
    return {
      kind: this.kind,
      file: this.current.file,
      previous_file: this.spec.previousFile ? resolve(this.options.baseDir, this.spec.previousFile) : null,
      // What the last request sent; before any, what the next will send where headers can be used.
      method: this.method(this.lastFormOnly),
      length: this.current.value.length,
      modified_at: this.current.modifiedAt.toISOString(),
      age_seconds: Math.max(0, Math.floor((nowMs - this.current.modifiedAt.getTime()) / 1000)),
      previous_at_hand: this.hasPrevious(),
      ...(problem ? { reload_problem: problem } : {}),
    };
  }

  /**
   * Every secret it holds as it travels: raw, form-urlencoded (a form body an IdP might echo) and
   * inside the Basic credentials (an echoed Authorization header).
   */
  redactions(): string[] {
    const values = [this.current, this.rotatedOut?.secret, this.fromPreviousFile].flatMap((s) =>
      s ? [s.value, formUrlEncode(s.value), ...(this.lastClientId !== undefined ? [basicAuthorization(this.lastClientId, s.value).slice('Basic '.length)] : [])] : [],
    );
    return [...new Set(values)];
  }

  start(): void {
    this.watched.start();
  }

  stop(): void {
    this.watched.stop();
  }

  private reloadProblem(): string | undefined {
    const problems = Object.values(this.problems).filter(Boolean);
    return problems.length > 0 ? problems.join('; ') : undefined;
  }

  /** Re-reads the files once their contents changed; a file that is empty or unreadable keeps the last good secret. */
  check(): void {
    const fingerprint = contentFingerprint(this.files);
    if (fingerprint === this.lastFingerprint) return;
    this.lastFingerprint = fingerprint;
    const { logger, clock, credentialId } = this.options;
    const next = this.reread('file', this.files[0]!);
    if (next && next.value !== this.current.value) {
      this.rotatedOut = { secret: this.current, until: clock.now() + ROTATION_FALLBACK_WINDOW_MS };
      this.current = next;
      logger.info(
        { credentialId, file: next.file, length: next.value.length, modifiedAt: next.modifiedAt.toISOString() },
        `client secret reloaded: the previous one is tried once after a refusal for the next ${ROTATION_FALLBACK_WINDOW_MS / 60_000} minutes`,
      );
    } else if (next) {
      this.current = next;
    }
    if (this.files[1]) {
      const previous = this.reread('previousFile', this.files[1]);
      if (previous) this.fromPreviousFile = previous;
    }
  }

  private reread(field: ClientSecretProblem['field'], path: string): LoadedClientSecret | undefined {
    try {
      const secret = readClientSecret(path, field);
      delete this.problems[field];
      return secret;
    } catch (err) {
      const message = err instanceof ClientSecretLoadError ? err.problems[0]!.message : `cannot read ${path}`;
      const problem = `${field === 'file' ? 'clientSecret.file' : 'clientSecret.previousFile'}: ${message}`;
      if (this.problems[field] !== problem) {
        this.options.logger.warn({ credentialId: this.options.credentialId, problem }, `the ${field === 'file' ? 'secret file' : 'previous secret file'} is not usable: keeping the secret read before`);
      }
      this.problems[field] = problem;
      return undefined;
    }
  }
}
