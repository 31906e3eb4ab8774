// One behaviour for every shared store (memory, and Redis standalone, cluster and Sentinel), in the
// manner of oauth2-proxy's session store tests. Each implementation's test file runs this suite.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CachedToken, SharedStore, TokenCache } from '../../src/cache/token-cache.ts';

export interface CacheUnderTest {
  store: SharedStore;
  /** A second handle on the same shared store (another replica), when the implementation has one. */
  peer?: () => Promise<SharedStore>;
}

function token(lifetimeMs: number, accessToken = `tok-${Math.random()}`): CachedToken {
  const now = Date.now();
  return { accessToken, tokenType: 'Bearer', expiresAt: now + lifetimeMs, refreshAt: now + lifetimeMs / 2, obtainedAt: now, scope: 'api.read' };
}

let seq = 0;
const key = () => `cdr|fp${process.pid}|scope-${++seq}-${Date.now()}`;

export function runTokenCacheContract(name: string, factory: () => Promise<CacheUnderTest>, options: { skip?: string } = {}): void {
  describe(`TokenCache contract: ${name}`, { skip: options.skip }, () => {
    let subject: CacheUnderTest;
    let cache: TokenCache;
    before(async () => {
      subject = await factory();
      cache = subject.store.tokens;
    });
    after(() => subject?.store.close());

    test('get of an absent key is undefined', async () => {
      assert.equal(await cache.get(key()), undefined);
    });

    test('set then get returns the same token', async () => {
      const k = key();
      const t = token(60_000);
      await cache.set(k, t);
      assert.deepEqual(await cache.get(k), t);
    });

    test('an expired token is never returned', async () => {
      const k = key();
      await cache.set(k, token(150));
      assert.ok(await cache.get(k));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await cache.get(k), undefined);
    });

    test('a token already expired is not stored', async () => {
      const k = key();
      await cache.set(k, { ...token(1000), expiresAt: Date.now() - 1 });
      assert.equal(await cache.get(k), undefined);
    });

    test('setIfAbsent keeps an existing token', async () => {
      const k = key();
      const first = token(60_000, 'first');
      await cache.set(k, first);
      await cache.setIfAbsent(k, token(60_000, 'second'));
      assert.equal((await cache.get(k))!.accessToken, 'first');
      const k2 = key();
      await cache.setIfAbsent(k2, token(60_000, 'only'));
      assert.equal((await cache.get(k2))!.accessToken, 'only');
    });

    test('delete removes the token', async () => {
      const k = key();
      await cache.set(k, token(60_000));
      await cache.delete(k);
      assert.equal(await cache.get(k), undefined);
    });

    test('the lock has one holder; release by the holder frees it; it expires if never released', async () => {
      const k = key();
      const lock = await cache.tryLock(k, 10_000);
      assert.ok(lock);
      assert.equal(await cache.tryLock(k, 10_000), undefined);
      await lock.release();
      const again = await cache.tryLock(k, 150);
      assert.ok(again);
      await new Promise((r) => setTimeout(r, 200));
      const afterExpiry = await cache.tryLock(k, 10_000);
      assert.ok(afterExpiry, 'an abandoned lock expires');
      // The old holder's late release must not free the new holder's lock.
      await again.release();
      assert.equal(await cache.tryLock(k, 10_000), undefined);
      await afterExpiry.release();
    });

    test('waitForUpdate resolves when a token is stored, or on timeout', async () => {
      const k = key();
      const started = Date.now();
      // The wait ends on its own only after 60 s: well before that means the update woke it.
      const waiting = cache.waitForUpdate(k, 60_000);
      setTimeout(() => void cache.set(k, token(60_000)), 50);
      await waiting;
      assert.ok(Date.now() - started < 30_000, 'woken by the update, not the timeout');
      const t0 = Date.now();
      await cache.waitForUpdate(key(), 100);
      assert.ok(Date.now() - t0 >= 90);
    });

    test('a recorded failure is readable until its TTL, and cleared by a stored token', async () => {
      const k = key();
      await cache.recordFailure(k, { kind: 'unavailable', message: 'down', retryAfterSeconds: 3 }, 5_000);
      assert.deepEqual(await cache.getFailure(k), { kind: 'unavailable', message: 'down', retryAfterSeconds: 3 });
      await cache.set(k, token(60_000));
      assert.equal(await cache.getFailure(k), undefined);
      await cache.recordFailure(k, { kind: 'rejected', message: 'no' }, 100);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(await cache.getFailure(k), undefined);
    });

    test('backoff per credential until a time', async () => {
      const id = `cred-${seq++}`;
      assert.equal(await cache.getBackoff(id), undefined);
      const until = Date.now() + 5_000;
      await cache.setBackoff(id, until);
      assert.equal(await cache.getBackoff(id), until);
      await cache.setBackoff(`${id}-short`, Date.now() + 100);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(await cache.getBackoff(`${id}-short`), undefined);
    });

    test('status is ok', () => {
      assert.equal(subject.store.health.status().state, 'ok');
    });

    test('another replica sees the token, contends for the lock and is woken by updates', async (t) => {
      if (!subject.peer) {
        t.diagnostic('single-process implementation: no second replica');
        return;
      }
      const peerStore = await subject.peer();
      const peer = peerStore.tokens;
      try {
        const k = key();
        const lock = await cache.tryLock(k, 10_000);
        assert.ok(lock);
        assert.equal(await peer.tryLock(k, 10_000), undefined, 'the other replica cannot take it');
        // The wait ends on its own only after 60 s: ending well before that means the update woke it
        // (the bound is generous so that a slow machine cannot fail it).
        const woken = peer.waitForUpdate(k, 60_000);
        const t0 = Date.now();
        await cache.set(k, token(60_000, 'shared'));
        await woken;
        assert.ok(Date.now() - t0 < 30_000, `woken by the update, not by its own timeout (${Date.now() - t0} ms)`);
        assert.equal((await peer.get(k))!.accessToken, 'shared');
        await lock.release();
        const peerLock = await peer.tryLock(k, 10_000);
        assert.ok(peerLock);
        await peerLock.release();
      } finally {
        await peerStore.close();
      }
    });
  });
}
