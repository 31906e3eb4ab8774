// Access tokens for a delegated credential: the stored refresh token redeemed at the token endpoint
// (RFC 6749 §6), safe when the IdP rotates refresh tokens and revokes a grant whose old token is
// presented again (oidc-provider, Keycloak with max reuse 0, Auth0/Okta past their leeway):
// 1. read the grant and its version;
// 2. claim the right to redeem that version, atomically beside the token (GrantStore.claim), and
//    keep extending the claim while the IdP call runs;
// 3. redeem, then write the rotated token back only if the version is unchanged (commit, a CAS).
// Another replica that finds the claim held waits for the new version instead of redeeming.
// docs/delegated-credentials.md says what remains possible and what the broker then does.
import { randomUUID } from 'node:crypto';
import type { Grant, GrantStore, StoredGrant } from '../cache/grant-store.ts';
import type { ClientAuthentication } from '../client-auth/client-authentication.ts';
import type { Clock } from '../kernel/clock.ts';
import { CacheUnavailable, CredentialUnavailable, IdpRejected, SignInRequired } from '../kernel/errors.ts';
import type { Logger } from '../observability/logger.ts';
import { postGrantRequest, type GrantTokenResponse } from '../idps/token-endpoint-client.ts';
import type { IssuedToken, TokenEndpointDescription, TokenProvider, TokenRequest } from '../idps/token-provider.ts';
import type { DelegatedEndpointResolver } from './delegated-endpoints.ts';

/** Waiting for another replica's redemption polls the grant this often. */
const HELD_POLL_MS = 200;

export interface DelegatedCredential {
  id: string;
  clientId: string;
  idpName: string;
  timeoutMs: number;
  /** The scopes of the sign-in, for the keep-alive refresh. */
  signInScope: string;
  /** The `aud` of an assertion for this token endpoint (confidential clients with a certificate). */
  audience(tokenEndpoint: string, issuer: string): string;
}

export interface RefreshObserver {
  /** A redemption's outcome (metrics, the watcher's view). */
  refreshed?(credentialId: string, result: 'success' | 'sign_in_required' | 'failure', grant?: StoredGrant): void;
}

