// A private key that never leaves a PKCS#11 token (an HSM, a cloud HSM, a YubiHSM; SoftHSM in the
// tests): the token signs, the broker never reads the key (PKCS#11 v2.40 base specification,
// http://docs.oasis-open.org/pkcs11/pkcs11-base/v2.40/os/pkcs11-base-v2.40-os.html). Sessions are
// opened once and reused; one signature runs per session at a time (§5.6), so `sessions` bounds how
// many run at once and the rest wait in line. After any token or library error every session is
// dropped and the library re-initialised on the next signature: a token pulled and put back, a
// restarted HSM client or a network HSM's lost connection then heals without a restart.
// The binding (pkcs11js, a native addon) is an optional dependency, loaded only when a credential
// names pkcs11.
import { createHash, randomBytes, verify, constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { CredentialUnavailable } from '../../kernel/errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Pkcs11Config, SigningAlgorithm } from './certificate-schema.ts';
import type { LoadedCertificate } from './certificate.ts';
import type { KeySigner, KeySignerStatus } from './key-signer.ts';

/** The part of pkcs11js the signer uses: declared here so the broker builds where the addon is not installed. */
interface Pkcs11Binding {
  PKCS11: new () => Pkcs11Library;
  [constant: string]: unknown;
}
interface Pkcs11Library {
  load(path: string): void;
  C_Initialize(options?: { flags: number }): void;
  C_Finalize(): void;
  C_GetSlotList(tokenPresent: boolean): Buffer[];
  C_GetTokenInfo(slot: Buffer): { label: string };
  C_OpenSession(slot: Buffer, flags: number): Buffer;
  C_CloseSession(session: Buffer): void;
  C_Login(session: Buffer, userType: number, pin: string): void;
  C_FindObjectsInit(session: Buffer, template: { type: number; value: unknown }[]): void;
  C_FindObjects(session: Buffer, max: number): Buffer[];
  C_FindObjectsFinal(session: Buffer): void;
  C_SignInit(session: Buffer, mechanism: { mechanism: number; parameter?: unknown }, key: Buffer): void;
  C_Sign(session: Buffer, data: Buffer, signature: Buffer, callback: (err: Error | null, signature: Buffer) => void): void;
}

interface OpenToken {
  /** The binding the token was opened with: its constants name the mechanisms. */
  binding: Pkcs11Binding;
  module: LoadedModule;
  /** The module's generation when this token was opened: after a re-initialisation its sessions are gone. */
  generation: number;
  sessions: Buffer[];
  key: Buffer;
}

/**
 * A PKCS#11 library is initialised once per process (C_Initialize / C_Finalize are process-wide,
 * §5.4), and several credentials may use one module. After an error one signer re-initialises it
 * (the only way SoftHSM and many HSM clients recover a token that went away); the generation tells
 * the others that their sessions went with it, so they reopen without finalising again.
 */
interface LoadedModule {
  library: Pkcs11Library;
  initialised: boolean;
  generation: number;
}
const modules = new Map<string, LoadedModule>();

function loadedModule(binding: Pkcs11Binding, path: string): LoadedModule {
  const osLocking = binding.CKF_OS_LOCKING_OK as number;
  let loaded = modules.get(path);
  if (!loaded) {
    const library = new binding.PKCS11();
    library.load(path);
    modules.set(path, (loaded = { library, initialised: false, generation: 0 }));
  }
  if (!loaded.initialised) {
    try {
      // Signatures run on libuv's worker threads, several at once: the library must lock (PKCS#11
      // v2.40 §5.4, CKF_OS_LOCKING_OK). Without it SoftHSM corrupts memory under concurrent C_Sign.
      loaded.library.C_Initialize({ flags: osLocking });
    } catch (err) {
      if (pkcs11Reason(err) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw err;
    }
    loaded.initialised = true;
  }
  return loaded;
}

/** Re-initialisation after an error, once per generation however many signers saw the error. */
function resetModule(loaded: LoadedModule, generation: number): void {
  if (loaded.generation !== generation) return;
  loaded.generation += 1;
  loaded.initialised = false;
  try {
    loaded.library.C_Finalize();
  } catch {
    // a library that lost its token may refuse even this
  }
}

const RSA_SIGNATURE_BYTES = 512; // room for a 4096-bit modulus; the token says how much it wrote

export function loadPkcs11Binding(packageName = 'pkcs11js'): Pkcs11Binding {
  try {
    return createRequire(import.meta.url)(packageName) as Pkcs11Binding;
  } catch (err) {
    throw new CredentialUnavailable(
      'the PKCS#11 binding (the optional dependency pkcs11js) is not installed: build the image with a C++ toolchain so npm ci can compile it (README, "Keys in an HSM")',
      30,
      { cause: err },
    );
  }
}

/** The PKCS#11 error code in a binding error ("CKR_TOKEN_NOT_PRESENT: …"), else the message. */
function pkcs11Reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return /\bCKR_[A-Z_]+/.exec(message)?.[0] ?? message.slice(0, 200);
}

export class Pkcs11KeySigner implements KeySigner {
  readonly backend = 'pkcs11' as const;
  private token?: OpenToken;
  private opening?: Promise<OpenToken>;
  private readonly idle: Buffer[] = [];
  private readonly waiting: { resolve: (session: Buffer) => void; reject: (err: Error) => void }[] = [];
  private lastStatus: KeySignerStatus = { state: 'not_yet_used' };
  /** The certificate whose pair with the token key was last checked (a reloaded certificate is checked again). */
  private pairCheckedFor?: string;
  /** A PIN the token refused: not presented again until the file holds another (HSMs lock a PIN after a few failures). */
  private refusedPin?: string;

  constructor(
    private readonly config: Pkcs11Config,
    private readonly baseDir: string,
    private readonly credentialId: string,
    private readonly logger: Logger,
    private readonly binding: () => Pkcs11Binding = loadPkcs11Binding,
  ) {}

  private get where(): string {
    const token = this.config.tokenLabel !== undefined ? `token '${this.config.tokenLabel}'` : `slot ${this.config.slot}`;
    const key = this.config.keyLabel !== undefined ? `key '${this.config.keyLabel}'` : `key id ${this.config.keyId}`;
    return `${key} in ${token} (${this.config.module})`;
  }

  describe(): Record<string, unknown> {
    return {
      backend: this.backend,
      module: resolve(this.baseDir, this.config.module),
      ...(this.config.tokenLabel !== undefined ? { token_label: this.config.tokenLabel } : { slot: this.config.slot }),
      ...(this.config.keyLabel !== undefined ? { key_label: this.config.keyLabel } : { key_id: this.config.keyId }),
      sessions: this.config.sessions,
      state: this.lastStatus.state,
      ...(this.lastStatus.problem ? { problem: this.lastStatus.problem } : {}),
    };
  }

  status(): KeySignerStatus {
    return this.lastStatus;
  }

  async sign(algorithm: SigningAlgorithm, signingInput: Buffer, certificate: LoadedCertificate): Promise<Buffer> {
    const session = await this.session();
    try {
      if (this.pairCheckedFor !== certificate.thumbprints.sha256Hex) await this.checkPair(session, certificate);
      const signature = await this.signOn(session, algorithm, signingInput);
      this.lastStatus = { state: 'ok' };
      return signature;
    } catch (err) {
      if (err instanceof CredentialUnavailable) throw err;
      const reason = pkcs11Reason(err);
      this.drop(reason);
      throw new CredentialUnavailable(`credential '${this.credentialId}': the HSM could not sign with ${this.where}: ${reason}; the token is opened again at the next attempt`, 1, { cause: err });
    } finally {
      this.release(session);
    }
  }

  /** An idle session, opening the token first if need be; waits in line when every session is busy. */
  private async session(): Promise<Buffer> {
    // Another signer of the same module re-initialised it: these sessions are gone.
    if (this.token && this.token.generation !== this.token.module.generation) this.forget();
    if (!this.token) {
      this.opening ??= this.open().finally(() => (this.opening = undefined));
      await this.opening;
    }
    const idle = this.idle.pop();
    if (idle) return idle;
    return new Promise((resolvePromise, reject) => this.waiting.push({ resolve: resolvePromise, reject }));
  }

  private release(session: Buffer): void {
    // A session of a token dropped meanwhile is not handed out again.
    if (!this.token?.sessions.includes(session)) return;
    const next = this.waiting.shift();
    if (next) next.resolve(session);
    else this.idle.push(session);
  }

  private async open(): Promise<OpenToken> {
    const binding = this.binding();
    const c = (name: string) => binding[name] as number;
    let pin: string;
    try {
      pin = readFileSync(resolve(this.baseDir, this.config.pinFile), 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw this.unavailable(`the PIN file ${resolve(this.baseDir, this.config.pinFile)} cannot be read (${(err as NodeJS.ErrnoException).code})`, err);
    }
    const pinDigest = createHash('sha256').update(pin).digest('hex');
    if (this.refusedPin === pinDigest) {
      throw this.unavailable(`the token refused the PIN in ${resolve(this.baseDir, this.config.pinFile)}; it is not presented again until that file changes (HSMs lock a PIN after a few failures)`, undefined);
    }
    let loaded: LoadedModule | undefined;
    const sessions: Buffer[] = [];
    try {
      loaded = loadedModule(binding, resolve(this.baseDir, this.config.module));
      const { library } = loaded;
      const slot = this.findSlot(library);
      for (let i = 0; i < this.config.sessions; i++) sessions.push(library.C_OpenSession(slot, c('CKF_SERIAL_SESSION')));
      try {
        // One login serves every session of this application (PKCS#11 v2.40 §5.5).
        library.C_Login(sessions[0]!, c('CKU_USER'), pin);
      } catch (err) {
        const reason = pkcs11Reason(err);
        if (reason === 'CKR_PIN_INCORRECT' || reason === 'CKR_PIN_LOCKED' || reason === 'CKR_PIN_INVALID') this.refusedPin = pinDigest;
        if (reason !== 'CKR_USER_ALREADY_LOGGED_IN') throw err;
      }
      const key = this.findKey(library, sessions[0]!, c);
      const token: OpenToken = { binding, module: loaded, generation: loaded.generation, sessions, key };
      this.token = token;
      this.idle.push(...sessions);
      this.logger.info({ credentialId: this.credentialId, where: this.where, sessions: sessions.length }, 'PKCS#11 token opened');
      return token;
    } catch (err) {
      if (err instanceof CredentialUnavailable) throw err;
      const reason = pkcs11Reason(err);
      // A refused PIN or a key that is not there is this credential's problem: the library and the
      // other credentials' sessions stay as they are. Anything else may be the token or the library.
      if (loaded && (reason.startsWith('CKR_PIN_') || reason === 'CKR_KEY_HANDLE_INVALID')) {
        for (const session of sessions) {
          try {
            loaded.library.C_CloseSession(session);
          } catch {
            // already gone
          }
        }
      } else if (loaded) {
        resetModule(loaded, loaded.generation);
      }
      throw this.unavailable(`cannot open ${this.where}: ${reason}`, err);
    }
  }

  private unavailable(message: string, cause: unknown): CredentialUnavailable {
    this.lastStatus = { state: 'unavailable', problem: message };
    return new CredentialUnavailable(`credential '${this.credentialId}': ${message}`, 5, { cause });
  }

  private findSlot(library: Pkcs11Library): Buffer {
    const slots = library.C_GetSlotList(true);
    const slot =
      this.config.tokenLabel !== undefined
        ? slots.find((s) => library.C_GetTokenInfo(s).label.trim() === this.config.tokenLabel)
        : slots.find((s) => s.readUIntLE(0, s.length) === this.config.slot);
    if (!slot) throw new Error(`CKR_TOKEN_NOT_PRESENT: no token ${this.config.tokenLabel !== undefined ? `labelled '${this.config.tokenLabel}'` : `in slot ${this.config.slot}`} is present`);
    return slot;
  }

  private findKey(library: Pkcs11Library, session: Buffer, c: (name: string) => number): Buffer {
    const template: { type: number; value: unknown }[] = [{ type: c('CKA_CLASS'), value: c('CKO_PRIVATE_KEY') }];
    if (this.config.keyLabel !== undefined) template.push({ type: c('CKA_LABEL'), value: this.config.keyLabel });
    else template.push({ type: c('CKA_ID'), value: Buffer.from(this.config.keyId!, 'hex') });
    library.C_FindObjectsInit(session, template);
    const found = library.C_FindObjects(session, 2);
    library.C_FindObjectsFinal(session);
    if (found.length !== 1) throw new Error(`CKR_KEY_HANDLE_INVALID: ${found.length === 0 ? 'no private key' : 'more than one private key'} matches ${this.config.keyLabel !== undefined ? `label '${this.config.keyLabel}'` : `id ${this.config.keyId}`}`);
    return found[0]!;
  }

  private mechanism(token: OpenToken, algorithm: SigningAlgorithm): { mechanism: number; parameter?: unknown } {
    const c = (name: string) => token.binding[name] as number;
    switch (algorithm) {
      case 'RS256':
        return { mechanism: c('CKM_SHA256_RSA_PKCS') };
      case 'PS256':
        // RFC 7518 §3.5: SHA-256, MGF1 with SHA-256, a salt as long as the hash.
        return { mechanism: c('CKM_SHA256_RSA_PKCS_PSS'), parameter: { type: c('CK_PARAMS_RSA_PSS'), hashAlg: c('CKM_SHA256'), mgf: c('CKG_MGF1_SHA256'), saltLen: 32 } };
      case 'ES256':
        // CKM_ECDSA signs a digest the caller computed, and returns r‖s: already the JWS form (RFC 7518 §3.4).
        return { mechanism: c('CKM_ECDSA') };
    }
  }

  private signOn(session: Buffer, algorithm: SigningAlgorithm, signingInput: Buffer): Promise<Buffer> {
    const token = this.token;
    if (!token) return Promise.reject(new Error('CKR_SESSION_CLOSED: the token was closed'));
    const { library } = token.module;
    const data = algorithm === 'ES256' ? createHash('sha256').update(signingInput).digest() : signingInput;
    library.C_SignInit(session, this.mechanism(token, algorithm), token.key);
    // The callback form runs C_Sign on a libuv worker thread, so a slow HSM does not stop the event loop.
    return new Promise((resolvePromise, reject) =>
      library.C_Sign(session, data, Buffer.alloc(algorithm === 'ES256' ? 64 : RSA_SIGNATURE_BYTES), (err, signature) => (err ? reject(err) : resolvePromise(signature))),
    );
  }

  /** Once per opening: the token's key must be the certificate's pair, or every IdP would refuse the assertions. */
  private async checkPair(session: Buffer, certificate: LoadedCertificate): Promise<void> {
    const algorithm: SigningAlgorithm = certificate.keyType === 'ec' ? 'ES256' : 'RS256';
    const probe = randomBytes(32);
    const signature = await this.signOn(session, algorithm, probe);
    const key = certificate.leaf.publicKey;
    const ok = algorithm === 'ES256' ? verify('sha256', probe, { key, dsaEncoding: 'ieee-p1363' }, signature) : verify('sha256', probe, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    if (!ok) {
      throw this.unavailable(`${this.where} is not the key of the certificate in certFile (${certificate.thumbprints.sha1Hex}): a signature made with it does not verify with that certificate`, undefined);
    }
    this.pairCheckedFor = certificate.thumbprints.sha256Hex;
  }

  /** This signer's sessions are no longer usable (the token was dropped or the module re-initialised). */
  private forget(): void {
    this.token = undefined;
    this.pairCheckedFor = undefined;
    this.idle.length = 0;
  }

  /** Forgets the token after an error and re-initialises the module: the next signature opens it again. */
  private drop(reason: string): void {
    const token = this.token;
    this.forget();
    this.lastStatus = { state: 'unavailable', problem: `${this.where}: ${reason}` };
    this.logger.warn({ credentialId: this.credentialId, where: this.where, reason }, 'PKCS#11 signing failed: the token is opened again at the next signature');
    if (token) resetModule(token.module, token.generation);
    // Those in line were waiting for the token that failed: they fail too (at most the signatures in flight).
    const failed = new CredentialUnavailable(`credential '${this.credentialId}': the HSM failed while this signature waited (${reason}); the token is opened again at the next attempt`, 1);
    for (const next of this.waiting.splice(0)) next.reject(failed);
  }

  /** Closes this signer's sessions; the module stays initialised for others (the process ends it). */
  close(): void {
    const token = this.token;
    this.forget();
    if (!token || token.generation !== token.module.generation) return;
    for (const session of token.sessions) {
      try {
        token.module.library.C_CloseSession(session);
      } catch {
        // already closed
      }
    }
  }
}
