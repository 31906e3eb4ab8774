import type { Clock } from '../kernel/clock.ts';

/**
 * A per-credential breaker for an IdP that is down: after `threshold` consecutive failures no call is
 * made until the cool-down ends; then one trial call decides. The cool-down doubles while trials fail.
 * Callers keep getting the still-valid token meanwhile, and the IdP is not hammered while it recovers.
 */
export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private cooldownMs: number;
  private trialInFlight = false;

  constructor(
    private readonly clock: Clock,
    private readonly threshold = 3,
    private readonly baseCooldownMs = 5_000,
    private readonly maxCooldownMs = 60_000,
  ) {
    this.cooldownMs = baseCooldownMs;
  }

  /** Milliseconds until a call may be made, 0 when one may be made now (and it is then the trial). */
  blockedForMs(): number {
    if (this.failures < this.threshold) return 0;
    const now = this.clock.now();
    if (now < this.openUntil || this.trialInFlight) return Math.max(this.openUntil - now, 1000);
    this.trialInFlight = true;
    return 0;
  }

  recordSuccess(): void {
    this.failures = 0;
    this.trialInFlight = false;
    this.cooldownMs = this.baseCooldownMs;
  }

  recordFailure(): void {
    this.failures += 1;
    if (this.failures >= this.threshold) {
      if (this.trialInFlight) this.cooldownMs = Math.min(this.cooldownMs * 2, this.maxCooldownMs);
      this.openUntil = this.clock.now() + this.cooldownMs;
    }
    this.trialInFlight = false;
  }
}
