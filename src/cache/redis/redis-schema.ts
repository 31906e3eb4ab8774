// The Redis topologies the shared cache runs on (docs/design.md §9): one standalone server by URL,
// a Redis Cluster by its seed nodes, or a Sentinel-managed master by its sentinels. Passwords come
// from files, never from the configuration itself, so the config can be shown and committed.
import { z } from 'zod';
import { filePath } from '../../kernel/schema-primitives.ts';

/** `host:port`, host a name, an IPv4 address or a bracketed IPv6 address. */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

const hostPort = z.string().refine((v) => {
  const m = HOST_PORT.exec(v);
  return !!m && Number(m[2]) > 0 && Number(m[2]) < 65_536;
}, 'must be host:port');

/** A cluster seed: redis://host:port or rediss://host:port; credentials go in passwordFile and username. */
const seedNode = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'redis:' || u.protocol === 'rediss:') && !!u.port && !u.username && !u.password && (u.pathname === '' || u.pathname === '/');
  } catch {
    return false;
  }
}, 'must be redis://host:port or rediss://host:port, without credentials (use passwordFile and username) or database');

const tlsSchema = z
  .object({
    caFile: filePath.optional().describe('PEM CA bundle for servers with a private CA'),
    serverName: z.string().min(1).optional().describe('the name to check the servers’ certificates against (default: each host)'),
  })
  .strict()
  .describe('TLS to every node; present (even empty) turns TLS on');

export const redisClusterSchema = z
  .object({
    nodes: z.array(seedNode).min(1, 'name at least one seed node').max(64).describe('seed nodes: the client learns the rest of the cluster from any one of them'),
    passwordFile: filePath.optional().describe('file holding the password (AUTH); one trailing newline is not part of it'),
    username: z.string().min(1).max(128).optional().describe('ACL user name (Redis 6+); default: the default user'),
    tls: tlsSchema.optional(),
  })
  .strict();

export const redisSentinelSchema = z
  .object({
    sentinels: z.array(hostPort).min(1, 'name at least one sentinel').max(16).describe('host:port of the sentinels'),
    masterName: z.string().min(1).max(128).describe('the name the sentinels monitor the master under'),
    passwordFile: filePath.optional().describe('file holding the password of the master and replicas'),
    sentinelPasswordFile: filePath.optional().describe('file holding the sentinels’ own password (requirepass in sentinel.conf)'),
    username: z.string().min(1).max(128).optional().describe('ACL user name on the master and replicas'),
    tls: tlsSchema.optional(),
  })
  .strict();

export type RedisClusterConfig = z.infer<typeof redisClusterSchema>;
export type RedisSentinelConfig = z.infer<typeof redisSentinelSchema>;

/** The topology fields of the cache section; exactly one may be set (or none: the in-memory cache). */
const REDIS_TOPOLOGY_FIELDS = ['redisUrl', 'redisCluster', 'redisSentinel'] as const;

/** The message for more than one topology, or undefined. */
export function redisTopologyProblem(cache: Partial<Record<(typeof REDIS_TOPOLOGY_FIELDS)[number], unknown>>): string | undefined {
  const set = REDIS_TOPOLOGY_FIELDS.filter((f) => cache[f] !== undefined);
  if (set.length <= 1) return undefined;
  return `set exactly one of cache.redisUrl, cache.redisCluster and cache.redisSentinel (found ${set.map((f) => `cache.${f}`).join(' and ')})`;
}

/** Braces would put a hash tag in the prefix, and with it every key of every target in one cluster slot. */
export const KEY_PREFIX_NO_BRACES = /^[^{}]*$/;
