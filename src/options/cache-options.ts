import type { RedisDriver } from '../drivers/driver.js';
import type { NodeRedisClient, RedisConnection } from '../drivers/node-redis.js';
import type { Logger } from '../telemetry/logger.js';
import type { Duration } from './duration.js';

/** Options of {@link createCache}. Every field is optional; defaults are listed with each. */
export type CacheOptions = {
  /**
   * First segment of every Redis key. Letters, digits, `.`, `_` and `-`.
   * @default 'larder'
   */
  prefix?: string;
  /**
   * Optional second key segment, so that environments sharing a Redis never see each other's data.
   * @example 'production'
   */
  environment?: string;
  /**
   * TTL of entries written without one.
   * @default '5m'
   */
  defaultTtl?: Duration;
  /**
   * TTL of cached "not found" results (a loader returning `null` or `undefined`); `0` disables it.
   * @default '30s'
   */
  negativeTtl?: Duration;
  /**
   * Longest accepted key, in UTF-16 units, before escaping.
   * @default 1024
   */
  maxKeyLength?: number;
  /**
   * Largest accepted serialized value, in bytes.
   * @default 4194304 (4 MiB)
   */
  maxValueBytes?: number;
  /**
   * How long past its TTL an entry may still be served when its loader fails or times out
   * (stale-if-error). Redis keeps entries for TTL + grace. `0` turns it off.
   * @default 0
   */
  grace?: Duration;
  /**
   * After a failed load was answered with a stale value, how long that value is served before the
   * loader is tried again.
   * @default '5s'
   */
  graceBackoff?: Duration;
  /** Loader timeouts of `getOrSet`. */
  loaderTimeout?: {
    /**
     * With a stale value at hand, serve it after this long and let the loader finish in the
     * background (its result then updates the cache).
     * @default none
     */
    soft?: Duration;
    /**
     * Give up on a loader after this long: serve stale if there is a value within grace, else
     * reject with `E_LOADER_TIMEOUT`.
     * @default none
     */
    hard?: Duration;
  };
  /**
   * Refresh-ahead: once an entry has lived this fraction of its TTL (0 < f < 1), the first
   * `getOrSet` that reads it starts one background reload while callers keep the current value.
   * @default off
   * @example 0.8
   */
  refreshAhead?: number;
  /**
   * Shortens each TTL by a random fraction up to this (0 ≤ f < 1) so that entries written
   * together do not all expire together.
   * @default 0
   */
  ttlJitter?: number;
  /**
   * How entries are serialized in Redis. `'msgpack'` (@msgpack/msgpack) is more compact and also keeps
   * `Date`, `Map`, `Set` and BigInt values; JSON is readable in `redis-cli`. Either can read what the
   * other wrote, so the setting can change during a rolling upgrade.
   * @default 'json'
   */
  codec?: 'json' | 'msgpack';
  /**
   * Compress serialized entries at or above `threshold` bytes (flagged in the stored value).
   * `true` means `{ threshold: 1024, algorithm: 'brotli' }`.
   * @default false
   */
  compression?: boolean | { threshold?: number; algorithm?: 'gzip' | 'brotli' };
  /** The in-process tier, or `false` to turn it off. */
  memory?: false | MemoryOptions;
  /** The Redis tier, or `false` (or omitted) for a memory-only cache. */
  redis?: false | RedisOptions;
  /**
   * Receives Larder's logs; pino-compatible.
   * @default a silent logger
   */
  logger?: Logger;
  /**
   * Distinct namespaces tracked in stats; later ones are counted under `(other)`.
   * @default 100
   */
  maxNamespaces?: number;
  /**
   * Distinct tenant scopes counted separately in `stats().tenants` (hits, misses, loader calls,
   * writes, fallbacks; latency stays per namespace). `0` turns per-tenant stats off; tenants past
   * the bound are counted in their namespace only. Never exported to Prometheus (unbounded labels).
   * @default 0
   */
  maxTenants?: number;
};

/** Options of the memory tier (an LRU from lru-cache). */
export type MemoryOptions = {
  /**
   * Most entries kept.
   * @default 10000
   */
  maxEntries?: number;
  /**
   * Most bytes kept, counting each entry's serialized size and key.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number;
  /**
   * Longest time an entry stays in memory when a Redis tier is configured, so that another
   * instance's writes are seen within this bound. Memory-only caches keep entries for their TTL.
   * @default '1m'
   */
  maxTtl?: Duration;
};

/**
 * Options of the Redis tier. Give one of `url`/connection fields (Larder creates, owns and closes
 * the client), `client` (your node-redis client: Larder never closes it) or `driver`.
 */
