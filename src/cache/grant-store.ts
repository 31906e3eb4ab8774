// Where delegated credentials keep their grants: the refresh token a person's sign-in produced, with
// who signed in and how it has gone since (docs/delegated-credentials.md). Unlike access tokens a
// grant cannot be obtained again by the broker, and with rotating refresh tokens it must never be
// redeemed twice: the right to redeem is claimed beside the token and its version, and the rotated
// token is written back only if that version is unchanged (compare-and-swap).

/** A grant as the store keeps it, encrypted. Times are epoch milliseconds. */
export interface Grant {
  refreshToken: string;
  state: 'signed_in' | 'sign_in_required';
  /** Why a new sign-in is needed (the IdP's refusal, explained; never a token). */
  reason?: string;
  /** A new random id per sign-in: tokens of another sign-in are never served for this one. */
  generation: string;
  /** The ID token's `sub`, when the IdP sent one. */
  subject?: string;
  /** preferred_username, email or name from the ID token, to show who signed in. */
  displayName?: string;
  scopesGranted?: string;
  signedInAt: number;
  lastRefreshAt: number;
  /** When the refresh token expires, when the IdP says (refresh_expires_in, refresh_token_expires_in). */
  refreshExpiresAt?: number;
  refreshes: number;
  /** Refreshes that returned a new refresh token. */
  rotations: number;
}

export interface StoredGrant extends Grant {
  /** Bumped by every write: what a claim and a commit compare. */
  version: number;
}

/**
 * - `claimed`: this holder may redeem the refresh token of that version until the claim expires;
 * - `held`: another holder's unexpired claim;
 * - `stale`: the grant has another version now (re-read it);
 * - `absent`: no grant;
 * - `unconfirmed`: no replica acknowledged the claim, so a failover could lose it: it was withdrawn.
 */
export type ClaimOutcome = 'claimed' | 'held' | 'stale' | 'absent' | 'unconfirmed';

export interface GrantStore {
  read(credentialId: string): Promise<StoredGrant | undefined>;
  /** A new sign-in: replaces whatever is there, with a new version and no claim. */
  replace(credentialId: string, grant: Grant): Promise<StoredGrant>;
  /** Claims the right to redeem the refresh token of this version, for ttlMs (measured by the store's clock). */
  claim(credentialId: string, version: number, holder: string, ttlMs: number): Promise<ClaimOutcome>;
  /** Extends this holder's claim; false when it is no longer this holder's. */
  extend(credentialId: string, version: number, holder: string, ttlMs: number): Promise<boolean>;
  /** Writes the grant as the next version if the version is unchanged and the claim is this holder's (or nobody's); else undefined. */
  commit(credentialId: string, version: number, holder: string, grant: Grant): Promise<StoredGrant | undefined>;
  /** Gives up this holder's claim, changing nothing. */
  release(credentialId: string, version: number, holder: string): Promise<void>;
  forget(credentialId: string): Promise<void>;
  /** One-time records (pending sign-ins), encrypted, each taken at most once. */
  putOnce(key: string, value: string, ttlMs: number): Promise<void>;
  takeOnce(key: string): Promise<string | undefined>;
  peekOnce(key: string): Promise<string | undefined>;
  deleteOnce(key: string): Promise<void>;
  /** Whether what it holds survives a restart of the store (Redis persistence, the state file), with the reason when not. */
  durability(): Promise<{ durable: boolean; detail: string }>;
}
