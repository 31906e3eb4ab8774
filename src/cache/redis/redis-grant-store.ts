// Grants in Redis (docs/delegated-credentials.md, "Two replicas never redeem one refresh token").
// One hash per grant holds its version, the claim (holder, expiry by the Redis server's clock) and
// the encrypted grant, so every step is one script over one key: atomic, one cluster slot, and
// replicated together. Where the master has replicas, a claim counts only once a replica has
// acknowledged it (WAIT, https://redis.io/docs/latest/commands/wait/): a failover then cannot bring
// back a master that never saw the claim. Commits are waited for the same way.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../../observability/logger.ts';
import type { CacheCipher } from '../cache-cipher.ts';
import type { ClaimOutcome, Grant, GrantStore, StoredGrant } from '../grant-store.ts';
import type { RedisHealth } from './redis-health.ts';
import type { RedisKeyLayout } from './redis-key-layout.ts';

// KEYS[1] the grant hash. `now` is the server's TIME in ms, so claims expire by one clock for all replicas.
const NOW = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
const CLAIMED_BY_OTHER = `local holder = redis.call('HGET', KEYS[1], 'holder'); local claimUntil = tonumber(redis.call('HGET', KEYS[1], 'until') or '0'); local other = holder and holder ~= ARGV[2] and claimUntil > now`;

// ARGV version, holder, ttl ms
const CLAIM_SCRIPT = `local v = redis.call('HGET', KEYS[1], 'v')
if not v then return 'absent' end
if v ~= ARGV[1] then return 'stale' end
${NOW}
${CLAIMED_BY_OTHER}
if other then return 'held' end
redis.call('HSET', KEYS[1], 'holder', ARGV[2], 'until', now + tonumber(ARGV[3]))
return 'claimed'`;

// ARGV version, holder, ttl ms
const EXTEND_SCRIPT = `if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'holder') ~= ARGV[2] then return 0 end
${NOW}
redis.call('HSET', KEYS[1], 'until', now + tonumber(ARGV[3]))
return 1`;

// ARGV version, holder, sealed grant
const COMMIT_SCRIPT = `if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
${NOW}
${CLAIMED_BY_OTHER}
if other then return 0 end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(ARGV[1]) + 1), 'data', ARGV[3])
redis.call('HDEL', KEYS[1], 'holder', 'until')
return 1`;

// ARGV version, holder
const RELEASE_SCRIPT = `if redis.call('HGET', KEYS[1], 'v') == ARGV[1] and redis.call('HGET', KEYS[1], 'holder') == ARGV[2] then redis.call('HDEL', KEYS[1], 'holder', 'until') end
return 1`;

// ARGV sealed grant; returns the new version
const REPLACE_SCRIPT = `local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0') + 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', tostring(v), 'data', ARGV[1])
return v`;

/** How long a claim or commit waits for a replica's acknowledgement. */
export const REPLICA_ACK_TIMEOUT_MS = 500;

export interface RedisGrantStoreParts {
  /** The store's own connection: WAIT blocks it, and the token path must not queue behind that. */
  client: Redis | Cluster;
  layout: RedisKeyLayout;
  health: RedisHealth;
  cipher: CacheCipher;
  logger: Logger;
}

function connectedReplicas(info: unknown): number {
  const match = typeof info === 'string' ? /^connected_slaves:(\d+)/m.exec(info) : null;
  return match ? Number(match[1]) : 0;
}

export class RedisGrantStore implements GrantStore {
  constructor(private readonly parts: RedisGrantStoreParts) {}

  private get client(): Redis | Cluster {
    return this.parts.client;
  }

  private seal(redisKey: string, grant: Grant): string {
    return this.parts.cipher.encrypt(JSON.stringify(grant), redisKey);
  }

  private open(redisKey: string, sealed: string | null | undefined): Grant | undefined {
    const json = sealed ? this.parts.cipher.decrypt(sealed, redisKey) : undefined;
    if (!json) return undefined;
    try {
      return JSON.parse(json) as Grant;
    } catch {
      return undefined;
    }
  }

  /**
   * Runs a script on the grant's key and reads the replication state of the node that ran it (the
   * same pipeline goes to the same node). With replicas, waits for one to acknowledge.
   */
  private async scriptAcknowledged(what: string, script: string, key: string, args: (string | number)[]): Promise<{ result: unknown; acknowledged: boolean }> {
    return this.parts.health.run(what, 'write', async () => {
      const replies = await this.client.pipeline().eval(script, 1, key, ...args).info('replication').exec();
      const [scriptReply, infoReply] = replies ?? [];
      if (scriptReply?.[0]) throw scriptReply[0];
      const result = scriptReply?.[1];
      if (connectedReplicas(infoReply?.[1]) === 0) return { result, acknowledged: true };
      // A keyed command first, so the pipeline (and its WAIT) goes to the node that holds the key.
      const waited = await this.client.pipeline().hget(key, 'v').wait(1, REPLICA_ACK_TIMEOUT_MS).exec();
      return { result, acknowledged: Number(waited?.[1]?.[1] ?? 0) >= 1 };
    });
  }

