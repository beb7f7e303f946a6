import type { RedisDriver } from '../drivers/driver.js';
import { ErrorCode, LarderError } from '../errors.js';
import type { CacheEventEmitter, FallbackReason } from '../telemetry/events.js';
import type { Logger } from '../telemetry/logger.js';
import { redactText } from '../telemetry/redact.js';
import type { NamespaceCounters } from '../telemetry/stats.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { Deadlines } from './deadlines.js';

/** Settings of the gateway. */
export type RedisGatewayOptions = {
  commandTimeoutMs: number;
  maxPendingCommands: number;
  breaker: CircuitBreaker;
  events: CacheEventEmitter;
  logger: Logger;
  /** Called after every successful call (the cache replays failed version bumps from here). */
  onSuccess?: () => void;
};

/** Builds the error a gateway call rejects with; `details.reason` says why Redis was not used. */
function unavailable(reason: FallbackReason, operation: string, cause?: unknown): LarderError {
  return new LarderError(
    ErrorCode.RedisUnavailable,
    `Redis ${operation} failed: ${reason}`,
    { reason, operation },
    cause,
  );
}

// While the circuit is open every call is refused: one shared error spares a stack trace per call.
const CIRCUIT_OPEN = Object.freeze(unavailable('circuit-open', 'call'));
// The same while Redis is switched off at run time (`cache.setRedisEnabled(false)`).
const SWITCHED_OFF = Object.freeze(unavailable('disabled', 'call'));

/** Reads the fallback reason off an error thrown by {@link RedisGateway.run}. */
export function fallbackReason(error: unknown): FallbackReason | undefined {
  return error instanceof LarderError && error.code === ErrorCode.RedisUnavailable
    ? (error.details.reason as FallbackReason)
    : undefined;
}

/**
 * The one door to Redis. Each call passes the circuit breaker, is bounded by Larder's per-command
 * timeout and by a cap on pending commands (no unbounded queue while Redis is slow), and is timed
 * and counted. Failures are logged and emitted here, once, and surface as a `LarderError` with code
 * `E_REDIS_UNAVAILABLE` for the caller to fall back on.
 */
export class RedisGateway {
  readonly driver: RedisDriver;
  readonly breaker: CircuitBreaker;
  readonly #options: RedisGatewayOptions;
  readonly #deadlines: Deadlines;
  #pending = 0;
  #switchedOff = false;

  constructor(driver: RedisDriver, options: RedisGatewayOptions) {
    this.driver = driver;
    this.breaker = options.breaker;
    this.#options = options;
    this.#deadlines = new Deadlines(options.commandTimeoutMs);
  }

  /** Commands sent and not yet answered (including those whose caller already timed out). */
  get pending(): number {
    return this.#pending;
  }

  /** Whether calls are refused because Redis was switched off at run time. */
  get switchedOff(): boolean {
    return this.#switchedOff;
  }

  /**
   * Switches Redis off (every call is refused at once with reason `disabled`, as with an open
   * circuit, so callers fall back the same way) or back on.
   */
  setSwitchedOff(off: boolean): void {
    this.#switchedOff = off;
  }

  /** Sends `command` to Redis under the gateway's protections. */
  run<T>(
    operation: string,
    counters: NamespaceCounters,
    command: (driver: RedisDriver) => Promise<T>,
  ): Promise<T> {
    if (this.#switchedOff) return Promise.reject(SWITCHED_OFF);
    if (this.#pending >= this.#options.maxPendingCommands) {
      return Promise.reject(this.#fail(operation, counters, 'overloaded', undefined));
    }
    if (!this.breaker.tryAcquire()) return Promise.reject(CIRCUIT_OPEN);

    const startedAt = performance.now();
    this.#pending += 1;
    let sent: Promise<T>;
    try {
      sent = command(this.driver);
    } catch (error) {
      sent = Promise.reject(error);
    }
    return new Promise<T>((resolve, reject) => {
      const call = this.#deadlines.add(startedAt, () =>
        reject(this.#fail(operation, counters, 'timeout', undefined)),
      );
      sent.then(
        (value) => {
          this.#pending -= 1;
          // Answered after its caller timed out: counted as a failure already.
          if (!this.#deadlines.settle(call)) return;
          this.breaker.onSuccess();
          counters.redisLatency.recordSince(startedAt);
          resolve(value);
          this.#options.onSuccess?.();
        },
        (error: unknown) => {
          this.#pending -= 1;
          if (!this.#deadlines.settle(call)) return;
          if (error instanceof LarderError) {
            // The driver refused the request itself (e.g. a cross-slot atomic batch): the
            // caller's mistake, not Redis failing. Passed on as is; the circuit ignores it.
            this.breaker.release();
            reject(error);
            return;
          }
          reject(this.#fail(operation, counters, 'error', error));
        },
      );
    });
  }

  #fail(operation: string, counters: NamespaceCounters, reason: FallbackReason, cause: unknown): LarderError {
    if (reason === 'timeout') counters.timeouts += 1;
    else counters.redisErrors += 1;
    this.breaker.onFailure();
    const message = redactText(cause instanceof Error ? cause.message : reason);
    this.#options.logger.warn(
      { operation, namespace: counters.name, reason, err: message },
      'larder: redis call failed',
    );
    this.#options.events.emit('redis:error', { operation, namespace: counters.name, message, error: cause });
    return unavailable(reason, operation, cause);
  }
}
