// The rate limiter's counters, shared by the replicas through Redis.
import type { SharedCounter } from '../token-cache.ts';
import type { RedisTokenCacheParts } from './redis-token-cache.ts';

/** A counter shared by all replicas (rate limits): INCRBY with an expiry, one key (so one slot) per counter. */
export class RedisSharedCounter implements SharedCounter {
  constructor(private readonly parts: Pick<RedisTokenCacheParts, 'client' | 'layout' | 'health'>) {}

  async add(name: string, delta: number, ttlMs: number): Promise<number> {
    const key = this.parts.layout.counter(name);
    const results = await this.parts.health.run('INCRBY', 'write', () => this.parts.client.multi().incrby(key, delta).pexpire(key, ttlMs).exec());
    return Number(results?.[0]?.[1] ?? 0);
  }
}