/** Who must act, and how, when a person has to sign in again. */
export function signInHint(credentialId: string): string {
  return `a caller with signIn: true starts a new sign-in: POST /v1/credentials/${credentialId}/sign-in, or run: token-broker sign-in ${credentialId}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class DelegatedTokenProvider implements TokenProvider {
  /** This process, as a claim holder. */
  private readonly holder = `${process.pid}-${randomUUID()}`;
  /**
   * The last grant this process committed, with the version it replaced: if a failover brings back
   * a master without the commit, the old version shows again with our claim, and we write the
   * rotated token once more instead of redeeming the consumed one.
   */
  private lastCommit?: { fromVersion: number; grant: Grant; until: number };

  constructor(
    private readonly credential: DelegatedCredential,
    private readonly auth: ClientAuthentication,
    private readonly grants: GrantStore,
    private readonly endpoints: DelegatedEndpointResolver,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly observer: RefreshObserver = {},
  ) {}

  async describeEndpoint(signal?: AbortSignal): Promise<TokenEndpointDescription> {
    const { tokenEndpoint, issuer } = await this.endpoints.resolve(signal);
    return { tokenEndpoint, audience: this.credential.audience(tokenEndpoint, issuer) };
  }

  /** A claim lives long enough for one IdP call to time out, with room for a slow store; it is extended meanwhile. */
  private get claimTtlMs(): number {
    return this.credential.timeoutMs + 10_000;
  }

  async acquire(request: TokenRequest): Promise<IssuedToken> {
    return this.redeem(request.scope || this.credential.signInScope, request.signal);
  }

  /**
   * Redeems the grant the watcher just read, once (keep-alive); the access token is not kept.
   * Resolves false when another replica is redeeming it (or the grant changed meanwhile).
   */
  async keepAlive(grant: StoredGrant): Promise<boolean> {
    if (grant.state !== 'signed_in') return false;
    return (await this.redeemVersion(grant, this.credential.signInScope, undefined)) !== undefined;
  }

  private async read(): Promise<StoredGrant | undefined> {
    try {
      return await this.grants.read(this.credential.id);
    } catch (err) {
      throw this.storeUnavailable(err);
    }
  }

  private storeUnavailable(err: unknown): CredentialUnavailable {
    const why = err instanceof CacheUnavailable ? err.message : 'the grant store failed';
    return new CredentialUnavailable(`credential '${this.credential.id}': the grant store is unavailable (${why}); the refresh token is not redeemed without it`, 2, { cause: err });
  }

  private async redeem(scope: string, signal: AbortSignal | undefined): Promise<IssuedToken> {
    const deadline = this.clock.now() + this.claimTtlMs + this.credential.timeoutMs;
    while (this.clock.now() < deadline) {
      const grant = await this.read();
      if (!grant) throw new SignInRequired(this.credential.id, `credential '${this.credential.id}' has no sign-in yet`, signInHint(this.credential.id));
      if (grant.state === 'sign_in_required') {
        throw new SignInRequired(this.credential.id, `credential '${this.credential.id}' needs a new sign-in: ${grant.reason ?? 'the IdP refused the stored grant'}`, signInHint(this.credential.id));
      }
      const issued = await this.redeemVersion(grant, scope, signal);
      if (issued) return issued;
      await sleep(HELD_POLL_MS);
    }
    throw new CredentialUnavailable(`credential '${this.credential.id}': another replica has been redeeming the refresh token for too long`, 2);
  }

  /** undefined: another holder has the grant (or it changed): read it again. */
  private async redeemVersion(grant: StoredGrant, scope: string, signal: AbortSignal | undefined): Promise<IssuedToken | undefined> {
    const id = this.credential.id;
    let outcome;
    try {
      outcome = await this.grants.claim(id, grant.version, this.holder, this.claimTtlMs);
    } catch (err) {
      throw this.storeUnavailable(err);
    }
    if (outcome === 'unconfirmed') {
      throw new CredentialUnavailable(`credential '${id}': no Redis replica acknowledged the claim on the refresh token, so it is not redeemed (a failover could let another replica redeem it too)`, 2);
    }
    if (outcome === 'absent') throw new SignInRequired(id, `credential '${id}' has no sign-in any more`, signInHint(id));
    if (outcome !== 'claimed') return undefined;
    if (this.lastCommit && this.lastCommit.fromVersion === grant.version && this.lastCommit.until > this.clock.now()) {
      // Our commit of this version was lost (a failover): the token in the store has been redeemed already.
      const again = await this.commit(grant.version, this.lastCommit.grant);
      if (again) this.logger.warn({ credentialId: id, version: grant.version }, 'the rotated refresh token was missing after a Redis failover: written again');
      return undefined;
    }
    const keepClaim = setInterval(() => {
      void this.grants.extend(id, grant.version, this.holder, this.claimTtlMs).catch(() => undefined);
    }, Math.floor(this.claimTtlMs / 3));
    keepClaim.unref();
    let response: GrantTokenResponse;
    const requestedAt = this.clock.now();
    try {
      response = await this.post(grant.refreshToken, scope, signal);
    } catch (err) {
      clearInterval(keepClaim);
      if (err instanceof IdpRejected && err.idp.error === 'invalid_grant') return this.refused(grant, err);
      // Not redeemed, or the outcome is unknown (a timeout): the same token is tried again later. An
      // IdP that did consume it answers that try with invalid_grant; nothing better is possible then.
      await this.grants.release(id, grant.version, this.holder).catch(() => undefined);
      this.observer.refreshed?.(id, 'failure');
      throw err;
    }
    clearInterval(keepClaim);
    const rotated = response.refreshToken !== undefined && response.refreshToken !== grant.refreshToken;
    const next: Grant = {
      ...withoutVersion(grant),
      refreshToken: response.refreshToken ?? grant.refreshToken,
      lastRefreshAt: requestedAt,
      refreshExpiresAt: response.refreshExpiresInSeconds ? requestedAt + response.refreshExpiresInSeconds * 1000 : grant.refreshExpiresAt,
      scopesGranted: grant.scopesGranted,
      refreshes: grant.refreshes + 1,
      rotations: grant.rotations + (rotated ? 1 : 0),
    };
    const committed = await this.commit(grant.version, next);
    if (committed) {
      this.lastCommit = { fromVersion: grant.version, grant: next, until: this.clock.now() + 10 * 60_000 };
      this.observer.refreshed?.(id, 'success', committed);
    } else {
      this.logger.error({ credentialId: id, version: grant.version }, 'the grant changed while its refresh token was being redeemed (the claim was lost): the rotated refresh token could not be stored');
    }
    return response;
  }

  private async commit(version: number, grant: Grant): Promise<StoredGrant | undefined> {
    try {
      return await this.grants.commit(this.credential.id, version, this.holder, grant);
    } catch (err) {
      this.logger.error({ credentialId: this.credential.id, error: (err as Error).message }, 'the rotated refresh token could not be written to the grant store');
      return undefined;
    }
  }

  /** invalid_grant: the grant is over (revoked, expired, password reset, consent withdrawn) unless a newer version appeared meanwhile. */
  private async refused(grant: StoredGrant, err: IdpRejected): Promise<undefined> {
    const id = this.credential.id;
    const now = await this.read().catch(() => undefined);
    if (now && now.version !== grant.version) {
      await this.grants.release(id, grant.version, this.holder).catch(() => undefined);
      return undefined;
    }
    const reason = `the IdP refused the refresh token (${err.idpError}${err.idp.errorDescription ? `: ${err.idp.errorDescription.slice(0, 200)}` : ''})`;
    const ended = await this.commit(grant.version, { ...withoutVersion(grant), refreshToken: '', state: 'sign_in_required', reason });
    this.logger.warn({ credentialId: id, idpError: err.idpError, subject: grant.subject }, `delegated credential needs a new sign-in: ${reason}; ${signInHint(id)}`);
    this.observer.refreshed?.(id, 'sign_in_required', ended);
    throw new SignInRequired(id, `credential '${id}' needs a new sign-in: ${reason}`, signInHint(id));
  }

  private async post(refreshToken: string, scope: string, signal: AbortSignal | undefined): Promise<GrantTokenResponse> {
    const { tokenEndpoint, audience } = await this.describeEndpoint(signal);
    const parts = await this.auth.authenticate({ clientId: this.credential.clientId, tokenEndpoint, audience });
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken });
    if (!parts.authorization) form.set('client_id', this.credential.clientId);
    for (const [name, value] of Object.entries(parts.form)) form.set(name, value);
    if (scope) form.set('scope', scope);
    return postGrantRequest(
      tokenEndpoint,
      { form, authorization: parts.authorization },
      { timeoutMs: this.credential.timeoutMs, signal, idpName: this.credential.idpName, redactions: [refreshToken, ...this.auth.redactions()] },
    );
  }
}

export function withoutVersion(grant: StoredGrant): Grant {
  const { version: _version, ...rest } = grant;
  return rest;
}
