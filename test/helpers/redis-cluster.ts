// A real Redis Cluster of the test's own (3 masters, 3 replicas) on free loopback ports, so tests can
// kill a master and watch its replica take over. Needs redis-server and redis-cli on PATH (see
// redisSkipReason in redis-server.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis-server.ts';

export interface TestRedisNode {
  port: number;
  host: '127.0.0.1';
  /** Stops it the hard way (SIGKILL) or cleanly; resolves once the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Runs one redis-cli command against this node alone; returns stdout trimmed. */
  cli(...args: string[]): string;
  alive(): boolean;
}

export interface TestRedisCluster {
  /** All 6, in start order. */
  nodes: TestRedisNode[];
  /** `redis://127.0.0.1:PORT` for every node. */
  seeds: string[];
  /** The node currently master for the key's slot, as a live node sees it now (never a cached map). */
  masterFor(key: string): TestRedisNode;
  /** The key's slot (CLUSTER KEYSLOT via a live node). */
  slotOf(key: string): number;
  /** Resolves once every live node reports cluster_state:ok and sees every slot served by a live master. */
  waitUntilHealthy(capMs?: number): Promise<void>;
  /** Runs a command through any live node with `redis-cli -c` (follows MOVED/ASK); returns stdout trimmed. */
  cli(...args: string[]): string;
  /** SIGTERM every node still running, remove the temp dirs. */
  close(): Promise<void>;
}

export interface RedisAuth {
  password?: string;
  username?: string;
}

const SLOTS = 16384;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** redis-cli's auth flags: the ACL user when there is one, else the default user's password. */
export function cliAuthArgs(auth: RedisAuth): string[] {
  if (!auth.password) return [];
  return [...(auth.username ? ['--user', auth.username] : []), '-a', auth.password, '--no-auth-warning'];
}

/** Runs redis-cli; the timeout only stops a call to a frozen server from hanging the test. */
export function runCli(port: number, auth: RedisAuth, args: string[]): string {
  return spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...cliAuthArgs(auth), ...args], { encoding: 'utf8', timeout: 30_000 }).stdout?.trim() ?? '';
}

