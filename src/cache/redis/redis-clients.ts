// The one place ioredis clients are built, for each topology the shared cache runs on: a standalone
// server, a Redis Cluster, or a master found through Sentinel. The cache itself never knows which;
// it gets a client for commands and one for notifications, and a description for its log lines.
// Why these options: docs/operations.md ("Redis topologies").
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisClusterConfig, RedisSentinelConfig } from './redis-schema.ts';

export type RedisTopology = 'standalone' | 'cluster' | 'sentinel';

/** The cache section's topology with its files read (passwords, CAs): what the client factory needs. */
export type RedisSettings =
  | { topology: 'standalone'; url: string; tlsCa?: Buffer }
  | { topology: 'cluster'; nodes: { host: string; port: number }[]; tls?: ConnectionOptions; password?: string; username?: string }
  | {
      topology: 'sentinel';
      sentinels: { host: string; port: number }[];
      masterName: string;
      tls?: ConnectionOptions;
      password?: string;
      sentinelPassword?: string;
      username?: string;
    };

export interface RedisCacheSection {
  redisUrl?: string;
  redisCluster?: RedisClusterConfig;
  redisSentinel?: RedisSentinelConfig;
  tlsCaFile?: string;
}

/** A secret file's content; one trailing newline (what editors and `echo` add) is not part of it. */
function readSecret(baseDir: string, file: string | undefined): string | undefined {
  return file === undefined ? undefined : readFileSync(resolve(baseDir, file), 'utf8').replace(/\r?\n$/, '');
}

function tlsOptions(baseDir: string, tls: { caFile?: string; serverName?: string } | undefined): ConnectionOptions | undefined {
  if (!tls) return undefined;
  return { ...(tls.caFile ? { ca: readFileSync(resolve(baseDir, tls.caFile)) } : {}), ...(tls.serverName ? { servername: tls.serverName } : {}) };
}

function hostAndPort(value: string): { host: string; port: number } {
  const at = value.lastIndexOf(':');
  return { host: value.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(value.slice(at + 1)) };
}

/** The topology the cache section names, or undefined for the in-memory cache. The loader has checked every file. */
export function redisSettingsFrom(cache: RedisCacheSection, baseDir: string): RedisSettings | undefined {
  if (cache.redisCluster) {
    const c = cache.redisCluster;
    const rediss = c.nodes.some((n) => n.startsWith('rediss:'));
    return {
      topology: 'cluster',
      nodes: c.nodes.map((n) => {
        const u = new URL(n);
        return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port) };
      }),
      tls: tlsOptions(baseDir, c.tls ?? (rediss ? {} : undefined)),
      password: readSecret(baseDir, c.passwordFile),
      username: c.username,
    };
  }
  if (cache.redisSentinel) {
    const s = cache.redisSentinel;
    return {
      topology: 'sentinel',
      sentinels: s.sentinels.map(hostAndPort),
      masterName: s.masterName,
      tls: tlsOptions(baseDir, s.tls),
      password: readSecret(baseDir, s.passwordFile),
      sentinelPassword: readSecret(baseDir, s.sentinelPasswordFile),
      username: s.username,
    };
  }
  if (cache.redisUrl) return { topology: 'standalone', url: cache.redisUrl, tlsCa: cache.tlsCaFile ? readFileSync(resolve(baseDir, cache.tlsCaFile)) : undefined };
  return undefined;
}

/** host:port only, never a password: for logs, /readyz and errors. */
function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(unparseable redis URL)';
  }
}

export function describeRedis(settings: RedisSettings): string {
  const list = (nodes: { host: string; port: number }[]) => nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',');
  switch (settings.topology) {
    case 'standalone':
      return describeRedisUrl(settings.url);
    case 'cluster':
      return `redis cluster ${list(settings.nodes)}`;
    case 'sentinel':
      return `redis sentinel master '${settings.masterName}' via ${list(settings.sentinels)}`;
  }
}

