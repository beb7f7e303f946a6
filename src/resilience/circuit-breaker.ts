/** `closed`: calls flow. `open`: calls fail fast. `half-open`: one probe call decides. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** Circuit breaker settings. */
export type CircuitBreakerOptions = {
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** How long the circuit stays open before a probe is let through, in milliseconds. */
  openDurationMs: number;
  /** Told of every state change. */
  onTransition?: (from: CircuitState, to: CircuitState, failures: number) => void;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
};

/**
 * A consecutive-failure circuit breaker with half-open probing. It keeps no timers: the open →
 * half-open step happens lazily on the first call after `openDurationMs`, so an idle cache holds no
 * handles and `tryAcquire()` is a few comparisons on the hot path.
 *
 * Written here rather than taken from opossum: opossum wraps each call in its own promise and keeps
 * rolling-window timers, while Larder needs a synchronous check and no timers.
 */
export class CircuitBreaker {
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probeInFlight = false;
  readonly #options: CircuitBreakerOptions;
  readonly #now: () => number;

  constructor(options: CircuitBreakerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    return this.#state;
  }

  /** Consecutive failures counted so far. */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Asks to send one call. Every `true` must be followed by exactly one `onSuccess()` or
   * `onFailure()`, which is how a half-open probe is released.
   */
  tryAcquire(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') {
      if (this.#now() - this.#openedAt < this.#options.openDurationMs) return false;
      this.#transition('half-open');
    }
    if (this.#probeInFlight) return false;
    this.#probeInFlight = true;
    return true;
  }

  onSuccess(): void {
    this.#failures = 0;
    this.#probeInFlight = false;
    if (this.#state !== 'closed') this.#transition('closed');
  }

  /** Ends a call that says nothing about Redis's health (it was refused before reaching Redis). */
  release(): void {
    this.#probeInFlight = false;
  }

  onFailure(): void {
    this.#failures += 1;
    this.#probeInFlight = false;
    if (
      this.#state === 'half-open' ||
      (this.#state === 'closed' && this.#failures >= this.#options.failureThreshold)
    ) {
      this.#openedAt = this.#now();
      this.#transition('open');
    } else if (this.#state === 'open') {
      // A call acquired before the circuit opened failed late: restart the open period.
      this.#openedAt = this.#now();
    }
  }

  #transition(to: CircuitState): void {
    const from = this.#state;
    this.#state = to;
    this.#options.onTransition?.(from, to, this.#failures);
  }
}
