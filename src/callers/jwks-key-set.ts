// The signing keys of a caller-token issuer (RFC 7517 JWKS), from a URI or a file. Fetched at first
// use, refetched when a token names an unknown kid or fails with a known one (the issuer rotated
// its key, possibly under the same kid), and never more often than once per minRefreshMs, so a flood
// of made-up kids cannot turn into a flood of fetches.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../observability/logger.ts';

export const JWKS_MIN_REFRESH_MS = 5_000;
/** Keys are refetched at least this often even when every kid is known (revocations). */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
const MAX_JWKS_BYTES = 512 * 1024;
const MAX_KEYS = 100;

export interface JwksSource {
  uri?: string;
  file?: string;
  /** PEM CA for the URI (the Kubernetes API server's). */
  ca?: Buffer;
  /** Bearer token file sent to the URI. */
  tokenFile?: string;
}

interface Jwk {
  kid?: string;
  kty?: string;
  use?: string;
  [k: string]: unknown;
}

function fetchText(uri: string, ca: Buffer | undefined, token: string | undefined, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const url = new URL(uri);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, { method: 'GET', headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, ca, timeout: timeoutMs }, (res) => {
      if ((res.statusCode ?? 0) >= 300) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode}`));
        return;
      }
      let size = 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_JWKS_BYTES) req.destroy(new Error('JWKS too large'));
        else chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export class JwksKeySet {
  private keys = new Map<string, KeyObject>();
  private unnamed: KeyObject[] = [];
  private fetchedAt = 0;
  private attemptedAt = 0;
  private pending?: Promise<void>;

  constructor(
    private readonly source: JwksSource,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    private readonly minRefreshMs = JWKS_MIN_REFRESH_MS,
  ) {}

  /** Candidate keys for a token header's kid (all unnamed keys when the kid is absent or unknown). */
  async keysFor(kid: string | undefined): Promise<KeyObject[]> {
    if (this.fetchedAt === 0 || this.now() - this.fetchedAt > JWKS_MAX_AGE_MS || (kid !== undefined && !this.keys.has(kid))) {
      await this.refresh();
    }
    return this.pick(kid);
  }

  /** After a signature failure with a known key: the issuer may have rotated under the same kid. */
  async refreshAfterFailure(kid: string | undefined): Promise<KeyObject[] | undefined> {
    const before = this.fetchedAt;
    await this.refresh();
    return this.fetchedAt !== before ? this.pick(kid) : undefined;
  }

  private pick(kid: string | undefined): KeyObject[] {
    const named = kid !== undefined ? this.keys.get(kid) : undefined;
    if (named) return [named];
    return kid === undefined ? [...this.unnamed, ...this.keys.values()] : this.unnamed;
  }

  private refresh(): Promise<void> {
    if (this.pending) return this.pending;
    if (this.now() - this.attemptedAt < this.minRefreshMs) return Promise.resolve();
    this.attemptedAt = this.now();
    this.pending = this.load()
      .catch((err: unknown) => {
        // Keep the keys we have: a failing JWKS endpoint must not lock every caller out at once.
        this.logger.warn({ jwks: this.source.uri ?? this.source.file, error: (err as Error).message }, 'caller JWKS could not be loaded; keeping the previous keys');
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  private async load(): Promise<void> {
    const text = this.source.file
      ? readFileSync(this.source.file, 'utf8')
      : await fetchText(this.source.uri!, this.source.ca, this.source.tokenFile ? readFileSync(this.source.tokenFile, 'utf8').trim() : undefined, 5000);
    const doc = JSON.parse(text) as { keys?: Jwk[] };
    if (!Array.isArray(doc.keys)) throw new Error('not a JWKS (no keys array)');
    const keys = new Map<string, KeyObject>();
    const unnamed: KeyObject[] = [];
    for (const jwk of doc.keys.slice(0, MAX_KEYS)) {
      // Only public signing keys: a symmetric ("oct") key here would allow HMAC forgeries.
      if ((jwk.kty !== 'RSA' && jwk.kty !== 'EC') || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
      try {
        const { d: _private, ...publicPart } = jwk;
        const key = createPublicKey({ key: publicPart as never, format: 'jwk' });
        if (typeof jwk.kid === 'string') keys.set(jwk.kid, key);
        else unnamed.push(key);
      } catch {
        // A key we cannot parse cannot verify anything; skip it.
      }
    }
    this.keys = keys;
    this.unnamed = unnamed;
    this.fetchedAt = this.now();
  }
}
