/** One write in a batch. */
export type DriverWrite = { readonly key: string; readonly value: string; readonly ttlMs: number };

/**
 * The small surface Larder needs from a Redis client. Every Larder operation goes through it, and
 * through the gateway that adds timeouts, the circuit breaker and metrics (`resilience/redis-gateway`).
 * A driver reports failures by rejecting; it never retries, queues while offline, or logs.
 */
export interface RedisDriver {
  /** Driver name for health output, e.g. `node-redis`. */
  readonly name: string;
  /** True when connected and able to send commands now. */
  readonly isReady: boolean;
  /** Where it connects, credentials redacted. */
  readonly endpoint: string;
  /** One MGET. Callers keep keys of one slot when running against a cluster. */
  mget(keys: readonly string[]): Promise<Array<string | null>>;
  /** SET with PX. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /**
   * Several SET PX in one round trip: a pipeline, or MULTI/EXEC when `atomic` (all or nothing).
   * Rejects if any command failed.
   */
  setMany(writes: readonly DriverWrite[], atomic: boolean): Promise<void>;
  /** UNLINK; resolves with the number of keys removed. */
  unlink(keys: readonly string[]): Promise<number>;
  /** INCRBY of each counter in one round trip; resolves with the new values in order. */
  incrBy(keys: readonly string[], increment: number): Promise<number[]>;
  /** One SCAN page. */
  scan(cursor: string, match: string, count: number): Promise<{ cursor: string; keys: string[] }>;
  ping(): Promise<void>;
  /** Releases what the driver created. A client supplied by the caller is left open. */
  close(): Promise<void>;
}
