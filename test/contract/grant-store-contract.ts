// One behaviour for every grant store (memory, the state file, Redis standalone, cluster and
// Sentinel): the claim and compare-and-swap that keep two replicas from redeeming one refresh token.
// Each implementation's test file runs this suite.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Grant, GrantStore } from '../../src/cache/grant-store.ts';

export interface GrantStoreUnderTest {
  store: GrantStore;
  /** A second handle on the same store (another replica), when the implementation has one. */
  peer?: GrantStore;
  /** Everything the store wrote, as its backend holds it (Redis values, the state file): secrets must not be readable in it. */
  raw?: () => Promise<string>;
  /** Moves the store's clock past a claim's expiry (a manual clock), or waits for it. */
  pass(ms: number): Promise<unknown>;
  close(): Promise<void>;
}

let seq = 0;
const credentialId = () => `cdr-${process.pid}-${++seq}-${Date.now()}`;

export function grant(refreshToken: string, extra: Partial<Grant> = {}): Grant {
  const now = Date.now();
  return { refreshToken, state: 'signed_in', generation: `gen-${refreshToken}`, subject: 'alice', signedInAt: now, lastRefreshAt: now, refreshes: 0, rotations: 0, ...extra };
}

/** `withoutRaw`: the factory gives no `raw` (nothing outside the process, or the same sealing code already read on another topology). */
export function runGrantStoreContract(name: string, factory: () => Promise<GrantStoreUnderTest>, options: { skip?: string; withoutRaw?: boolean } = {}): void {
  describe(`GrantStore contract: ${name}`, { skip: options.skip }, () => {
    let subject: GrantStoreUnderTest;
    let store: GrantStore;
    let peer: GrantStore;
    before(async () => {
      subject = await factory();
      store = subject.store;
      peer = subject.peer ?? subject.store;
    });
    after(() => subject?.close());

    test('no grant: read is undefined, a claim is absent', async () => {
      const id = credentialId();
      assert.equal(await store.read(id), undefined);
      assert.equal(await store.claim(id, 1, 'a', 10_000), 'absent');
    });

    test('replace stores a new version; every replica reads it', async () => {
      const id = credentialId();
      const first = await store.replace(id, grant('rt-1'));
      const second = await store.replace(id, grant('rt-2'));
      assert.ok(second.version > first.version);
      const read = await peer.read(id);
      assert.equal(read?.refreshToken, 'rt-2');
      assert.equal(read?.version, second.version);
      assert.equal(read?.subject, 'alice');
    });

    test('one holder at a time: held for the others, re-entrant for the holder, stale for an old version', async () => {
      const id = credentialId();
      const { version } = await store.replace(id, grant('rt-1'));
      assert.equal(await store.claim(id, version, 'a', 30_000), 'claimed');
      assert.equal(await peer.claim(id, version, 'b', 30_000), 'held');
      assert.equal(await store.claim(id, version, 'a', 30_000), 'claimed');
      assert.equal(await peer.claim(id, version - 1, 'b', 30_000), 'stale');
    });

    test('the rotated token is written only by the holder and only over the version it claimed (CAS)', async () => {
      const id = credentialId();
      const { version } = await store.replace(id, grant('rt-1'));
      assert.equal(await store.claim(id, version, 'a', 30_000), 'claimed');
      assert.equal(await peer.commit(id, version, 'b', grant('rt-by-b')), undefined, 'not the holder');
      const committed = await store.commit(id, version, 'a', grant('rt-2', { refreshes: 1, rotations: 1 }));
      assert.equal(committed?.version, version + 1);
      assert.equal(await store.commit(id, version, 'a', grant('rt-again')), undefined, 'the version moved on');
      const read = await peer.read(id);
      assert.equal(read?.refreshToken, 'rt-2');
      assert.equal(read?.rotations, 1);
      // The commit ended the claim: the next version is free for anyone.
      assert.equal(await peer.claim(id, version + 1, 'b', 30_000), 'claimed');
    });

    test('a released claim is free for another holder; a claim that expires too', async () => {
      const id = credentialId();
      const { version } = await store.replace(id, grant('rt-1'));
      assert.equal(await store.claim(id, version, 'a', 30_000), 'claimed');
      await store.release(id, version, 'a');
      assert.equal(await peer.claim(id, version, 'b', 300), 'claimed');
      assert.equal(await store.claim(id, version, 'a', 30_000), 'held');
      await subject.pass(1_000);
      assert.equal(await store.claim(id, version, 'a', 30_000), 'claimed', 'b held it for 300 ms only');
      assert.equal(await store.extend(id, version, 'a', 30_000), true);
      assert.equal(await peer.extend(id, version, 'b', 30_000), false, 'not the holder');
    });

    test('of many replicas claiming one version at once, exactly one gets it', async () => {
      const id = credentialId();
      const { version } = await store.replace(id, grant('rt-1'));
      const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? peer : store).claim(id, version, `holder-${i}`, 30_000)));
      assert.equal(outcomes.filter((o) => o === 'claimed').length, 1, outcomes.join(' '));
      assert.equal(outcomes.filter((o) => o === 'held').length, 19);
    });

    test('forget removes the grant', async () => {
      const id = credentialId();
      await store.replace(id, grant('rt-1'));
      await store.forget(id);
      assert.equal(await peer.read(id), undefined);
    });

    test('a one-time record is taken once, by one replica', async () => {
      const key = `ticket:${credentialId()}`;
      await store.putOnce(key, '{"state":"s"}', 60_000);
      assert.equal(await peer.peekOnce(key), '{"state":"s"}');
      const takes = await Promise.all([store.takeOnce(key), peer.takeOnce(key), store.takeOnce(key)]);
      assert.deepEqual(takes.filter((t) => t !== undefined), ['{"state":"s"}']);
      assert.equal(await peer.peekOnce(key), undefined);
      await store.putOnce(key, 'x', 300);
      await subject.pass(1_000);
      assert.equal(await store.takeOnce(key), undefined, 'expired');
    });

    if (options.withoutRaw) return;
    test('refresh tokens and one-time records are not readable where the store keeps them', async () => {
      assert.ok(subject.raw, 'the test can read the backend');
      const id = credentialId();
      const secret = `rt-secret-${id}`;
      await store.replace(id, grant(secret));
      await store.putOnce(`state:${id}`, `verifier-secret-${id}`, 60_000);
      const raw = await subject.raw!();
      assert.ok(raw.length > 0, 'the backend holds something');
      assert.ok(!raw.includes(secret), 'no refresh token in the clear');
      assert.ok(!raw.includes(`verifier-secret-${id}`), 'no PKCE verifier in the clear');
      assert.ok(!raw.includes('alice'), 'not even who signed in');
    });
  });
}
