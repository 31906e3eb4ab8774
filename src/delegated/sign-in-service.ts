// Sign-ins of delegated credentials (docs/delegated-credentials.md): a person signs in once, in a
// browser (authorization code with PKCE S256, RFC 7636 and RFC 9700 §2.1.1) or on any device
// (device authorization grant, RFC 8628), and the grant lands in the shared grant store, so any
// replica may start a sign-in, receive its redirect and serve its tokens. Pending sign-ins are
// one-time records in the same store. A watcher re-reads every grant on a short period: it keeps
// this replica's view (state, metrics, cache identity) current and refreshes idle grants so IdP
// idle limits never end them.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Grant, GrantStore, StoredGrant } from '../cache/grant-store.ts';
import type { ClientAuthentication } from '../client-auth/client-authentication.ts';
import type { Clock } from '../kernel/clock.ts';
import { IdpRejected, IdpUnavailable, InvalidRequest, SignInFailed } from '../kernel/errors.ts';
import { explainAadsts } from '../idps/idp-error-catalogue.ts';
import type { SignInFlow } from '../idps/sign-in-schema.ts';
import { postForm, postGrantRequest, type GrantTokenResponse } from '../idps/token-endpoint-client.ts';
import type { Logger } from '../observability/logger.ts';
import type { DelegatedEndpointResolver } from './delegated-endpoints.ts';
import { signInHint, withoutVersion, type DelegatedTokenProvider, type RefreshObserver } from './delegated-token-provider.ts';
import { IdTokenProblem, type IdTokenVerifier, type SignedInPerson } from './id-token-verifier.ts';

/** A sign-in link, and the state of the redirect it starts, are good for this long, once. */
export const SIGN_IN_VALIDITY_MS = 10 * 60_000;
export const DEFAULT_GRANT_WATCH_MS = 5_000;
const DEVICE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';
/** RFC 8628 §3.5: without `interval` the client waits 5 s; slow_down adds 5 s. */
const DEFAULT_DEVICE_INTERVAL_S = 5;

export interface DelegatedRuntime {
  id: string;
  clientId: string;
  idpName: string;
  flow: SignInFlow;
  redirectUri?: string;
  scopes: string[];
  keepAliveMs: number;
  timeoutMs: number;
  /** Extra parameters of the authorization request (and, but prompt, of the device authorization request). */
  authorizationParams: Record<string, string>;
  auth: ClientAuthentication;
  endpoints: DelegatedEndpointResolver;
  provider: DelegatedTokenProvider;
  /** The `aud` of an assertion for this token endpoint. */
  audience(tokenEndpoint: string, issuer: string): string;
}

export type SignInStart =
  | { flow: 'authorization_code'; sign_in_url: string; expires_at: string }
  | { flow: 'device_code'; verification_uri: string; verification_uri_complete?: string; user_code: string; expires_at: string; interval: number };

export interface SignInStatus {
  credential: string;
  state: 'signed_in' | 'sign_in_required' | 'pending';
  subject?: string;
  display_name?: string;
  signed_in_at?: string;
  last_refresh_at?: string;
  refresh_token_expires_at?: string;
  scopes_granted?: string;
  refreshes?: number;
  rotations?: number;
  /** Why a sign-in is required, or how the last attempt ended. */
  reason?: string;
  pending?: { flow: SignInFlow; expires_at: string; started_by: string };
  hint?: string;
}

/** What this replica last read of a grant: no refresh token in it. */
export type GrantView = Omit<Grant, 'refreshToken'>;

/** The facts of a grant callers may see (status, diagnostics): who, when, what; never a token. */
function grantFacts(v: GrantView | undefined) {
  return {
    subject: v?.subject,
    display_name: v?.displayName,
    signed_in_at: iso(v?.signedInAt),
    last_refresh_at: iso(v?.lastRefreshAt),
    refresh_token_expires_at: iso(v?.refreshExpiresAt),
    scopes_granted: v?.scopesGranted,
    refreshes: v?.refreshes,
    rotations: v?.rotations,
  };
}

interface PendingCode {
  credentialId: string;
  state: string;
  nonce: string;
  verifier: string;
  expiresAt: number;
  startedBy: string;
}

interface PendingMarker {
  flow: SignInFlow;
  expiresAt: number;
  startedBy: string;
}

interface Outcome {
  reason: string;
  at: number;
}

