import { type Cache, type CacheOptions, createCache } from '../../src/index.js';
import type { TestRedisServer } from './redis-server.js';

/** A cache on a test server with short, test-friendly timeouts; closed by the returned list. */
export function cacheOn(server: TestRedisServer, overrides: CacheOptions = {}, opened?: Cache[]): Cache {
  const cache = createCache({
    prefix: 'test',
    ...overrides,
    redis: {
      url: server.url,
      commandTimeout: 200,
      circuitBreaker: { failureThreshold: 3, openDuration: 300 },
      ...(overrides.redis === false ? {} : overrides.redis),
    },
  });
  opened?.push(cache);
  return cache;
}

/** Resolves once `cache.health()` reports Redis reachable and the circuit closed. */
export async function waitForRedis(cache: Cache, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const health = await cache.health();
    if (health.status === 'ok') return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`Redis not ready within ${timeoutMs} ms`);
}
