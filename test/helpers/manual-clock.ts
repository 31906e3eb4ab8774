// A clock that moves only when the test says so: rate-limit windows, token lifetimes and refresh
// points then depend on what the test did, not on how fast a loaded machine ran it.
import type { Clock } from '../../src/kernel/clock.ts';

export interface ManualClock extends Clock {
  advance(ms: number): void;
  /** Moves to the next whole second plus `ms` (just after a rate-limit window boundary). */
  toNextSecond(ms?: number): void;
}

export function manualClock(start = Date.now()): ManualClock {
  let now = start;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
    toNextSecond: (ms = 0) => {
      now = Math.floor(now / 1000) * 1000 + 1000 + ms;
    },
  };
}
