/** A stored value: text (JSON envelopes) or bytes (msgpack or compressed envelopes). */
export type StoredValue = string | Buffer;

/** One write in a batch. */
export type DriverWrite = { readonly key: string; readonly value: StoredValue; readonly ttlMs: number };

/** Callbacks of a pub/sub subscription. */
export type SubscriptionListener = {
  /** A message arrived on the channel. */
  message(payload: string): void;
  /** The subscription is active (first time, or again after a reconnection: messages may have been missed). */
  up(): void;
  /** The subscriber connection was lost; `up()` follows when it is back. */
  down(reason: string): void;
};

/** An open subscription on its own connection. */
export type Subscription = {
  /** Unsubscribes and closes the subscriber connection. */
  close(): Promise<void>;
};

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
  /**
   * MGET returning bytes, for binary values (msgpack, compression). Optional: a driver without it
   * can only be used with the JSON codec and no compression.
   */
  mgetBuffers?(keys: readonly string[]): Promise<Array<Buffer | null>>;
  /** SET with PX. */
  set(key: string, value: StoredValue, ttlMs: number): Promise<void>;
  /**
   * Several SET PX in one round trip: a pipeline, or MULTI/EXEC when `atomic` (all or nothing).
   * Rejects if any command failed.
   */
  setMany(writes: readonly DriverWrite[], atomic: boolean): Promise<void>;
  /** UNLINK; resolves with the number of keys removed. */
  unlink(keys: readonly string[]): Promise<number>;
  /** INCRBY of each counter in one round trip; resolves with the new values in order. */
  incrBy(keys: readonly string[], increment: number): Promise<number[]>;
  /** SET NX PX: stores `value` only if `key` does not exist; resolves whether it did. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Deletes `key` only while it holds `value` (atomically); resolves whether it did. */
  deleteIfEquals(key: string, value: string): Promise<boolean>;
  publish(channel: string, message: string): Promise<void>;
  /**
   * Subscribes to `channel` on a dedicated connection the driver opens and owns. Returns at once:
   * connecting (and reconnecting) happens in the background and is reported through `listener`;
   * `close()` stops it at any point. Optional: a driver without pub/sub (e.g. a REST client)
   * leaves it out, and features that need it are off.
   */
  subscribe?(channel: string, listener: SubscriptionListener): Subscription;
  /** One SCAN page. */
  scan(cursor: string, match: string, count: number): Promise<{ cursor: string; keys: string[] }>;
  ping(): Promise<void>;
  /** Releases what the driver created. A client supplied by the caller is left open. */
  close(): Promise<void>;
}
