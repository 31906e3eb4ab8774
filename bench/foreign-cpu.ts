// How much of the machine's CPU went to something other than the bench during a measurement.
// The figures are ratios taken on a 2-core machine where the load generator already takes one core,
// so a test run or a noisy neighbour during one run skews the ratio; the report says when that
// happened instead of presenting a skewed figure as clean. Linux only (/proc); elsewhere: unknown.
import { readFileSync } from 'node:fs';

interface Sample {
  machineBusy: number;
  machineTotal: number;
  ours: number;
}

/** Aggregate CPU line of /proc/stat: busy includes steal (time the host gave to another guest). */
function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** utime + stime of one process, all threads included. */
function processTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3, "state"
  return Number(fields[11]) + Number(fields[12]);
}

function sample(pids: number[]): Sample | undefined {
  try {
    const { busy, total } = machineTicks();
    return { machineBusy: busy, machineTotal: total, ours: pids.reduce((sum, pid) => sum + processTicks(pid), 0) };
  } catch {
    return undefined; // not Linux, or a process already gone
  }
}

/**
 * Runs `fn` and returns its result with the share of the machine's CPU capacity (0..1) used by
 * processes other than `pids` meanwhile, or undefined when it cannot be known.
 */
export async function measureForeignCpu<T>(pids: number[], fn: () => Promise<T>): Promise<{ result: T; foreignShare: number | undefined }> {
  const before = sample(pids);
  const result = await fn();
  const after = sample(pids);
  if (!before || !after || after.machineTotal <= before.machineTotal) return { result, foreignShare: undefined };
  const foreign = after.machineBusy - before.machineBusy - (after.ours - before.ours);
  return { result, foreignShare: Math.max(0, foreign / (after.machineTotal - before.machineTotal)) };
}