const base64url = (bytes: Buffer) => bytes.toString('base64url');
/** One-time records are found by the digest of their secret, so a key name in Redis reveals no ticket or state. */
const recordKey = (kind: 'ticket' | 'used' | 'state', secret: string) => `${kind}:${createHash('sha256').update(secret).digest('base64url')}`;
const random = () => base64url(randomBytes(32));
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** Errors an authorization server may put on the redirect (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6), explained. */
const REDIRECT_ERRORS: Record<string, { what: string; fix: string }> = {
  access_denied: { what: 'the person declined, or cancelled the sign-in', fix: 'start a new sign-in and accept the consent screen' },
  consent_required: { what: 'consent is needed and could not be asked for', fix: 'grant consent for the client at the IdP (or as an administrator), then sign in again' },
  login_required: { what: 'the IdP needs the person to log in interactively', fix: 'start a new sign-in in a browser' },
  interaction_required: { what: 'the IdP needs an interaction (MFA, terms of use) it could not show', fix: 'start a new sign-in in a browser and complete every step' },
  invalid_scope: { what: 'the IdP does not know or allow one of the scopes asked for', fix: 'check signIn.scopes against the scopes the client may request at the IdP' },
  unauthorized_client: { what: 'the client may not use the authorization code flow', fix: 'enable the authorization code (standard) flow for the client at the IdP' },
  invalid_request: { what: 'the IdP refused the sign-in request', fix: 'check signIn.redirectUri is registered for the client exactly as configured, and that PKCE (S256) is allowed' },
  server_error: { what: 'the IdP failed', fix: 'try again later' },
  temporarily_unavailable: { what: 'the IdP is temporarily unavailable', fix: 'try again in a few minutes' },
};

function explainRedirectError(error: string, description: string | undefined): { message: string; hint: string } {
  const aadsts = /AADSTS(\d+)/.exec(description ?? '');
  const entry = aadsts ? explainAadsts(Number(aadsts[1])) : undefined;
  const shownDescription = description ? `: ${description.replace(/[\r\n]+/g, ' ').slice(0, 300)}` : '';
  if (entry) return { message: `the IdP refused the sign-in with AADSTS${aadsts![1]} (${entry.title})${shownDescription}`, hint: `${entry.cause} Fix: ${entry.fix}` };
  const known = REDIRECT_ERRORS[error];
  return {
    message: `the IdP ended the sign-in with ${error.slice(0, 64)}${known ? ` (${known.what})` : ''}${shownDescription}`,
    hint: known?.fix ?? 'read the IdP\'s description above; start a new sign-in once it is fixed',
  };
}

export interface SignInServiceDeps {
  grants: GrantStore;
  clock: Clock;
  logger: Logger;
  idTokens: IdTokenVerifier;
  observer?: RefreshObserver;
  /** How often every grant is re-read (default 5 s). */
  watchMs?: number;
}

export class SignInService {
  private readonly views = new Map<string, GrantView>();
  private readonly devicePolls = new Map<string, AbortController>();
  private readonly running = new Set<Promise<unknown>>();
  private timer?: NodeJS.Timeout;
  private watching?: Promise<void>;
  private durabilityChecked = false;

  constructor(
    private readonly credentials: ReadonlyMap<string, DelegatedRuntime>,
    private readonly deps: SignInServiceDeps,
  ) {}

  has(credentialId: string): boolean {
    return this.credentials.has(credentialId);
  }

  /** Starts the watcher: one read of every grant now, then every watchMs. */
  start(): void {
    if (this.credentials.size === 0 || this.timer) return;
    void this.watch();
    this.timer = setInterval(() => void this.watch(), this.deps.watchMs ?? DEFAULT_GRANT_WATCH_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const poll of this.devicePolls.values()) poll.abort();
    await Promise.allSettled([this.watching, ...this.running]);
  }

  /** What tells tokens of one sign-in from another's, and a usable grant from an ended one (cache keys). */
  cacheIdentity(credentialId: string): string {
    const view = this.views.get(credentialId);
    return view ? `grant:${view.generation}:${view.state}` : 'grant:unread';
  }

  view(credentialId: string): GrantView | undefined {
    return this.views.get(credentialId);
  }

