import { type Cache, createCache } from '../index.js';
import type { CliContext } from './context.js';

const CONNECT_WAIT_MS = 3000;

/**
 * Opens a Larder cache on the service's Redis and key space, checks Redis answers, runs `fn`, and
 * fails if any of its Redis work fell back (a CLI process exits: nothing may be left for replay).
 * The memory tier stays on so that the cache joins the invalidation bus: running services drop
 * what the command invalidates from their memory tiers.
 */
export async function withCache<T>(ctx: CliContext, fn: (cache: Cache) => Promise<T>): Promise<T> {
  const cache = createCache({
    redis: { url: ctx.redisUrl, commandTimeout: '5s' },
    prefix: ctx.prefix,
    ...(ctx.environment === undefined ? {} : { environment: ctx.environment }),
  });
  try {
    // The client connects in the background: wait for it, bounded.
    const deadline = Date.now() + CONNECT_WAIT_MS;
    let health = await cache.health();
    while (health.status !== 'ok' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      health = await cache.health();
    }
    if (health.status !== 'ok') {
      throw new Error(`cannot use Redis at ${ctx.redisEndpoint}: ${health.reason ?? 'unreachable'}`);
    }
    const result = await fn(cache);
    const { totals, redis } = cache.stats();
    if (totals.fallbacks > 0 || redis.pendingWrites > 0) {
      throw new Error(
        `Redis at ${ctx.redisEndpoint} failed during the command (${totals.fallbacks} call(s) fell back): run it again`,
      );
    }
    return result;
  } finally {
    await cache.close();
  }
}
