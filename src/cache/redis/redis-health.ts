// Whether Redis is usable, from the connection's events, from what commands answer and from a
// health check every second (a SET with expiry: it proves writes work; on a cluster, one per master,
// so a dead or read-only master shows even while the others answer). While Redis is unusable the
// cache serves from memory; a slow Redis is not even sent commands. docs/operations.md ("When Redis
// misbehaves") describes the states.
import type { Cluster, Redis } from 'ioredis';
import { ReplyError } from 'ioredis';
import type { Clock } from '../../kernel/clock.ts';
import { CacheUnavailable } from '../../kernel/errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { CacheHealth, CacheStatus } from '../token-cache.ts';
import type { RedisClients } from './redis-clients.ts';
import { clusterSlot, type RedisKeyLayout } from './redis-key-layout.ts';
import { waitForSignal } from './wait-for-signal.ts';

/** No reply within this is a timeout (ioredis `commandTimeout`): a hung Redis costs a caller this much at most. */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 1000;
/** How often the health check runs. */
const REDIS_HEALTH_CHECK_INTERVAL_MS = 1000;
/**
 * Health checks in a row without a reply within the command timeout before Redis counts as slow.
 * One could be a stall of our own event loop (the timer fires before the reply is read).
 */
const REDIS_SLOW_AFTER_TIMEOUTS = 2;
/** A Redis not connected this long after start is reported even if no error says why. */
const REDIS_CONNECT_WARNING_MS = 5000;
const HEALTH_KEY_TTL_MS = 60_000;
// Replies that mean our credentials are refused (AUTH failed, or a command sent without it).
const AUTH_REPLY_CODES = new Set(['WRONGPASS', 'NOAUTH']);

/** Why Redis is unusable; `writes failing` carries Redis' error code (OOM, READONLY, MISCONF, NOPERM, CLUSTERDOWN…). */
export type RedisTrouble = 'unreachable' | 'authentication failed' | 'slow' | `writes failing: ${string}`;

export type CommandKind = 'read' | 'write';

/**
 * A Redis error reply and its code, the first word (`OOM command not allowed…` → OOM). A MULTI whose
 * commands were refused fails with EXECABORT; what matters is the first refusal behind it.
 */
function describeReply(err: Error & { previousErrors?: Error[] }): { code: string; message: string } {
  const message = err.previousErrors?.[0]?.message ?? err.message;
  return { code: /^[A-Z]+/.exec(message)?.[0] ?? 'ERR', message };
}

/** ioredis rejects with this plain Error when `commandTimeout` passes (https://github.com/redis/ioredis/blob/main/lib/Command.ts, setTimeout). */
function isTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Command timed out';
}

function troubleOf(err: Error): RedisTrouble {
  if (!(err instanceof ReplyError)) return 'unreachable';
  const { code } = describeReply(err);
  return AUTH_REPLY_CODES.has(code) ? 'authentication failed' : `writes failing: ${code}`;
}

type Probe = { ok: true } | { ok: false; timedOut: boolean; error: Error; node?: string };

export class RedisHealth implements CacheHealth {
  private readonly recoveredListeners: (() => void)[] = [];
  private readonly usableWaiters = new Set<() => void>();
  /** connecting: never usable yet; unusable: an episode the operator was warned about. */
  private state: 'connecting' | 'ok' | 'unusable' = 'connecting';
  private trouble?: { reason: RedisTrouble; error: string };
  /** The connection's last error, or '' before there was one. */
  private lastError = '';
  private healthCheck?: Promise<void>;
  private readonly healthTimer: NodeJS.Timeout;
  private readonly connectWarningTimer: NodeJS.Timeout;
  /** Per cluster master (host:port), a health key tag that hashes into one of its slots. */
  private readonly masterTags = new Map<string, string>();
  private closed = false;
  private readonly client: Redis | Cluster;

