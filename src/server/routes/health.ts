import type { FastifyPluginAsync } from 'fastify';
import type { CacheHealth } from '../../index.js';
import type { RedisMode, ServerConfig } from '../config.js';

/** Options of {@link healthRoutes}. */
export type HealthRoutesOptions = { config: ServerConfig };

/**
 * `GET /api/health`: the service's state. `degraded` still answers 200: without Redis the service
 * serves from memory, so a load balancer must not take it out of rotation.
 *
 * `GET /api/health/redis`: Redis alone. 503 when it is configured but does not answer a PING.
 */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { config }) => {
  app.get('/api/health', async () => {
    const health = await app.cache.health();
    const reason = reasonFor(health, config);
    return {
      status: health.status,
      ...(reason === undefined ? {} : { reason }),
      checks: {
        memory: health.memory,
        redis: { mode: modeOf(health, config), ...health.redis },
      },
    };
  });

  app.get('/api/health/redis', async (_request, reply) => {
    const health = await app.cache.health();
    const redis = health.redis;
    if (!redis.enabled) {
      return { enabled: false, mode: modeOf(health, config), reason: reasonFor(health, config) };
    }
    const reachable = redis.pingMs !== undefined;
    reply.code(reachable ? 200 : 503);
    return {
      enabled: true,
      reachable,
      endpoint: redis.endpoint,
      driver: redis.driver,
      ready: redis.ready,
      circuit: redis.circuit,
      ...(redis.pingMs === undefined ? {} : { pingMs: redis.pingMs }),
      ...(redis.error === undefined ? {} : { error: redis.error }),
    };
  });
};

/** The config's mode, unless the cache in use says otherwise (a cache passed in by the caller). */
function modeOf(health: CacheHealth, config: ServerConfig): RedisMode {
  if (health.redis.enabled) return 'configured';
  return config.redisMode === 'configured' ? 'disabled' : config.redisMode;
}

/** Larder's reason says "not configured or disabled"; the config knows which, and why. */
function reasonFor(health: CacheHealth, config: ServerConfig): string | undefined {
  if (!health.redis.enabled && config.redisMode !== 'configured') return config.redisReason;
  return health.reason;
}