export interface RedisClients {
  topology: RedisTopology;
  /** Where it connects, without secrets. */
  description: string;
  /** Commands: no offline queue, so a command while Redis is away fails at once instead of waiting. */
  commands: Redis | Cluster;
  /** Notifications only; it queues its (re)subscriptions until connected. */
  subscriber: Redis | Cluster;
}

interface RedisClientOptions {
  commandTimeoutMs: number;
}

// Reconnect forever, backing off to 2 s: Redis coming back must need no restart of ours.
const reconnectDelay = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

// After a failover a connection can still reach the old master, now a replica, which refuses writes
// with READONLY (https://github.com/redis/ioredis/issues/305): reconnect, and through Sentinel or the
// cluster's slot map find the new master. The command itself fails; the cache serves from memory.
const reconnectOnReadOnly = (err: Error) => err.message.startsWith('READONLY');

export function createRedisClients(settings: RedisSettings, options: RedisClientOptions): RedisClients {
  const common: RedisOptions = {
    connectTimeout: 2000,
    commandTimeout: options.commandTimeoutMs,
    maxRetriesPerRequest: 1,
    reconnectOnError: reconnectOnReadOnly,
  };
  const description = describeRedis(settings);
  // The subscriber (re)subscribes on every connect itself: ioredis' autoResubscribe leaves its
  // SUBSCRIBE promise unhandled, and a connection lost in that moment would be an unhandled rejection.
  const subscriberOptions: RedisOptions = { enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: false };
  switch (settings.topology) {
    case 'standalone': {
      const standalone: RedisOptions = { ...common, retryStrategy: reconnectDelay, ...(settings.tlsCa ? { tls: { ca: settings.tlsCa } } : {}) };
      return {
        topology: 'standalone',
        description,
        commands: new Redis(settings.url, { ...standalone, enableOfflineQueue: false }),
        subscriber: new Redis(settings.url, { ...standalone, ...subscriberOptions }),
      };
    }
    case 'sentinel': {
      const sentinel: RedisOptions = {
        ...common,
        retryStrategy: reconnectDelay,
        sentinels: settings.sentinels,
        name: settings.masterName,
        role: 'master',
        password: settings.password,
        username: settings.username,
        sentinelPassword: settings.sentinelPassword,
        // Sentinels announce +switch-master: follow it at once rather than at the next failed command.
        failoverDetector: true,
        ...(settings.tls ? { tls: settings.tls, enableTLSForSentinelMode: true, sentinelTLS: settings.tls } : {}),
      };
      return {
        topology: 'sentinel',
        description,
        commands: new Redis({ ...sentinel, enableOfflineQueue: false }),
        subscriber: new Redis({ ...sentinel, ...subscriberOptions }),
      };
    }
    case 'cluster': {
      const redisOptions: ClusterOptions['redisOptions'] = {
        ...common,
        password: settings.password,
        username: settings.username,
        ...(settings.tls ? { tls: settings.tls } : {}),
      };
      const cluster: ClusterOptions = {
        redisOptions,
        clusterRetryStrategy: reconnectDelay,
        // A command for a master that went away is retried while the slot map refreshes, for about
        // maxRedirections × retryDelayOnFailover (1.2 s): enough for a redirect, short enough that a
        // caller waiting on a cold target falls back to its own exchange instead of waiting out a failover.
        maxRedirections: 6,
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        slotsRefreshTimeout: 2000,
        // With TLS, node certificates name hosts: keep host names rather than looking them up
        // (https://github.com/redis/ioredis#special-note-aws-elasticache-clusters-with-tls).
        ...(settings.tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
      };
      return {
        topology: 'cluster',
        description,
        commands: new Cluster(settings.nodes, { ...cluster, enableOfflineQueue: false }),
        // Sharded pub/sub (Redis 7: SSUBSCRIBE) keeps a target's notification in its slot's shard.
        subscriber: new Cluster(settings.nodes, { ...cluster, enableOfflineQueue: true, shardedSubscribers: true, redisOptions: { ...redisOptions, maxRetriesPerRequest: null, autoResubscribe: false } }),
      };
    }
  }
}