/** Polls until `ready()` answers true; the cap only stops a hung start, and its error says what was last seen. */
export async function pollUntil(what: string, capMs: number, ready: () => boolean | string): Promise<void> {
  const deadline = Date.now() + capMs;
  let last: boolean | string = false;
  for (;;) {
    last = ready();
    if (last === true) return;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${capMs} ms${typeof last === 'string' ? ` (${last})` : ''}`);
    await sleep(100);
  }
}

/** Spawns one redis-server and waits until it answers as itself. `dir` is the caller's to remove. */
export async function spawnTestRedisNode(port: number, args: string[], auth: RedisAuth, capMs = 60_000): Promise<TestRedisNode> {
  const child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  const alive = () => child.exitCode === null && child.signalCode === null;
  const node: TestRedisNode = {
    port,
    host: '127.0.0.1',
    cli: (...a) => runCli(port, auth, a),
    alive,
    kill: async (signal = 'SIGTERM') => {
      if (!alive()) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
  // Its own pid, not just PONG: another process may have taken the port between freePort() and the bind.
  await pollUntil(`redis-server on port ${port} answering`, capMs, () => {
    if (!alive()) throw new Error(`redis-server on port ${port} exited at start (${child.exitCode ?? child.signalCode})`);
    return /^process_id:(\d+)\r?$/m.exec(node.cli('INFO', 'server'))?.[1] === String(child.pid);
  });
  return node;
}

interface NodeLine {
  port: number;
  flags: string[];
  masterId: string;
  id: string;
  /** Inclusive slot ranges this node serves (importing/migrating markers left out). */
  ranges: [number, number][];
}

/** CLUSTER NODES as one node sees it. */
function parseClusterNodes(text: string): NodeLine[] {
  const out: NodeLine[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    const [id, addr, flags, masterId] = f;
    if (!id || !addr || !flags || !masterId) continue;
    // ip:port@cport[,hostname]
    const hostPort = addr.split('@')[0] ?? '';
    const port = Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));
    const ranges: [number, number][] = [];
    for (const s of f.slice(8)) {
      if (s.startsWith('[')) continue;
      const [a, b] = s.split('-');
      ranges.push([Number(a), Number(b ?? a)]);
    }
    out.push({ id, port, flags: flags.split(','), masterId, ranges });
  }
  return out;
}

/** Why this node's view is not healthy yet, or true. `needAll` also wants all 6 nodes known and connected. */
function viewProblem(view: NodeLine[], isLive: (port: number) => boolean, needAll: boolean): true | string {
  const covered = new Uint8Array(SLOTS);
  for (const n of view) {
    if (!n.flags.includes('master') || n.flags.includes('fail') || n.flags.includes('fail?') || !isLive(n.port)) continue;
    for (const [a, b] of n.ranges) covered.fill(1, a, b + 1);
  }
  const missing = covered.reduce((acc, v) => acc + (v ? 0 : 1), 0);
  if (missing > 0) return `${missing} slots without a live master`;
  if (needAll) {
    if (view.length !== 6) return `knows ${view.length} nodes`;
    const odd = view.find((n) => n.flags.some((fl) => ['handshake', 'noaddr', 'fail', 'fail?'].includes(fl)));
    if (odd) return `node ${odd.port} flagged ${odd.flags.join(',')}`;
  }
  return true;
}

/**
 * `aclRules`: the ACL user's rules (default `~* &* +@all`). With rules of their own the user is the
 * broker's alone, and the helper's own redis-cli calls go through the default user.
 */
export async function startTestRedisCluster(options: { password?: string; username?: string; aclRules?: string[]; nodeTimeoutMs?: number } = {}): Promise<TestRedisCluster> {
  if (options.username && !options.password) throw new Error('an ACL user needs a password');
  const nodeTimeout = options.nodeTimeoutMs ?? 1000;
  // The ACL user only exists once created on each node; until then the default user (requirepass) is used.
  const defaultAuth: RedisAuth = options.password ? { password: options.password } : {};
  const auth: RedisAuth = options.aclRules ? defaultAuth : { ...defaultAuth, ...(options.username ? { username: options.username } : {}) };
  const dirs: string[] = [];
  const nodes: TestRedisNode[] = [];
  const close = async () => {
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < 6; i++) {
      const port = await freePort();
      // An explicit bus port: the default (port + 10000) overflows for ephemeral ports above 55535.
      const busPort = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'token-broker-redis-cluster-'));
      dirs.push(dir);
      const args = [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort),
        '--cluster-node-timeout', String(nodeTimeout),
        // A replica must always be allowed to take over, however long its link has been down.
        '--cluster-replica-validity-factor', '0',
        '--cluster-allow-reads-when-down', 'no',
        // Replication authenticates as `default`, which keeps the password whether or not there is an ACL user.
        ...(options.password ? ['--requirepass', options.password, '--masterauth', options.password] : []),
      ];
      const defaultNode = await spawnTestRedisNode(port, args, defaultAuth);
      if (options.username) {
        const ok = defaultNode.cli('ACL', 'SETUSER', options.username, 'on', `>${options.password}`, ...(options.aclRules ?? ['~*', '&*', '+@all']));
        if (ok !== 'OK') throw new Error(`ACL SETUSER on port ${port}: ${ok}`);
      }
      nodes.push({ ...defaultNode, cli: (...a) => runCli(port, auth, a) });
    }

    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes', ...cliAuthArgs(auth)],
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed (${create.status ?? create.signal}): ${create.stdout}${create.stderr}`);

    // Gossip spreads the topology after create; until every node has it, commands can fail with CLUSTERDOWN.
    const allLive = (port: number) => nodes.some((n) => n.port === port && n.alive());
    await pollUntil('every cluster node ok, all slots covered, all nodes known', 120_000, () => {
      for (const n of nodes) {
        if (!n.cli('CLUSTER', 'INFO').includes('cluster_state:ok')) return `node ${n.port} not cluster_state:ok`;
        const p = viewProblem(parseClusterNodes(n.cli('CLUSTER', 'NODES')), allLive, true);
        if (p !== true) return `node ${n.port}: ${p}`;
        const repl = n.cli('INFO', 'replication');
        if (repl.includes('role:slave') && !repl.includes('master_link_status:up')) return `replica ${n.port} not synced`;
      }
      return true;
    });
  } catch (err) {
    await close();
    throw err;
  }

  const liveNode = (): TestRedisNode => {
    const n = nodes.find((x) => x.alive());
    if (!n) throw new Error('no cluster node is alive');
    return n;
  };
  const slotOf = (key: string): number => {
    const out = liveNode().cli('CLUSTER', 'KEYSLOT', key);
    const slot = Number(out);
    if (!Number.isInteger(slot)) throw new Error(`CLUSTER KEYSLOT ${key}: ${out}`);
    return slot;
  };

  return {
    nodes,
    seeds: nodes.map((n) => `redis://127.0.0.1:${n.port}`),
    slotOf,
    masterFor: (key) => {
      const slot = slotOf(key);
      const view = parseClusterNodes(liveNode().cli('CLUSTER', 'NODES'));
      const owner = view.find((n) => n.flags.includes('master') && n.ranges.some(([a, b]) => slot >= a && slot <= b));
      if (!owner) throw new Error(`no master for slot ${slot} (key ${key})`);
      const node = nodes.find((n) => n.port === owner.port);
      if (!node) throw new Error(`slot ${slot} is served by unknown port ${owner.port}`);
      return node;
    },
    waitUntilHealthy: (capMs = 120_000) =>
      pollUntil('cluster healthy', capMs, () => {
        const isLive = (port: number) => nodes.some((n) => n.port === port && n.alive());
        for (const n of nodes.filter((x) => x.alive())) {
          if (!n.cli('CLUSTER', 'INFO').includes('cluster_state:ok')) return `node ${n.port} not cluster_state:ok`;
          const p = viewProblem(parseClusterNodes(n.cli('CLUSTER', 'NODES')), isLive, false);
          if (p !== true) return `node ${n.port}: ${p}`;
        }
        return true;
      }),
    cli: (...args) => liveNode().cli('-c', ...args),
    close,
  };
}
