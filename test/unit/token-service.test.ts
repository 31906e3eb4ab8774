// Cache-aside behaviour of the token service with a controllable clock and a scripted provider.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryStore } from '../../src/cache/memory-token-cache.ts';
import { IdpRejected, IdpUnavailable, UnknownCredential } from '../../src/kernel/errors.ts';
import { FALLBACK_LIFETIME_SECONDS, MAX_TOKEN_LIFETIME_SECONDS, MIN_EXCHANGE_INTERVAL_MS, TokenService, type CredentialRuntime } from '../../src/core/token-service.ts';
import { createLogger } from '../../src/observability/logger.ts';
import type { IssuedToken, TokenProvider, TokenRequest } from '../../src/idps/token-provider.ts';
import type { ClientAuthentication } from '../../src/client-auth/client-authentication.ts';
import { oidcIdp } from '../../src/idps/oidc/oidc-idp.ts';
import { LogCapture } from '../helpers/test-broker.ts';

class ScriptedProvider implements TokenProvider {
  calls: TokenRequest[] = [];
  next: () => Promise<IssuedToken> = async () => ({ accessToken: `t${this.calls.length}`, tokenType: 'Bearer', expiresInSeconds: 3600 });
  async acquire(request: TokenRequest) {
    this.calls.push(request);
    return this.next();
  }
  async describeEndpoint() {
    return { tokenEndpoint: 'https://idp/token', audience: 'https://idp/token' };
  }
}

/** The token service only asks the client authentication who the client is and whether a previous one exists. */
const auth = { kind: 'certificate', identity: () => 'AB', previousIdentity: () => undefined, hasPrevious: () => false } as unknown as ClientAuthentication;

function setup() {
  let now = Date.UTC(2026, 10, 22, 12);
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const provider = new ScriptedProvider();
  const runtime = {
    config: { id: 'cdr', provider: 'oidc', preset: 'generic', clientId: 'c', tokenParams: {}, scopes: [], timeoutMs: 1000, retries: 0 },
    idp: oidcIdp,
    auth,
    provider,
  } as unknown as CredentialRuntime;
  const logs = new LogCapture();
  const service = new TokenService(new Map([['cdr', runtime]]), memoryStore(clock), clock, createLogger({ destination: logs }));
  return { clock, provider, service, logs };
}

