import type { RedisDriver } from '../drivers/driver.js';
import { createNodeRedisDriver, nodeRedisDriverFromClient } from '../drivers/node-redis.js';
import { EnvelopeCodec } from '../codec/codec.js';
import { ErrorCode, LarderError } from '../errors.js';
import { Scope } from '../keys/scope.js';
import type { CacheOptions, ResolvedOptions } from '../options/cache-options.js';
import { resolveOptions } from '../options/resolve-options.js';
import { CircuitBreaker } from '../resilience/circuit-breaker.js';
import { RedisGateway } from '../resilience/redis-gateway.js';
import { CacheEventEmitter } from '../telemetry/events.js';
import { StatsRegistry } from '../telemetry/stats.js';
import { MemoryTier } from '../tiers/memory-tier.js';
import { Cache } from './cache.js';
import { CacheCore } from './cache-core.js';
import { VersionRegistry } from './versions.js';

// Version cells kept in memory (one per scope and per tag in use); evicted ones are re-read.
const MAX_VERSION_CELLS = 100_000;

/**
 * Creates a cache. Synchronous: with Redis configured, the connection is made in the background
 * and the cache serves from memory (and loaders) until Redis answers.
 * @throws LarderError `E_INVALID_OPTIONS` / `E_INVALID_TTL` naming the bad option.
 * @example
 * const cache = createCache({ redis: { url: process.env.REDIS_URL } });
 * const user = await cache.forTenant(orgId).namespace('users').getOrSet(id, () => db.user(id), { ttl: '5m' });
 */
export function createCache(options: CacheOptions = {}): Cache {
  const resolved = resolveOptions(options);
  const { logger } = resolved;
  const events = new CacheEventEmitter((event, error) =>
    logger.error({ event, err: String(error) }, 'larder: an event listener threw; the cache call went on'),
  );
  const memory =
    resolved.memory === false
      ? undefined
      : new MemoryTier(resolved.memory.maxEntries, resolved.memory.maxBytes);
  const versions = new VersionRegistry(MAX_VERSION_CELLS);
  const stats = new StatsRegistry(resolved.maxNamespaces, resolved.maxTenants);
  const root = Scope.root(resolved.prefix);

  // The gateway reports successes to the core (to replay failed bumps); calls start after both exist.
  const gateway = createGateway(resolved, events, () => core.onRedisSuccess());
  const codec = new EnvelopeCodec({
    codec: resolved.codec,
    compression: resolved.compression,
    maxValueBytes: resolved.maxValueBytes,
  });
  if (codec.binary && gateway !== undefined && gateway.driver.mgetBuffers === undefined) {
    throw new LarderError(
      ErrorCode.InvalidOptions,
      `The ${gateway.driver.name} driver cannot store binary values: use codec 'json' without compression with it`,
      { option: 'codec' },
    );
  }
  const core = new CacheCore(resolved, memory, gateway, versions, stats, events, codec, `${root.base}:bus`);
  const driverOwned = resolved.redis !== false && resolved.redis.source.kind !== 'client';
  if (gateway === undefined) logger.info({}, 'larder: Redis tier off, memory only');
  else
    logger.info({ driver: gateway.driver.name, endpoint: gateway.driver.endpoint }, 'larder: cache created');
  return new Cache(core, root, driverOwned);
}

function createGateway(
  resolved: ResolvedOptions,
  events: CacheEventEmitter,
  onSuccess: () => void,
): RedisGateway | undefined {
  const redis = resolved.redis;
  if (redis === false) return undefined;
  const { logger } = resolved;
  let driver: RedisDriver;
  switch (redis.source.kind) {
    case 'driver':
      driver = redis.source.driver;
      break;
    case 'client':
      driver = nodeRedisDriverFromClient(redis.source.client);
      break;
    case 'connection':
      driver = createNodeRedisDriver(redis.source.connection, {
        connectTimeoutMs: redis.connectTimeoutMs,
        onError: (message) => logger.debug({ err: message }, 'larder: redis connection error'),
      });
      break;
  }
  const breaker = new CircuitBreaker({
    failureThreshold: redis.failureThreshold,
    openDurationMs: redis.openDurationMs,
    onTransition: (from, to, failures) => {
      const level = to === 'open' ? 'warn' : 'info';
      logger[level]({ from, to, failures }, `larder: redis circuit ${to}`);
      events.emit('circuit', { from, to, failures });
    },
  });
  return new RedisGateway(driver, {
    commandTimeoutMs: redis.commandTimeoutMs,
    maxPendingCommands: redis.maxPendingCommands,
    breaker,
    events,
    logger,
    onSuccess,
  });
}