  /** For diagnostics: the grant as this replica last read it (never the refresh token). */
  describe(credentialId: string): Record<string, unknown> {
    const runtime = this.credentials.get(credentialId);
    const v = this.views.get(credentialId);
    return {
      flow: runtime?.flow,
      sign_in_scopes: runtime?.scopes,
      keep_alive_seconds: runtime ? runtime.keepAliveMs / 1000 : undefined,
      state: v?.state ?? 'sign_in_required',
      ...grantFacts(v),
      reason: v?.reason ?? (v ? undefined : 'nobody has signed in yet (or this replica has not read the grant yet)'),
    };
  }

  /** For metrics: every delegated credential as last read. */
  grantViews(): { credentialId: string; signedIn: boolean; lastRefreshAtMs?: number; refreshExpiresAtMs?: number }[] {
    return [...this.credentials.keys()].map((credentialId) => {
      const v = this.views.get(credentialId);
      return { credentialId, signedIn: v?.state === 'signed_in', lastRefreshAtMs: v?.lastRefreshAt, refreshExpiresAtMs: v?.refreshExpiresAt };
    });
  }

  private runtime(credentialId: string): DelegatedRuntime {
    const runtime = this.credentials.get(credentialId);
    if (!runtime) throw new InvalidRequest(`credential '${credentialId}' is not a delegated credential (it has no signIn block)`, 'credential');
    return runtime;
  }

  /** Remembers what a read returned (the replica that found a grant ended logged it, once). */
  noteGrant(credentialId: string, grant: StoredGrant | undefined): void {
    if (!grant) {
      this.views.delete(credentialId);
      return;
    }
    const { refreshToken: _secret, ...view } = withoutVersion(grant);
    this.views.set(credentialId, view);
  }

  private async watch(): Promise<void> {
    if (this.watching) return;
    this.watching = (async () => {
      for (const runtime of this.credentials.values()) {
        let grant: StoredGrant | undefined;
        try {
          grant = await this.deps.grants.read(runtime.id);
        } catch (err) {
          this.deps.logger.debug({ credentialId: runtime.id, error: (err as Error).message }, 'grant not read');
          continue;
        }
        this.noteGrant(runtime.id, grant);
        if (!this.durabilityChecked) await this.checkDurability();
        if (grant?.state === 'signed_in' && this.deps.clock.now() - grant.lastRefreshAt >= runtime.keepAliveMs) {
          await runtime.provider.keepAlive(grant).then(
            (done) => done && this.deps.logger.info({ credentialId: runtime.id }, 'delegated grant kept alive: refreshed while idle'),
            (err: unknown) => this.deps.logger.warn({ credentialId: runtime.id, code: (err as { code?: string }).code, error: (err as Error).message }, 'keep-alive refresh failed'),
          );
          this.noteGrant(runtime.id, await this.deps.grants.read(runtime.id).catch(() => grant));
        }
      }
    })().finally(() => (this.watching = undefined));
    return this.watching;
  }

  /** Once, when the store first answers: a store that a restart empties loses every sign-in. */
  private async checkDurability(): Promise<void> {
    this.durabilityChecked = true;
    const { durable, detail } = await this.deps.grants.durability().catch((err: unknown) => ({ durable: true, detail: `not known (${(err as Error).message})` }));
    if (durable) this.deps.logger.info({ detail }, `delegated credentials' grants are kept in: ${detail}`);
    else this.deps.logger.warn({ detail }, `delegated credentials' grants are not durable: ${detail}`);
  }

  // ── starting a sign-in ─────────────────────────────────────────────────────────────────────────

  async begin(credentialId: string, callerId: string): Promise<SignInStart> {
    const runtime = this.runtime(credentialId);
    return runtime.flow === 'authorization_code' ? this.beginCode(runtime, callerId) : this.beginDevice(runtime, callerId);
  }

  private async beginCode(runtime: DelegatedRuntime, callerId: string): Promise<SignInStart> {
    const ticket = random();
    const expiresAt = this.deps.clock.now() + SIGN_IN_VALIDITY_MS;
    const pending: PendingCode = { credentialId: runtime.id, state: random(), nonce: random(), verifier: random(), expiresAt, startedBy: callerId };
    await this.deps.grants.putOnce(recordKey('ticket', ticket), JSON.stringify(pending), SIGN_IN_VALIDITY_MS);
    await this.markPending(runtime.id, { flow: 'authorization_code', expiresAt, startedBy: callerId });
    this.deps.logger.info({ credentialId: runtime.id, caller: callerId, flow: 'authorization_code', expiresAt: iso(expiresAt) }, 'sign-in started');
    // The link is on the broker (it redirects to the IdP with state, nonce and the PKCE challenge):
    // the same public origin and path prefix as the redirect URI the IdP knows.
    const url = new URL(runtime.redirectUri!);
    url.pathname = url.pathname.replace(/callback$/, 'start');
    url.search = new URLSearchParams({ ticket }).toString();
    return { flow: 'authorization_code', sign_in_url: url.toString(), expires_at: iso(expiresAt)! };
  }

