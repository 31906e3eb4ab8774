// Grants in this process, written through to an encrypted state file (cache.stateFile) so the
// embedded default keeps every sign-in across a restart. The file is replaced atomically (written
// beside it, flushed, renamed: POSIX rename(2)), so a crash mid-write leaves the previous version.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type { Clock } from '../kernel/clock.ts';
import type { Logger } from '../observability/logger.ts';
import type { CacheCipher } from './cache-cipher.ts';
import type { ClaimOutcome, Grant, GrantStore, StoredGrant } from './grant-store.ts';

interface GrantEntry {
  grant: StoredGrant;
  holder?: string;
  claimUntil?: number;
}

interface StateFile {
  grants: Record<string, GrantEntry>;
  once: Record<string, { value: string; expiresAt: number }>;
}

/** Associated data of the file's encryption: a value from another context cannot be passed off as it. */
const STATE_AAD = 'token-broker state file v1';

export class MemoryGrantStore implements GrantStore {
  private state: StateFile = { grants: {}, once: {} };
  private writes = Promise.resolve();

  constructor(
    private readonly clock: Clock,
    private readonly file?: { path: string; cipher: CacheCipher; logger: Logger },
  ) {
    if (file) this.load(file.path, file.cipher, file.logger);
  }

  private load(path: string, cipher: CacheCipher, logger: Logger): void {
    if (!existsSync(path)) return;
    const opened = cipher.decrypt(readFileSync(path, 'utf8').trim(), STATE_AAD);
    if (opened === undefined) {
      // Keep the file that cannot be opened (a key removed from encryptionKeyFile) instead of overwriting it.
      const kept = `${path}.unreadable-${this.clock.now()}`;
      renameSync(path, kept);
      logger.error({ stateFile: path, keptAs: kept }, 'the state file cannot be opened with any key in cache.encryptionKeyFile: starting without its grants (restore the key to recover them)');
      return;
    }
    this.state = JSON.parse(opened) as StateFile;
    logger.info({ stateFile: path, grants: Object.keys(this.state.grants).length }, 'grants restored from the state file');
  }

  /** Every change is written before the promise resolves; writes never overlap. */
  private persist(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    const now = this.clock.now();
    for (const [key, entry] of Object.entries(this.state.once)) if (entry.expiresAt <= now) delete this.state.once[key];
    const sealed = file.cipher.encrypt(JSON.stringify(this.state), STATE_AAD);
    this.writes = this.writes.then(() => {
      const temp = `${file.path}.${process.pid}.tmp`;
      const fd = openSync(temp, 'w', 0o600);
      try {
        writeSync(fd, `${sealed}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, file.path);
    });
    return this.writes;
  }

  async read(credentialId: string): Promise<StoredGrant | undefined> {
    const entry = this.state.grants[credentialId];
    return entry && { ...entry.grant };
  }

  async replace(credentialId: string, grant: Grant): Promise<StoredGrant> {
    const version = (this.state.grants[credentialId]?.grant.version ?? 0) + 1;
    const stored = { ...grant, version };
    this.state.grants[credentialId] = { grant: stored };
    await this.persist();
    return { ...stored };
  }

  private claimOf(entry: GrantEntry): string | undefined {
    return entry.holder && (entry.claimUntil ?? 0) > this.clock.now() ? entry.holder : undefined;
  }

  async claim(credentialId: string, version: number, holder: string, ttlMs: number): Promise<ClaimOutcome> {
    const entry = this.state.grants[credentialId];
    if (!entry) return 'absent';
    if (entry.grant.version !== version) return 'stale';
    const current = this.claimOf(entry);
    if (current && current !== holder) return 'held';
    entry.holder = holder;
    entry.claimUntil = this.clock.now() + ttlMs;
    await this.persist();
    return 'claimed';
  }

  async extend(credentialId: string, version: number, holder: string, ttlMs: number): Promise<boolean> {
    const entry = this.state.grants[credentialId];
    if (!entry || entry.grant.version !== version || entry.holder !== holder) return false;
    entry.claimUntil = this.clock.now() + ttlMs;
    return true;
  }

  async commit(credentialId: string, version: number, holder: string, grant: Grant): Promise<StoredGrant | undefined> {
    const entry = this.state.grants[credentialId];
    if (!entry || entry.grant.version !== version) return undefined;
    const current = this.claimOf(entry);
    if (current && current !== holder) return undefined;
    const stored = { ...grant, version: version + 1 };
    this.state.grants[credentialId] = { grant: stored };
    await this.persist();
    return { ...stored };
  }

  async release(credentialId: string, version: number, holder: string): Promise<void> {
    const entry = this.state.grants[credentialId];
    if (!entry || entry.grant.version !== version || entry.holder !== holder) return;
    delete entry.holder;
    delete entry.claimUntil;
    await this.persist();
  }

  async forget(credentialId: string): Promise<void> {
    delete this.state.grants[credentialId];
    await this.persist();
  }

  async putOnce(key: string, value: string, ttlMs: number): Promise<void> {
    this.state.once[key] = { value, expiresAt: this.clock.now() + ttlMs };
    await this.persist();
  }

  async takeOnce(key: string): Promise<string | undefined> {
    // Read and delete in one synchronous step: two takers cannot both get the record.
    const entry = this.state.once[key];
    const value = entry && entry.expiresAt > this.clock.now() ? entry.value : undefined;
    if (value === undefined) return undefined;
    delete this.state.once[key];
    await this.persist();
    return value;
  }

  async peekOnce(key: string): Promise<string | undefined> {
    const entry = this.state.once[key];
    return entry && entry.expiresAt > this.clock.now() ? entry.value : undefined;
  }

  async deleteOnce(key: string): Promise<void> {
    if (!(key in this.state.once)) return;
    delete this.state.once[key];
    await this.persist();
  }

  async durability(): Promise<{ durable: boolean; detail: string }> {
    return this.file
      ? { durable: true, detail: `encrypted state file ${this.file.path}` }
      : { durable: false, detail: 'in memory only: set cache.stateFile to keep sign-ins across a restart' };
  }
}
