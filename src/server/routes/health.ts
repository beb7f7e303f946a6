import type { FastifyPluginAsync } from 'fastify';
import type { CacheHealth } from '../../index.js';
import type { RedisMode, ServerConfig } from '../config.js';
import type { Database, DatabaseEngine } from '../db/database.js';

/** Longest wait for the database to answer a health check. */
const DATABASE_CHECK_TIMEOUT_MS = 1000;

/** The `database` entry of `GET /api/health`. */
export type DatabaseCheck = {
  engine: DatabaseEngine;
  /** `memory`, PGlite's folder, or the Postgres URL with credentials redacted. */
  location: string;
  reachable: boolean;
  /** Round trip of `SELECT 1`, in milliseconds, when it answered. */
  latencyMs?: number;
  error?: string;
};

/** Options of {@link healthRoutes}. */
export type HealthRoutesOptions = { config: ServerConfig };

/**
 * `GET /api/health`: the service's state, per dependency (memory, Redis, database). `degraded`
 * still answers 200: without Redis the service serves from memory, so a load balancer must not take
 * it out of rotation.
 *
 * `GET /api/health/redis`: Redis alone. 503 when it is configured but does not answer a PING.
 */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { config }) => {
  app.get('/api/health', async () => {
    const [health, database] = await Promise.all([app.cache.health(), checkDatabase(app.db)]);
    // Jobs: inline mode (no Redis) says so in the reason; queues in an unreachable Redis degrade.
    const jobs = app.jobs.health();
    const jobsOk = jobs.mode === 'inline' || jobs.ready;
    const reasons = [
      reasonFor(health, config),
      database.reachable ? undefined : `Database unreachable: ${database.error}`,
      jobs.reason,
    ].filter((r) => r !== undefined);
    return {
      status: health.status === 'ok' && database.reachable && jobsOk ? 'ok' : 'degraded',
      ...(reasons.length === 0 ? {} : { reason: reasons.join('; ') }),
      checks: {
        memory: health.memory,
        redis: { mode: modeOf(health, config), ...health.redis },
        database,
        jobs,
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
  if (health.redis.enabled) return config.redisMode === 'private' ? 'private' : 'configured';
  return config.redisMode === 'configured' || config.redisMode === 'private' ? 'disabled' : config.redisMode;
}

/** Larder's reason says "not configured or disabled"; the config knows which, and why. */
function reasonFor(health: CacheHealth, config: ServerConfig): string | undefined {
  if (!health.redis.enabled && config.redis === undefined) return config.redisReason;
  return health.reason;
}

/** Runs `SELECT 1`, bounded by {@link DATABASE_CHECK_TIMEOUT_MS}. Never throws. */
async function checkDatabase(db: Database): Promise<DatabaseCheck> {
  const base = { engine: db.engine, location: db.location };
  const startedAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      db.query('SELECT 1'),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${DATABASE_CHECK_TIMEOUT_MS} ms`)),
          DATABASE_CHECK_TIMEOUT_MS,
        );
      }),
    ]);
    return { ...base, reachable: true, latencyMs: Math.round((performance.now() - startedAt) * 1000) / 1000 };
  } catch (error) {
    // Driver messages do not carry the connection string, but mask any URL credentials regardless.
    const message = String((error as Error)?.message ?? error).replace(
      /([a-z][a-z0-9+.-]*:\/\/)[^@\s/]*@/gi,
      '$1***@',
    );
    return { ...base, reachable: false, error: message };
  } finally {
    clearTimeout(timer);
  }
}