  private markPending(credentialId: string, marker: PendingMarker): Promise<void> {
    return this.deps.grants.putOnce(`pending:${credentialId}`, JSON.stringify(marker), Math.max(1, marker.expiresAt - this.deps.clock.now()));
  }

  private async endPending(credentialId: string, outcome?: string): Promise<void> {
    await this.deps.grants.deleteOnce(`pending:${credentialId}`).catch(() => undefined);
    if (outcome) {
      await this.deps.grants.putOnce(`outcome:${credentialId}`, JSON.stringify({ reason: outcome, at: this.deps.clock.now() } satisfies Outcome), SIGN_IN_VALIDITY_MS).catch(() => undefined);
    }
  }

  /** GET /v1/sign-in/start?ticket: the one-time link → a redirect to the IdP's authorization endpoint. */
  async open(ticket: string): Promise<string> {
    const raw = ticket ? await this.deps.grants.takeOnce(recordKey('ticket', ticket)) : undefined;
    const pending = raw ? (JSON.parse(raw) as PendingCode) : undefined;
    if (!pending) {
      const used = ticket ? await this.deps.grants.peekOnce(recordKey('used', ticket)) : undefined;
      throw new SignInFailed(
        used ? 'this sign-in link has already been used' : 'this sign-in link is unknown or has expired',
        `sign-in links work once, for ${SIGN_IN_VALIDITY_MS / 60_000} minutes: ask for a new one (POST /v1/credentials/{id}/sign-in, or token-broker sign-in CREDENTIAL)`,
      );
    }
    await this.deps.grants.putOnce(recordKey('used', ticket), '1', SIGN_IN_VALIDITY_MS);
    if (pending.expiresAt <= this.deps.clock.now()) {
      throw new SignInFailed('this sign-in link has expired', `sign-in links work for ${SIGN_IN_VALIDITY_MS / 60_000} minutes: ask for a new one`);
    }
    const runtime = this.runtime(pending.credentialId);
    const endpoints = await runtime.endpoints.resolve();
    await this.deps.grants.putOnce(recordKey('state', pending.state), JSON.stringify(pending), Math.max(1, pending.expiresAt - this.deps.clock.now()));
    const url = new URL(endpoints.authorizationEndpoint);
    // The broker's own parameters last: configured extras cannot replace state, nonce or PKCE.
    const params = {
      ...runtime.authorizationParams,
      response_type: 'code',
      client_id: runtime.clientId,
      redirect_uri: runtime.redirectUri!,
      scope: runtime.scopes.join(' '),
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: base64url(createHash('sha256').update(pending.verifier).digest()),
      code_challenge_method: 'S256',
    };
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    return url.toString();
  }

  /** GET /v1/sign-in/callback: the IdP's redirect, on whichever replica it reaches. */
  async complete(query: Record<string, unknown>): Promise<{ credentialId: string; person?: SignedInPerson }> {
    const text = (name: string) => (typeof query[name] === 'string' ? (query[name] as string) : undefined);
    const state = text('state');
    if (!state) throw new SignInFailed('the redirect carries no state', 'open the sign-in link the broker gave; do not bookmark the IdP page');
    const raw = await this.deps.grants.takeOnce(recordKey('state', state));
    const pending = raw ? (JSON.parse(raw) as PendingCode) : undefined;
    if (!pending || pending.state !== state) {
      throw new SignInFailed('this sign-in is unknown, already completed or expired (its state does not match a pending sign-in)', 'start a new sign-in; each link works once, for 10 minutes');
    }
    const runtime = this.runtime(pending.credentialId);
    const error = text('error');
    if (error) {
      const explained = explainRedirectError(error, text('error_description'));
      await this.endPending(runtime.id, explained.message);
      this.deps.logger.warn({ credentialId: runtime.id, idpError: error.slice(0, 64) }, `sign-in ended by the IdP: ${explained.message}`);
      throw new SignInFailed(explained.message, explained.hint);
    }
    if (pending.expiresAt <= this.deps.clock.now()) throw new SignInFailed('this sign-in has expired', 'start a new sign-in and complete it within 10 minutes');
    const code = text('code');
    if (!code) throw new SignInFailed('the redirect carries neither a code nor an error', 'start a new sign-in');
    const endpoints = await runtime.endpoints.resolve();
    // RFC 9207: an authorization server that names itself must be the one this sign-in went to (mix-up defence).
    const iss = text('iss');
    if (iss !== undefined && iss.replace(/\/+$/, '') !== endpoints.issuer.replace(/\/+$/, '')) {
      throw new SignInFailed(`the redirect says it comes from ${iss.slice(0, 200)}, not ${endpoints.issuer}`, 'start a new sign-in from the broker\'s link');
    }
    let response: GrantTokenResponse;
    try {
      response = await this.redeem(runtime, endpoints.tokenEndpoint, endpoints.issuer, { grant_type: 'authorization_code', code, redirect_uri: runtime.redirectUri!, code_verifier: pending.verifier }, [code, pending.verifier]);
    } catch (err) {
      throw this.failedExchange(runtime, err);
    }
    const person = await this.store(runtime, response, { issuer: endpoints.issuer, jwksUri: endpoints.jwksUri, nonce: pending.nonce }, pending.startedBy);
    return { credentialId: runtime.id, person };
  }