export type RedisOptions = RedisConnection & {
  /**
   * Kill switch: `false` runs memory-only without touching Redis.
   * @default true
   */
  enabled?: boolean;
  /** An existing node-redis client, owned by the caller. */
  client?: NodeRedisClient;
  /** Any {@link RedisDriver}. Larder calls its `close()` on `cache.close()`. */
  driver?: RedisDriver;
  /**
   * Larder's timeout for one Redis round trip; past it the call falls back.
   * @default 300
   */
  commandTimeout?: Duration;
  /**
   * Timeout of one connection attempt (when Larder creates the client).
   * @default 2000
   */
  connectTimeout?: Duration;
  /**
   * Most commands in flight; further calls fall back at once instead of queueing.
   * @default 1000
   */
  maxPendingCommands?: number;
  /** When to stop calling Redis for a while. */
  circuitBreaker?: {
    /**
     * Consecutive failures that open the circuit.
     * @default 5
     */
    failureThreshold?: number;
    /**
     * How long the circuit stays open before one probe call is allowed.
     * @default 1000
     */
    openDuration?: Duration;
  };
  /**
   * Keys per SCAN page when `clear()` reclaims a scope's entries.
   * @default 500
   */
  reclaimPageSize?: number;
  /**
   * With a value at hand in memory (fresh, or stale within grace), serve it when a Redis read
   * takes longer than this, and let the read finish in the background. `commandTimeout` is the
   * hard limit.
   * @default none
   */
  softTimeout?: Duration;
  /**
   * L1 coherence: a pub/sub channel on its own connection tells other instances to drop their
   * memory copies on writes, deletes and invalidations. `false` turns it off (then other
   * instances' writes are seen within `memory.maxTtl`).
   */
  bus?: false | BusOptions;
  /**
   * Stampede protection across processes: on a miss, `getOrSet` takes a short Redis lock per key;
   * other processes wait for the value instead of loading it too. `false` (the default) turns it off.
   */
  distributedLock?: false | DistributedLockOptions;
  /**
   * Redis writes, deletes and invalidations that failed while Redis was unavailable are kept
   * (the latest per key, at most this many) and replayed when it answers again. `0` turns it off.
   * @default 10000
   */
  maxPendingWrites?: number;
};

/** Options of the L1 coherence bus. */
export type BusOptions = {
  /**
   * While the bus is disconnected (or not yet connected), memory entries are trusted at most this
   * long; the memory tier is also flushed when the bus drops and when it comes back.
   * @default '1s'
   */
  unhealthyMemoryTtl?: Duration;
};

/** Options of the distributed lock. */
export type DistributedLockOptions = {
  /**
   * Lifetime of a lock: if its holder dies, others load after at most this long. Keep it above
   * your slowest loader.
   * @default '5s'
   */
  ttl?: Duration;
  /**
   * How often a waiting process looks for the value (it is also woken by the bus).
   * @default 25
   */
  pollInterval?: Duration;
};

/** Options after validation and defaulting, durations in milliseconds. */
export type ResolvedOptions = {
  prefix: string;
  defaultTtlMs: number;
  negativeTtlMs: number;
  graceMs: number;
  graceBackoffMs: number;
  loaderSoftTimeoutMs: number | undefined;
  loaderHardTimeoutMs: number | undefined;
  refreshAhead: number | undefined;
  ttlJitter: number;
  codec: 'json' | 'msgpack';
  compression: false | { thresholdBytes: number; algorithm: 'gzip' | 'brotli' };
  maxKeyLength: number;
  maxValueBytes: number;
  memory: false | { maxEntries: number; maxBytes: number; maxTtlMs: number };
  redis:
    | false
    | {
        source:
          | { kind: 'connection'; connection: RedisConnection }
          | { kind: 'client'; client: NodeRedisClient }
          | { kind: 'driver'; driver: RedisDriver };
        commandTimeoutMs: number;
        connectTimeoutMs: number;
        maxPendingCommands: number;
        failureThreshold: number;
        openDurationMs: number;
        reclaimPageSize: number;
        softTimeoutMs: number | undefined;
        bus: false | { unhealthyMemoryTtlMs: number };
        lock: false | { ttlMs: number; pollIntervalMs: number };
        maxPendingWrites: number;
      };
  logger: Logger;
  maxNamespaces: number;
  maxTenants: number;
};

/** The defaults, in one place. */
export const DEFAULTS = {
  prefix: 'larder',
  defaultTtl: '5m',
  negativeTtl: '30s',
  maxKeyLength: 1024,
  maxValueBytes: 4 * 1024 * 1024,
  maxNamespaces: 100,
  maxTenants: 0,
  grace: 0,
  graceBackoff: '5s',
  ttlJitter: 0,
  codec: 'json',
  compression: { threshold: 1024, algorithm: 'brotli' },
  memory: { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, maxTtl: '1m' },
  redis: {
    commandTimeout: 300,
    connectTimeout: 2000,
    maxPendingCommands: 1000,
    failureThreshold: 5,
    openDuration: 1000,
    reclaimPageSize: 500,
    maxPendingWrites: 10_000,
    bus: { unhealthyMemoryTtl: '1s' },
    lock: { ttl: '5s', pollInterval: 25 },
  },
} as const;