describe('token service', () => {
  test('miss, then hit; expiry counts from when the request was sent', async () => {
    const { service, provider, clock } = setup();
    const sentAt = clock.now();
    provider.next = async () => {
      clock.advance(2000); // the IdP takes 2 s to answer
      return { accessToken: 'a', tokenType: 'Bearer', expiresInSeconds: 3600 };
    };
    const first = await service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 60 });
    assert.equal(first.cacheOutcome, 'miss');
    assert.equal(first.expiresAt, sentAt + 3600_000);
    const second = await service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 60 });
    assert.equal(second.cacheOutcome, 'hit');
    assert.equal(provider.calls.length, 1);
  });

  test('concurrent requests for one key make one exchange; other keys their own', async () => {
    const { service, provider } = setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    provider.next = async () => {
      await gate;
      return { accessToken: 'shared', tokenType: 'Bearer', expiresInSeconds: 3600 };
    };
    const all = Array.from({ length: 100 }, () => service.getToken({ credentialId: 'cdr', scope: 'a', minTtlSeconds: 60 }));
    const other = service.getToken({ credentialId: 'cdr', scope: 'b', minTtlSeconds: 60 });
    release();
    const results = await Promise.all([...all, other]);
    assert.equal(provider.calls.length, 2);
    assert.ok(results.slice(0, 100).every((r) => r.accessToken === 'shared' && r.cacheOutcome === 'miss'));
  });

  test('min_ttl_seconds: a token with less life left is replaced (cache "refreshed")', async () => {
    const { service, provider, clock } = setup();
    await service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 60 });
    clock.advance(3500_000); // 100 s left
    assert.equal((await service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 60 })).cacheOutcome, 'hit');
    const replaced = await service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 300 });
    assert.equal(replaced.cacheOutcome, 'refreshed');
    assert.equal(provider.calls.length, 2);
  });

  test('an expired token is never served: the next request exchanges', async () => {
    const { service, provider, clock } = setup();
    await service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 0 });
    clock.advance(3600_000);
    const next = await service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 0 });
    assert.equal(next.cacheOutcome, 'miss');
    assert.equal(provider.calls.length, 2);
  });

  test('a token that is born expired is refused, not served', async () => {
    const { service, provider } = setup();
    provider.next = async () => ({ accessToken: 'dead', tokenType: 'Bearer', expiresInSeconds: 0 });
    await assert.rejects(service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 0 }), IdpUnavailable);
  });

  test('failures propagate to every waiter and are not cached', async () => {
    const { service, provider } = setup();
    provider.next = async () => {
      throw new IdpRejected('no', { error: 'invalid_client', httpStatus: 401 }, 'fix it', 'invalid_client');
    };
    const results = await Promise.allSettled([1, 2, 3].map(() => service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 60 })));
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof IdpRejected));
    assert.equal(provider.calls.length, 1);
    provider.next = async () => ({ accessToken: 'ok', tokenType: 'Bearer', expiresInSeconds: 60 });
    assert.equal((await service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 0 })).accessToken, 'ok');
  });

  test('a min_ttl above the IdP lifetime: the last exchange\'s token is served, one exchange per minimum interval', async () => {
    const { service, provider, logs, clock } = setup();
    const first = await service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 7200, minTtlExplicit: true });
    assert.equal(first.cacheOutcome, 'miss');
    const again = await service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 7200, minTtlExplicit: true });
    assert.equal(again.cacheOutcome, 'hit');
    assert.equal(again.accessToken, first.accessToken);
    assert.equal(provider.calls.length, 1);
    assert.match(logs.text, /min_ttl_seconds exceeds the lifetime/);
    clock.advance(MIN_EXCHANGE_INTERVAL_MS);
    assert.equal((await service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 7200, minTtlExplicit: true })).cacheOutcome, 'refreshed');
    assert.equal(provider.calls.length, 2);
  });

  test('lifetimes: capped at 24 h, never past the token\'s own exp; without expires_in the exp decides, else the fallback', async () => {
    const { service, provider, clock } = setup();
    const cases: { issued: Partial<IssuedToken>; lifetimeMs: number }[] = [
      { issued: { expiresInSeconds: 10 * 365 * 86_400 }, lifetimeMs: MAX_TOKEN_LIFETIME_SECONDS * 1000 },
      { issued: { expiresInSeconds: 3600, expiresAtMs: clock.now() + 600_000 }, lifetimeMs: 600_000 },
      { issued: { expiresAtMs: clock.now() + 1_200_000 }, lifetimeMs: 1_200_000 },
      { issued: {}, lifetimeMs: FALLBACK_LIFETIME_SECONDS * 1000 },
    ];
    for (const [i, c] of cases.entries()) {
      provider.next = async () => ({ accessToken: `t${i}`, tokenType: 'Bearer', ...c.issued });
      const token = await service.getToken({ credentialId: 'cdr', scope: `s${i}`, minTtlSeconds: 0 });
      assert.equal(token.expiresAt - token.obtainedAt, c.lifetimeMs, JSON.stringify(c.issued));
    }
  });

  test('a token whose own exp is already past is IdpRejected with a hint about clocks', async () => {
    const { service, provider, clock } = setup();
    provider.next = async () => ({ accessToken: 'old', tokenType: 'Bearer', expiresInSeconds: 3600, expiresAtMs: clock.now() - 60_000 });
    await assert.rejects(service.getToken({ credentialId: 'cdr', scope: '', minTtlSeconds: 0 }), (err: unknown) => err instanceof IdpRejected && /clock/.test(err.hint));
  });

  test('an unknown credential is UnknownCredential', async () => {
    const { service } = setup();
    await assert.rejects(service.getToken({ credentialId: 'nope', scope: '', minTtlSeconds: 0 }), UnknownCredential);
  });
});
