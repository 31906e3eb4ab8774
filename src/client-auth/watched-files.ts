// Files of a client authentication that the broker re-reads while it runs (certificates, secrets).
// Their folders are watched: a Kubernetes Secret volume replaces its files by swapping a `..data`
// symlink, which shows up as events on the folder, not on the file. An interval re-reads them too,
// since events can be missed (network file systems, some container runtimes). Either way the owner
// is told to check; it compares contents (see contentFingerprint) and keeps what it has when the
// new files are not usable.
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

/** After a rotation, the material used before it is kept this long for one retry (an IdP may lag). */
export const ROTATION_FALLBACK_WINDOW_MS = 15 * 60_000;

/** Writers replace files in several steps; a check runs this long after the last event. */
const SETTLE_MS = 200;

/** Why a check runs: the interval fell due, or a watched folder changed. */
export type CheckReason = 'interval' | 'event';

/**
 * A digest of the files' contents, to tell whether anything changed without keeping a copy. A
 * missing or unreadable file counts as its own content, so its return is a change too.
 */
export function contentFingerprint(paths: readonly string[]): string {
  const hash = createHash('sha256');
  for (const path of paths) {
    try {
      hash.update(readFileSync(path));
    } catch {
      hash.update(`missing:${path}`);
    }
    hash.update('\0');
  }
  return hash.digest('hex');
}

/** Watches the folders of some absolute paths, and calls `check` on changes and every `intervalMs`. */
export class WatchedFiles {
  private timer?: NodeJS.Timeout;
  private settle?: NodeJS.Timeout;
  private watchers: FSWatcher[] = [];

  constructor(
    private readonly paths: () => readonly string[],
    private readonly options: { intervalMs: number; check: (reason: CheckReason) => void },
  ) {}

  start(): void {
    this.timer = setInterval(() => this.options.check('interval'), this.options.intervalMs);
    this.timer.unref();
    for (const dir of new Set(this.paths().map((p) => dirname(p)))) {
      try {
        const watcher = watch(dir, () => {
          clearTimeout(this.settle);
          this.settle = setTimeout(() => this.options.check('event'), SETTLE_MS);
          this.settle.unref();
        });
        watcher.on('error', () => undefined);
        watcher.unref();
        this.watchers.push(watcher);
      } catch {
        // Watching is an optimisation; the interval still re-reads.
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.settle);
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }
}