  private failedExchange(runtime: DelegatedRuntime, err: unknown): SignInFailed {
    if (err instanceof SignInFailed) return err;
    const message = err instanceof IdpRejected || err instanceof IdpUnavailable ? err.message : 'the code could not be redeemed';
    void this.endPending(runtime.id, message);
    return new SignInFailed(`the IdP did not accept the sign-in's code: ${message}`, err instanceof IdpRejected ? err.hint : 'start a new sign-in');
  }

  private async redeem(runtime: DelegatedRuntime, tokenEndpoint: string, issuer: string, fields: Record<string, string>, secrets: string[]): Promise<GrantTokenResponse> {
    const parts = await runtime.auth.authenticate({ clientId: runtime.clientId, tokenEndpoint, audience: runtime.audience(tokenEndpoint, issuer) });
    const form = new URLSearchParams(fields);
    if (!parts.authorization) form.set('client_id', runtime.clientId);
    for (const [name, value] of Object.entries(parts.form)) form.set(name, value);
    return postGrantRequest(tokenEndpoint, { form, authorization: parts.authorization }, { timeoutMs: runtime.timeoutMs, idpName: runtime.idpName, redactions: [...secrets, ...runtime.auth.redactions()] });
  }

  /** A new grant from a sign-in: checked, stored for every replica, the pending sign-in ended. */
  private async store(runtime: DelegatedRuntime, response: GrantTokenResponse, expected: { issuer: string; jwksUri?: string; nonce?: string }, startedBy: string): Promise<SignedInPerson | undefined> {
    if (!response.refreshToken) {
      const message = 'the IdP issued no refresh token, so the broker could not refresh on its own';
      await this.endPending(runtime.id, message);
      throw new SignInFailed(message, `ask for offline_access in signIn.scopes (${runtime.scopes.join(' ')}) and allow refresh tokens (offline access) for the client at the IdP`);
    }
    let person: SignedInPerson | undefined;
    if (response.idToken) {
      try {
        person = await this.deps.idTokens.verify(response.idToken, { issuer: expected.issuer, clientId: runtime.clientId, jwksUri: expected.jwksUri, nonce: expected.nonce });
      } catch (err) {
        const message = err instanceof IdTokenProblem ? err.message : 'the ID token could not be checked';
        await this.endPending(runtime.id, message);
        throw new SignInFailed(`the sign-in was not accepted: ${message}`, 'start a new sign-in; if it happens again, check the issuer and the IdP\'s signing keys');
      }
    }
    const now = this.deps.clock.now();
    const grant: Grant = {
      refreshToken: response.refreshToken,
      state: 'signed_in',
      generation: randomUUID(),
      subject: person?.subject,
      displayName: person?.displayName,
      scopesGranted: response.scope,
      signedInAt: now,
      lastRefreshAt: now,
      refreshExpiresAt: response.refreshExpiresInSeconds ? now + response.refreshExpiresInSeconds * 1000 : undefined,
      refreshes: 0,
      rotations: 0,
    };
    const stored = await this.deps.grants.replace(runtime.id, grant);
    this.noteGrant(runtime.id, stored);
    await this.endPending(runtime.id);
    await this.deps.grants.deleteOnce(`outcome:${runtime.id}`).catch(() => undefined);
    this.deps.logger.info({ credentialId: runtime.id, subject: person?.subject, startedBy, scopesGranted: response.scope }, 'signed in: the broker now holds this grant and refreshes it');
    return person;
  }