  constructor(
    private readonly clients: RedisClients,
    private readonly layout: RedisKeyLayout,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly commandTimeoutMs: number,
  ) {
    const client = (this.client = clients.commands);
    client.on('ready', () => {
      this.lastError = 'connection closed';
      // A new, authenticated connection ends an outage of the connection itself; slow and failing
      // writes are for the health check (below, at once) to clear.
      const reason = this.trouble?.reason;
      if (this.state === 'connecting' || reason === 'unreachable' || reason === 'authentication failed') this.markUsable();
      void this.check();
    });
    client.on('error', (err: Error) => {
      this.lastError = this.explain(err);
      // ioredis reports a refused AUTH (or HELLO … AUTH) as an 'error' event, then reconnects.
      if (err instanceof ReplyError && AUTH_REPLY_CODES.has(describeReply(err).code)) this.markUnusable('authentication failed', err.message);
      else if (this.state !== 'ok' && client.status !== 'ready') this.markUnusable('unreachable', this.lastError);
    });
    // A cluster reports a node it cannot reach here, with the node's address.
    client.on('node error', (err: Error, node: string) => {
      this.lastError = `node ${node}: ${err.message}`;
    });
    client.on('close', () => {
      if (this.closed || this.trouble?.reason === 'authentication failed') return;
      this.markUnusable('unreachable', this.lastError);
    });
    this.healthTimer = setInterval(() => void this.check(), REDIS_HEALTH_CHECK_INTERVAL_MS);
    this.healthTimer.unref();
    // A Redis that accepts the connection but never answers emits no error: say so anyway.
    this.connectWarningTimer = setTimeout(() => {
      if (this.state === 'connecting') this.markUnusable('unreachable', `not connected within ${REDIS_CONNECT_WARNING_MS} ms${this.lastError ? `: ${this.lastError}` : ''}`);
    }, REDIS_CONNECT_WARNING_MS);
    this.connectWarningTimer.unref();
  }

  /** What an error says, with what was tried where ioredis' words alone do not say it. */
  private explain(err: Error): string {
    const last = (err as Error & { lastNodeError?: Error }).lastNodeError?.message;
    const message = last ? `${err.message} ${last}` : err.message;
    if (this.clients.topology === 'standalone' || this.client.status === 'ready') return message;
    const field = this.clients.topology === 'cluster' ? 'cache.redisCluster.nodes' : 'cache.redisSentinel (sentinels, masterName)';
    return `${message} (tried ${this.clients.description}; check ${field})`;
  }

  /** Resolves once Redis is usable, or rejects after timeoutMs. */
  async usable(timeoutMs: number): Promise<void> {
    if (this.state === 'ok') return;
    await waitForSignal(this.usableWaiters, timeoutMs, () => new CacheUnavailable(`redis not usable within ${timeoutMs} ms: ${this.trouble?.error ?? (this.lastError || 'not connected')}`));
  }

  private markUsable(): void {
    if (this.state === 'ok' || this.closed) return;
    const recovered = this.state === 'unusable';
    this.state = 'ok';
    this.trouble = undefined;
    this.logger.info({ redis: this.clients.description }, recovered ? 'redis usable again' : 'redis connected');
    for (const done of [...this.usableWaiters]) done();
    if (recovered) for (const listener of this.recoveredListeners) listener();
  }

  /** One warning per episode; while it lasts, only the reason shown in status() follows. */
  private markUnusable(reason: RedisTrouble, error: string): void {
    if (this.closed) return;
    this.trouble = { reason, error };
    if (this.state === 'unusable') return;
    this.state = 'unusable';
    this.logger.warn({ redis: this.clients.description, reason, error }, `redis ${reason}: serving from memory`);
  }

  /** What a failed command says about Redis. */
  noteFailure(err: unknown, kind: CommandKind): void {
    if (!(err instanceof ReplyError)) {
      // A timeout, or (on a cluster, whose connection stays up while one node is away) a node lost:
      // one failed command is not yet a verdict; the health check gives it.
      void this.check();
      return;
    }
    const { code, message } = describeReply(err as Error);
    if (AUTH_REPLY_CODES.has(code)) this.markUnusable('authentication failed', message);
    else if (kind === 'write') this.markUnusable(`writes failing: ${code}`, message);
  }

