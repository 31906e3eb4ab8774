/** A token as the broker keeps it. Times are epoch milliseconds (UTC). */
export interface CachedToken {
  accessToken: string;
  tokenType: string;
  /** When the IdP's stated lifetime ends, counted from when the request was sent. */
  expiresAt: number;
  /** When to renew ahead of expiry (Entra refresh_in), if the IdP said. */
  refreshAt?: number;
  /** When the token was obtained. */
  obtainedAt: number;
  scope?: string;
}

export interface TokenCache {
  /** The entry, or undefined when absent or already expired. Never returns an expired token. */
  get(key: string): Promise<CachedToken | undefined>;
  /** Stores the entry until it expires. */
  set(key: string, token: CachedToken): Promise<void>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}
