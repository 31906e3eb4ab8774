// The signing keys of a caller-token issuer (RFC 7517 JWKS), from a URI or a file. Fetched at first
// use, refetched when a token names an unknown kid or fails with a known one (the issuer rotated
// its key, possibly under the same kid), and never more often than once per minRefreshMs, so a flood
// of made-up kids cannot turn into a flood of fetches.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { outboundRequest } from '../net/outbound-request.ts';
import type { Logger } from '../observability/logger.ts';

export const JWKS_MIN_REFRESH_MS = 5_000;
/** Keys are refetched at least this often even when every kid is known (revocations). */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
const MAX_JWKS_BYTES = 512 * 1024;
/** The whole JWKS fetch, connect to last byte. */
const JWKS_TIMEOUT_MS = 5_000;
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

async function fetchText(uri: string, ca: Buffer | undefined, token: string | undefined): Promise<string> {
  // One deadline for the whole fetch (a JWKS that drips a byte a second ends too), a bounded body.
  const res = await outboundRequest(uri, {
    headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ca,
    timeoutMs: JWKS_TIMEOUT_MS,
    maxBodyBytes: MAX_JWKS_BYTES,
  });
  if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status}`);
  return res.body;
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
      : await fetchText(this.source.uri!, this.source.ca, this.source.tokenFile ? readFileSync(this.source.tokenFile, 'utf8').trim() : undefined);
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