  /** Runs a command unless Redis is slow; failures become CacheUnavailable and are noted. */
  async run<T>(what: string, kind: CommandKind, op: () => Promise<T>): Promise<T> {
    // A slow Redis gets no commands but the health check's: every one would cost its caller the timeout.
    if (this.trouble?.reason === 'slow') throw new CacheUnavailable(`redis ${what} not sent: redis is slow (${this.trouble.error})`);
    try {
      return await op();
    } catch (err) {
      this.noteFailure(err, kind);
      throw new CacheUnavailable(`redis ${what} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** At most one at a time; a Redis that is not even connected is left to the connection's events. */
  check(): Promise<void> {
    if (this.closed || this.client.status !== 'ready') return Promise.resolve();
    this.healthCheck ??= this.runCheck().finally(() => (this.healthCheck = undefined));
    return this.healthCheck;
  }

  /**
   * The health keys to write: one, or on a cluster one per master, each with a tag that hashes into
   * a slot the master owns (ioredis' slot map: `Cluster.slots`, slot → [master, …replicas]).
   */
  private healthKeys(): { key: string; node?: string }[] {
    const slots = this.clients.topology === 'cluster' ? (this.client as Cluster).slots : [];
    const masters = new Set(slots.map((nodes) => nodes?.[0]).filter((n): n is string => !!n));
    if (masters.size === 0) return [{ key: this.layout.health('check') }];
    const keys: { key: string; node: string }[] = [];
    for (const master of masters) {
      let tag = this.masterTags.get(master);
      if (!tag || slots[clusterSlot(tag)]?.[0] !== master) {
        tag = undefined;
        // A master owns a third of the slots on a 3-master cluster: a few tries find one of them.
        for (let i = 0; i < 100_000 && !tag; i++) if (slots[clusterSlot(`check-${i}`)]?.[0] === master) tag = `check-${i}`;
        if (!tag) continue;
        this.masterTags.set(master, tag);
      }
      keys.push({ key: this.layout.health(tag), node: master });
    }
    return keys;
  }

  private async probe(key: string, node: string | undefined): Promise<Probe> {
    let last: Error | undefined;
    for (let attempt = 1; attempt <= REDIS_SLOW_AFTER_TIMEOUTS; attempt++) {
      try {
        await this.client.set(key, String(this.clock.now()), 'PX', HEALTH_KEY_TTL_MS);
        return { ok: true };
      } catch (err) {
        last = err as Error;
        if (!isTimeout(err)) return { ok: false, timedOut: false, error: last, node };
      }
    }
    return { ok: false, timedOut: true, error: last!, node };
  }

  private async runCheck(): Promise<void> {
    const probes = await Promise.all(this.healthKeys().map(({ key, node }) => this.probe(key, node)));
    const failed = probes.filter((p): p is Extract<Probe, { ok: false }> => !p.ok);
    if (failed.length === 0) return this.markUsable();
    const where = (p: { node?: string }) => (p.node ? `node ${p.node}: ` : '');
    const refused = failed.find((p) => !p.timedOut);
    if (refused) return this.markUnusable(troubleOf(refused.error), `${where(refused)}${describeReply(refused.error).message}`);
    this.markUnusable('slow', `${where(failed[0]!)}no reply to ${REDIS_SLOW_AFTER_TIMEOUTS} health checks in a row within ${this.commandTimeoutMs} ms`);
  }

  status(): CacheStatus {
    if (this.state === 'ok') return { kind: 'redis', topology: this.clients.topology, state: 'ok' };
    const detail = this.trouble ? `redis ${this.trouble.reason}: ${this.trouble.error}` : 'redis not connected yet';
    return { kind: 'redis', topology: this.clients.topology, state: 'degraded', detail };
  }

  onRecovered(listener: () => void): void {
    this.recoveredListeners.push(listener);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.healthTimer);
    clearTimeout(this.connectWarningTimer);
  }
}