  // ── device code ───────────────────────────────────────────────────────────────────────────────

  private async beginDevice(runtime: DelegatedRuntime, callerId: string): Promise<SignInStart> {
    const endpoints = await runtime.endpoints.resolve();
    if (!endpoints.deviceAuthorizationEndpoint) {
      throw new InvalidRequest(`the IdP of credential '${runtime.id}' publishes no device_authorization_endpoint: use flow authorization_code`, 'signIn.flow');
    }
    const parts = await runtime.auth.authenticate({ clientId: runtime.clientId, tokenEndpoint: endpoints.tokenEndpoint, audience: runtime.audience(endpoints.tokenEndpoint, endpoints.issuer) });
    // prompt belongs to the browser's authorization request only.
    const { prompt: _prompt, ...extra } = runtime.authorizationParams;
    const form = new URLSearchParams({ ...extra, scope: runtime.scopes.join(' ') });
    if (!parts.authorization) form.set('client_id', runtime.clientId);
    for (const [name, value] of Object.entries(parts.form)) form.set(name, value);
    const body = (await postForm(endpoints.deviceAuthorizationEndpoint, { form, authorization: parts.authorization }, { timeoutMs: runtime.timeoutMs, idpName: runtime.idpName, redactions: runtime.auth.redactions() })) as Record<string, unknown>;
    const deviceCode = body?.device_code;
    const userCode = body?.user_code;
    const verificationUri = body?.verification_uri ?? body?.verification_url; // Google used verification_url
    if (typeof deviceCode !== 'string' || typeof userCode !== 'string' || typeof verificationUri !== 'string') {
      throw new IdpRejected(`${runtime.idpName}: the device authorization response lacks device_code, user_code or verification_uri`, { error: 'invalid_response', httpStatus: 200 }, 'check that the device flow is enabled for the client at the IdP', 'invalid_response');
    }
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 600;
    const interval = typeof body.interval === 'number' && body.interval > 0 ? body.interval : DEFAULT_DEVICE_INTERVAL_S;
    const expiresAt = this.deps.clock.now() + expiresIn * 1000;
    await this.markPending(runtime.id, { flow: 'device_code', expiresAt, startedBy: callerId });
    this.devicePolls.get(runtime.id)?.abort();
    const poll = new AbortController();
    this.devicePolls.set(runtime.id, poll);
    const run = this.pollDevice(runtime, deviceCode, interval, expiresAt, callerId, poll.signal).finally(() => {
      this.running.delete(run);
      if (this.devicePolls.get(runtime.id) === poll) this.devicePolls.delete(runtime.id);
    });
    this.running.add(run);
    this.deps.logger.info({ credentialId: runtime.id, caller: callerId, flow: 'device_code', expiresAt: iso(expiresAt) }, 'sign-in started');
    const complete = typeof body.verification_uri_complete === 'string' ? body.verification_uri_complete : undefined;
    return { flow: 'device_code', verification_uri: verificationUri, ...(complete ? { verification_uri_complete: complete } : {}), user_code: userCode, expires_at: iso(expiresAt)!, interval };
  }

