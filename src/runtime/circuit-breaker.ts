/**
 * Stops hammering an agent endpoint that keeps failing: after `threshold`
 * consecutive failures the circuit opens and no request is made until `cooldown`
 * has passed; then one probe request is let through (half-open). Success closes
 * the circuit, failure reopens it with a doubled cooldown (capped).
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitOptions {
  threshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
  now?: () => number;
  onChange?: (state: CircuitState, detail: { failures: number; retryAt?: number }) => void;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private cooldown: number;
  private current: CircuitState = 'closed';

  constructor(private readonly options: CircuitOptions) {
    this.cooldown = options.cooldownMs;
  }

  get state(): CircuitState {
    return this.current;
  }

  /** When a request may be tried (ms since epoch); now or earlier when closed or ready to probe. */
  get retryAt(): number {
    return this.current === 'open' ? this.openedAt + this.cooldown : 0;
  }

  /** Whether a request may go out now (moves open to half-open once the cooldown passed). */
  allow(): boolean {
    if (this.current === 'closed' || this.current === 'half-open') return true;
    if (this.now() >= this.retryAt) {
      this.set('half-open');
      return true;
    }
    return false;
  }

  success(): void {
    this.failures = 0;
    this.cooldown = this.options.cooldownMs;
    if (this.current !== 'closed') this.set('closed');
  }

  failure(): void {
    this.failures += 1;
    if (this.current === 'half-open') {
      this.cooldown = Math.min(this.cooldown * 2, this.options.maxCooldownMs);
      this.open();
    } else if (this.current === 'closed' && this.failures >= this.options.threshold) this.open();
  }

  private open(): void {
    this.openedAt = this.now();
    this.set('open');
  }

  private set(state: CircuitState): void {
    this.current = state;
    this.options.onChange?.(state, { failures: this.failures, retryAt: state === 'open' ? this.retryAt : undefined });
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
