// A real Sentinel setup of the test's own: a master, its replica and 3 sentinels (quorum 2) on free
// loopback ports, so tests can kill the master and watch the sentinels promote the replica.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis-server.ts';
import { pollUntil, spawnTestRedisNode, type RedisAuth, type TestRedisNode } from './redis-cluster.ts';

export interface TestRedisSentinel {
  /** The initial roles. */
  master: TestRedisNode;
  replica: TestRedisNode;
  /** 3, started with `redis-server <conf> --sentinel`. */
  sentinels: TestRedisNode[];
  /** 'tbmaster' by default. */
  masterName: string;
  /** `127.0.0.1:PORT` for every sentinel. */
  sentinelAddresses: string[];
  /** What the sentinels say is master now (SENTINEL get-master-addr-by-name), as a port. */
  currentMasterPort(): number;
  /** Resolves once the sentinels name a different master than `fromPort` and it answers ROLE master. */
  waitForFailover(fromPort: number, capMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** The port a sentinel names as master now, or undefined when it cannot say. */
function masterPortSeenBy(sentinel: TestRedisNode, name: string): number | undefined {
  const [, port] = sentinel.cli('SENTINEL', 'get-master-addr-by-name', name).split('\n');
  const n = Number(port);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

export async function startTestRedisSentinel(options: { password?: string; sentinelPassword?: string; masterName?: string } = {}): Promise<TestRedisSentinel> {
  const name = options.masterName ?? 'tbmaster';
  const dataAuth: RedisAuth = options.password ? { password: options.password } : {};
  const sentinelAuth: RedisAuth = options.sentinelPassword ? { password: options.sentinelPassword } : {};
  const dirs: string[] = [];
  const started: TestRedisNode[] = [];
  const close = async () => {
    await Promise.all(started.map((n) => n.kill('SIGTERM')));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  const newDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'token-broker-redis-sentinel-'));
    dirs.push(d);
    return d;
  };
  // Both data nodes get masterauth: whichever ends up replica must authenticate to the other.
  const dataArgs = (port: number, dir: string) => [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
    ...(options.password ? ['--requirepass', options.password, '--masterauth', options.password] : []),
  ];

  try {
    const masterPort = await freePort();
    const master = await spawnTestRedisNode(masterPort, dataArgs(masterPort, newDir()), dataAuth);
    started.push(master);
    const replicaPort = await freePort();
    const replica = await spawnTestRedisNode(replicaPort, [...dataArgs(replicaPort, newDir()), '--replicaof', '127.0.0.1', String(masterPort)], dataAuth);
    started.push(replica);

    const sentinels: TestRedisNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const dir = newDir();
      const conf = join(dir, 'sentinel.conf');
      // `sentinel monitor` first: the other `sentinel … <name>` lines need the master to exist.
      const lines = [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        ...(options.password ? [`sentinel auth-pass ${name} ${options.password}`] : []),
        // Sentinels also use their own requirepass to talk to each other.
        ...(options.sentinelPassword ? [`requirepass ${options.sentinelPassword}`] : []),
      ];
      // Sentinel rewrites this file (ids, known replicas and sentinels), hence a file of its own.
      writeFileSync(conf, `${lines.join('\n')}\n`);
      const s = await spawnTestRedisNode(port, [conf, '--sentinel'], sentinelAuth);
      started.push(s);
      sentinels.push(s);
    }

    // Without a synced replica known to every sentinel, and sentinels that know each other, no failover can happen.
    await pollUntil('replica synced and known to 3 sentinels that know each other', 120_000, () => {
      if (!replica.cli('INFO', 'replication').includes('master_link_status:up')) return 'replica link not up';
      for (const s of sentinels) {
        if (s.cli('SENTINEL', 'replicas', name) === '') return `sentinel ${s.port} knows no replica`;
        const others = s.cli('SENTINEL', 'sentinels', name).split('\n').filter((l) => l === 'runid').length;
        if (others !== 2) return `sentinel ${s.port} knows ${others} other sentinels`;
      }
      return true;
    });

    const currentMasterPort = (): number => {
      for (const s of sentinels.filter((x) => x.alive())) {
        const p = masterPortSeenBy(s, name);
        if (p !== undefined) return p;
      }
      throw new Error(`no sentinel names a master for ${name}`);
    };
    const nodeOn = (port: number) => [master, replica].find((n) => n.port === port);

    return {
      master,
      replica,
      sentinels,
      masterName: name,
      sentinelAddresses: sentinels.map((s) => `127.0.0.1:${s.port}`),
      currentMasterPort,
      waitForFailover: (fromPort, capMs = 120_000) =>
        pollUntil(`sentinels failing over from ${fromPort}`, capMs, () => {
          const seen = sentinels.filter((s) => s.alive()).map((s) => masterPortSeenBy(s, name));
          const first = seen[0];
          if (first === undefined || first === fromPort || seen.some((p) => p !== first)) return `sentinels name ${seen.join(', ')}`;
          const node = nodeOn(first);
          if (!node) return `sentinels name unknown port ${first}`;
          const role = node.cli('ROLE').split('\n')[0];
          return role === 'master' || `${first} answers ROLE ${role}`;
        }),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
