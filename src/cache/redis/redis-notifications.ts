// The wake-up call for replicas waiting on a target: whoever stores a token or records a failure
// publishes the target's key, and every replica waiting on it re-reads at once instead of at its next
// poll. A notification is an optimisation only: waiters poll anyway (the token service's wait slice),
// so a lost subscription or message costs latency, never a result.
//
// Standalone and Sentinel: one channel for all targets, subscribed once. A Redis Cluster with Redis 7
// uses sharded pub/sub (SPUBLISH/SSUBSCRIBE, https://redis.io/docs/latest/develop/interact/pubsub/#sharded-pubsub):
// one channel per target in its keys' slot, published inside the same MULTI or script that writes the
// result, and subscribed by a replica only while it waits on the target (plus a linger, so a waiter's
// poll loop does not subscribe and unsubscribe every slice). An older cluster gets the one broadcast channel.
import type { Cluster, Redis } from 'ioredis';
import { CacheUnavailable } from '../../kernel/errors.ts';
import type { RedisClients } from './redis-clients.ts';
import type { RedisKeyLayout } from './redis-key-layout.ts';
import { waitForSignal } from './wait-for-signal.ts';

/** How long a sharded subscription outlives its last waiter. */
const SHARDED_LINGER_MS = 10_000;

export interface Publication {
  /** PUBLISH or SPUBLISH. */
  command: 'publish' | 'spublish';
  channel: string;
}

export class RedisNotifications {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly subscriber: Redis | Cluster;
  /** Decided once the server is known: sharded on a cluster whose servers have SPUBLISH. */
  private mode?: 'broadcast' | 'sharded';
  private readonly decided: Promise<void>;
  /** Sharded channel → key, for the targets subscribed now, with the timer that ends each linger. */
  private readonly sharded = new Map<string, { key: string; subscription: Promise<void>; confirmed: boolean; linger?: NodeJS.Timeout }>();
  private subscribed = false;
  private readonly subscribedWaiters = new Set<() => void>();
  private closed = false;

  private readonly commandsReady: () => boolean;

  constructor(
    clients: RedisClients,
    private readonly layout: RedisKeyLayout,
  ) {
    this.subscriber = clients.subscriber;
    this.commandsReady = () => clients.commands.status === 'ready';
    this.decided = new Promise<void>((resolve) => {
      const decide = (mode: 'broadcast' | 'sharded') => {
        this.mode ??= mode;
        resolve();
      };
      if (clients.topology !== 'cluster') return decide('broadcast');
      // COMMAND INFO answers [null] for a command the server does not know (Redis < 7).
      const ask = () =>
        void clients.commands.call('COMMAND', 'INFO', 'SPUBLISH').then(
          (info) => decide(Array.isArray(info) && info[0] ? 'sharded' : 'broadcast'),
          () => undefined, // asked again at the next connect
        );
      clients.commands.on('ready', ask);
      if (clients.commands.status === 'ready') ask();
    });
    this.subscriber.on('ready', () => void this.decided.then(() => this.resubscribe()));
    this.subscriber.on('message', (channel: string, key: string) => {
      if (channel === this.layout.updatesChannel) this.wake(key);
    });
    this.subscriber.on('smessage', (channel: string, key: string) => {
      if (this.sharded.has(channel)) this.wake(key);
    });
    this.subscriber.on('error', () => undefined);
  }

  /**
   * Where a result for the key is announced. Known once the server answered whether it has SPUBLISH;
   * until then (just after the first connect) this waits at most waitMs, and before any connect it
   * fails at once, as every command does then.
   */
  async publicationFor(key: string, waitMs: number): Promise<Publication> {
    if (!this.mode && this.commandsReady()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.decided, new Promise((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
    }
    if (!this.mode) throw new CacheUnavailable('redis not connected yet: notifications not set up');
    return this.mode === 'sharded' ? { command: 'spublish', channel: this.layout.targetChannel(key) } : { command: 'publish', channel: this.layout.updatesChannel };
  }

  private resubscribe(): void {
    if (this.closed) return;
    if (this.mode === 'sharded') {
      // ioredis keeps sharded subscriptions across node changes itself; on a whole reconnect, renew them.
      const channels = [...this.sharded.keys()];
      const done = () => this.markSubscribed();
      if (channels.length === 0) return done();
      (this.subscriber as Cluster).ssubscribe(...channels).then(done, () => undefined);
      return;
    }
    this.subscriber.subscribe(this.layout.updatesChannel).then(
      () => this.markSubscribed(),
      () => undefined,
    );
  }

  private markSubscribed(): void {
    this.subscribed = true;
    for (const done of [...this.subscribedWaiters]) done();
  }

  /** Resolves once this replica hears notifications (startup and tests), or rejects after timeoutMs. */
  async ready(timeoutMs: number): Promise<void> {
    if (this.subscribed) return;
    await waitForSignal(this.subscribedWaiters, timeoutMs, () => new Error(`redis notifications not subscribed within ${timeoutMs} ms`));
  }

  /**
   * Resolves when the key's result is announced, or after timeoutMs (the caller polls then). A
   * sharded subscription made for this wait could miss a result announced just before it was in
   * place, so once it is, `alreadyThere` looks whether the result is already stored.
   */
  waitForUpdate(key: string, timeoutMs: number, alreadyThere: () => Promise<boolean>): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) {
          this.waiters.delete(key);
          if (this.mode === 'sharded') this.lingerThenUnsubscribe(key);
        }
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      set.add(done);
      if (this.mode !== 'sharded') return;
      const subscription = this.subscribeTarget(key);
      if (subscription) subscription.then(alreadyThere).then((there) => there && done(), () => undefined);
    });
  }

  /** Subscribes to the key's channel unless it is; returns the pending subscription, or undefined when one was in place. */
  private subscribeTarget(key: string): Promise<void> | undefined {
    const channel = this.layout.targetChannel(key);
    const entry = this.sharded.get(channel);
    if (entry) {
      clearTimeout(entry.linger);
      entry.linger = undefined;
      return entry.confirmed ? undefined : entry.subscription;
    }
    const subscription = (this.subscriber as Cluster).ssubscribe(channel).then(
      () => {
        const current = this.sharded.get(channel);
        if (current) current.confirmed = true;
      },
      (err: unknown) => {
        // Lost: the waiter's poll still finds the result.
        this.sharded.delete(channel);
        throw err;
      },
    );
    subscription.catch(() => undefined);
    this.sharded.set(channel, { key, subscription, confirmed: false });
    return subscription;
  }

  private lingerThenUnsubscribe(key: string): void {
    const channel = this.layout.targetChannel(key);
    const entry = this.sharded.get(channel);
    if (!entry || entry.linger) return;
    entry.linger = setTimeout(() => {
      if (this.waiters.has(key)) return;
      this.sharded.delete(channel);
      (this.subscriber as Cluster).sunsubscribe(channel).catch(() => undefined);
    }, SHARDED_LINGER_MS);
    entry.linger.unref();
  }

  private wake(key: string): void {
    for (const done of [...(this.waiters.get(key) ?? [])]) done();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const entry of this.sharded.values()) clearTimeout(entry.linger);
    for (const key of [...this.waiters.keys()]) this.wake(key);
  }
}
