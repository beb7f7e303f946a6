export { Cache, type CacheHealth, type CacheStats } from './cache/cache.js';
export {
  CacheScope,
  type GetOrSetOptions,
  type Loader,
  type NamespaceOptions,
  type SetManyEntry,
  type SetOptions,
} from './cache/cache-scope.js';
export { createCache } from './cache/create-cache.js';
export type { DriverWrite, RedisDriver } from './drivers/driver.js';
export type { NodeRedisClient, RedisConnection } from './drivers/node-redis.js';
export { ErrorCode, isLarderError, LarderError } from './errors.js';
export type { CacheOptions, MemoryOptions, RedisOptions } from './options/cache-options.js';
export { DEFAULTS } from './options/cache-options.js';
export type { Duration } from './options/duration.js';
export type { CircuitState } from './resilience/circuit-breaker.js';
export type { CacheEventName, CacheEvents, FallbackReason } from './telemetry/events.js';
export type { Logger } from './telemetry/logger.js';
export type { NamespaceStats, TenantStats } from './telemetry/stats.js';
export { redactUrl } from './telemetry/redact.js';