  /** RFC 8628 §3.4–3.5: poll every `interval` seconds, 5 more after each slow_down, until a result or expiry. */
  private async pollDevice(runtime: DelegatedRuntime, deviceCode: string, intervalSeconds: number, expiresAt: number, startedBy: string, signal: AbortSignal): Promise<void> {
    let interval = intervalSeconds;
    const ended = (reason: string) => {
      this.deps.logger.warn({ credentialId: runtime.id, flow: 'device_code' }, `sign-in did not complete: ${reason}`);
      return this.endPending(runtime.id, reason);
    };
    while (!signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, interval * 1000);
        signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      if (signal.aborted) return;
      if (this.deps.clock.now() >= expiresAt) return void (await ended('the device code expired before the person signed in'));
      try {
        const endpoints = await runtime.endpoints.resolve();
        const response = await this.redeem(runtime, endpoints.tokenEndpoint, endpoints.issuer, { grant_type: DEVICE_GRANT_TYPE, device_code: deviceCode }, [deviceCode]);
        await this.store(runtime, response, { issuer: endpoints.issuer, jwksUri: endpoints.jwksUri }, startedBy).catch(() => undefined);
        return;
      } catch (err) {
        const error = err instanceof IdpRejected ? err.idp.error : undefined;
        if (error === 'authorization_pending') continue;
        if (error === 'slow_down') {
          interval += 5;
          continue;
        }
        if (error === 'access_denied') return void (await ended('the person declined the sign-in (access_denied)'));
        if (error === 'expired_token') return void (await ended('the device code expired before the person signed in (expired_token)'));
        if (err instanceof IdpUnavailable) continue; // the IdP is away: keep polling until the code expires
        return void (await ended(err instanceof IdpRejected ? err.message : 'the device code could not be redeemed'));
      }
    }
  }

  // ── status and the end of a grant ─────────────────────────────────────────────────────────────

  async status(credentialId: string): Promise<SignInStatus> {
    const runtime = this.runtime(credentialId);
    const grant = await this.deps.grants.read(runtime.id);
    this.noteGrant(runtime.id, grant);
    const markerText = await this.deps.grants.peekOnce(`pending:${runtime.id}`);
    const marker = markerText ? (JSON.parse(markerText) as PendingMarker) : undefined;
    const outcomeText = grant?.state === 'signed_in' ? undefined : await this.deps.grants.peekOnce(`outcome:${runtime.id}`);
    const outcome = outcomeText ? (JSON.parse(outcomeText) as Outcome) : undefined;
    const pending = marker && marker.expiresAt > this.deps.clock.now() ? { flow: marker.flow, expires_at: iso(marker.expiresAt)!, started_by: marker.startedBy } : undefined;
    const state = grant?.state === 'signed_in' ? 'signed_in' : pending ? 'pending' : 'sign_in_required';
    return {
      credential: runtime.id,
      state,
      ...grantFacts(grant),
      reason: state === 'signed_in' ? undefined : (outcome?.reason ?? grant?.reason ?? (grant ? undefined : 'nobody has signed in for this credential yet')),
      pending,
      hint: state === 'sign_in_required' ? signInHint(runtime.id) : undefined,
    };
  }

  /** DELETE: revoke the refresh token at the IdP where it has an RFC 7009 endpoint, then forget the grant. */
  async end(credentialId: string, callerId: string): Promise<{ credential: string; state: 'sign_in_required'; revoked_at_idp: boolean; detail: string }> {
    const runtime = this.runtime(credentialId);
    const grant = await this.deps.grants.read(runtime.id);
    let revoked = false;
    let detail: string;
    if (!grant?.refreshToken) {
      detail = 'no refresh token was held';
    } else {
      const endpoints = await runtime.endpoints.resolve().catch(() => undefined);
      if (!endpoints?.revocationEndpoint) {
        detail = 'the IdP publishes no revocation endpoint: the grant was forgotten here; revoke it at the IdP too (Entra: revoke the person\'s sessions) if it must stop working at once';
      } else {
        try {
          const parts = await runtime.auth.authenticate({ clientId: runtime.clientId, tokenEndpoint: endpoints.tokenEndpoint, audience: runtime.audience(endpoints.tokenEndpoint, endpoints.issuer) });
          const form = new URLSearchParams({ token: grant.refreshToken, token_type_hint: 'refresh_token' });
          if (!parts.authorization) form.set('client_id', runtime.clientId);
          for (const [name, value] of Object.entries(parts.form)) form.set(name, value);
          await postForm(endpoints.revocationEndpoint, { form, authorization: parts.authorization }, { timeoutMs: runtime.timeoutMs, idpName: runtime.idpName, redactions: [grant.refreshToken, ...runtime.auth.redactions()] });
          revoked = true;
          detail = 'revoked at the IdP and forgotten';
        } catch (err) {
          detail = `the IdP did not confirm the revocation (${(err as Error).message}); the grant was forgotten here`;
        }
      }
    }
    await this.deps.grants.forget(runtime.id);
    this.devicePolls.get(runtime.id)?.abort();
    await this.endPending(runtime.id, `the sign-in was ended by caller '${callerId}'`);
    this.noteGrant(runtime.id, undefined);
    this.deps.logger.info({ credentialId: runtime.id, caller: callerId, revokedAtIdp: revoked }, `sign-in ended: ${detail}`);
    return { credential: runtime.id, state: 'sign_in_required', revoked_at_idp: revoked, detail };
  }
}
