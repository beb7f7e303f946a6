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
};

/** Options after validation and defaulting, durations in milliseconds. */
export type ResolvedOptions = {
  prefix: string;
  defaultTtlMs: number;
  negativeTtlMs: number;
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
      };
  logger: Logger;
  maxNamespaces: number;
};

/** The defaults, in one place. */
export const DEFAULTS = {
  prefix: 'larder',
  defaultTtl: '5m',
  negativeTtl: '30s',
  maxKeyLength: 1024,
  maxValueBytes: 4 * 1024 * 1024,
  maxNamespaces: 100,
  memory: { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, maxTtl: '1m' },
  redis: {
    commandTimeout: 300,
    connectTimeout: 2000,
    maxPendingCommands: 1000,
    failureThreshold: 5,
    openDuration: 1000,
    reclaimPageSize: 500,
  },
} as const;
