/** One call waiting for Redis: settled once, by its reply or by its deadline. */
export class PendingCall {
  settled = false;

  constructor(
    readonly deadline: number,
    readonly onTimeout: () => void,
  ) {}
}

/**
 * Per-command timeouts for calls that all share one timeout, on a single timer.
 *
 * A `setTimeout` per command (and its `clearTimeout`) cost ~3-4% of a Redis-tier hit in CPU
 * profiles. Because every call gets the same timeout, deadlines arrive in the order calls start:
 * a FIFO queue holds them, settled calls leave from its head, and one timer is armed for the
 * oldest unsettled deadline. It is re-armed only when it fires, so a steady stream of fast
 * replies arms about one timer per timeout period instead of one per command. The timer is
 * `unref`ed: a call in flight is kept alive by its connection, not by its deadline.
 */
export class Deadlines {
  readonly #timeoutMs: number;
  #queue: PendingCall[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Tracks a call started at `startedAt` (`performance.now()`); `onTimeout` runs if it is not settled in time. */
  add(startedAt: number, onTimeout: () => void): PendingCall {
    const call = new PendingCall(startedAt + this.#timeoutMs, onTimeout);
    this.#queue.push(call);
    if (this.#timer === undefined) this.#arm(call.deadline - performance.now());
    return call;
  }

  /** Settles `call` on its reply. `false` when it had already timed out. */
  settle(call: PendingCall): boolean {
    if (call.settled) return false;
    call.settled = true;
    this.#dropSettled();
    return true;
  }

  #dropSettled(): void {
    const queue = this.#queue;
    while (this.#head < queue.length && (queue[this.#head] as PendingCall).settled) this.#head++;
    if (this.#head === queue.length) {
      queue.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(delayMs)));
    this.#timer.unref();
  }

  #expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const call = queue[this.#head] as PendingCall;
      if (!call.settled) {
        if (call.deadline > now) break;
        call.settled = true;
        call.onTimeout();
      }
      this.#head++;
    }
    this.#dropSettled();
    // A timeout handler may have started a call, and armed the timer, already.
    const next = this.#queue[this.#head];
    if (next !== undefined && this.#timer === undefined) this.#arm(next.deadline - now);
  }
}