  async read(credentialId: string): Promise<StoredGrant | undefined> {
    const key = this.parts.layout.grant(credentialId);
    const [version, sealed] = await this.parts.health.run('HMGET grant', 'read', () => this.client.hmget(key, 'v', 'data'));
    const grant = this.open(key, sealed);
    return grant && version ? { ...grant, version: Number(version) } : undefined;
  }

  async replace(credentialId: string, grant: Grant): Promise<StoredGrant> {
    const key = this.parts.layout.grant(credentialId);
    const { result } = await this.scriptAcknowledged('replace grant', REPLACE_SCRIPT, key, [this.seal(key, grant)]);
    return { ...grant, version: Number(result) };
  }

  async claim(credentialId: string, version: number, holder: string, ttlMs: number): Promise<ClaimOutcome> {
    const key = this.parts.layout.grant(credentialId);
    const { result, acknowledged } = await this.scriptAcknowledged('claim grant', CLAIM_SCRIPT, key, [String(version), holder, Math.ceil(ttlMs)]);
    if (result !== 'claimed' || acknowledged) return result as ClaimOutcome;
    await this.release(credentialId, version, holder).catch(() => undefined);
    return 'unconfirmed';
  }

  async extend(credentialId: string, version: number, holder: string, ttlMs: number): Promise<boolean> {
    const key = this.parts.layout.grant(credentialId);
    const result = await this.parts.health.run('extend claim', 'write', () => this.client.eval(EXTEND_SCRIPT, 1, key, String(version), holder, Math.ceil(ttlMs)));
    return result === 1;
  }

  async commit(credentialId: string, version: number, holder: string, grant: Grant): Promise<StoredGrant | undefined> {
    const key = this.parts.layout.grant(credentialId);
    const { result, acknowledged } = await this.scriptAcknowledged('commit grant', COMMIT_SCRIPT, key, [String(version), holder, this.seal(key, grant)]);
    if (result !== 1) return undefined;
    if (!acknowledged) {
      this.parts.logger.warn({ credentialId }, `no Redis replica acknowledged the rotated refresh token within ${REPLICA_ACK_TIMEOUT_MS} ms: if the master fails now, this replica writes it again (docs/delegated-credentials.md)`);
    }
    return { ...grant, version: version + 1 };
  }

  async release(credentialId: string, version: number, holder: string): Promise<void> {
    const key = this.parts.layout.grant(credentialId);
    await this.parts.health.run('release claim', 'write', () => this.client.eval(RELEASE_SCRIPT, 1, key, String(version), holder));
  }

  async forget(credentialId: string): Promise<void> {
    await this.parts.health.run('DEL grant', 'write', () => this.client.del(this.parts.layout.grant(credentialId)));
  }

  async putOnce(key: string, value: string, ttlMs: number): Promise<void> {
    const redisKey = this.parts.layout.once(key);
    await this.parts.health.run('SET once', 'write', () => this.client.set(redisKey, this.parts.cipher.encrypt(value, redisKey), 'PX', Math.ceil(ttlMs)));
  }

  async takeOnce(key: string): Promise<string | undefined> {
    const redisKey = this.parts.layout.once(key);
    // GETDEL: read and delete in one command, so two replicas cannot both take the record.
    const sealed = await this.parts.health.run('GETDEL once', 'write', () => this.client.getdel(redisKey));
    return sealed ? this.parts.cipher.decrypt(sealed, redisKey) : undefined;
  }

  async peekOnce(key: string): Promise<string | undefined> {
    const redisKey = this.parts.layout.once(key);
    const sealed = await this.parts.health.run('GET once', 'read', () => this.client.get(redisKey));
    return sealed ? this.parts.cipher.decrypt(sealed, redisKey) : undefined;
  }

  async deleteOnce(key: string): Promise<void> {
    await this.parts.health.run('DEL once', 'write', () => this.client.del(this.parts.layout.once(key)));
  }

  /**
   * INFO persistence (https://redis.io/docs/latest/operate/oss_and_stack/management/persistence/): only
   * AOF keeps every write; RDB snapshots, if configured, lose what changed since the last one (CONFIG
   * GET would say whether they are: it is not in the broker's ACL, since it also reads secrets).
   */
  async durability(): Promise<{ durable: boolean; detail: string }> {
    const info = String(await this.parts.health.run('INFO persistence', 'read', () => this.client.info('persistence')));
    if (/^aof_enabled:1/m.test(info)) return { durable: true, detail: 'Redis AOF is on' };
    return { durable: false, detail: 'Redis AOF is off: a Redis restart loses the sign-ins made since its last RDB snapshot, or all of them without snapshots (set appendonly yes)' };
  }
}
