import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Cache, CacheOptions } from '../../src/index.js';
import { cacheOn, waitForRedis } from './cache.js';
import { TestRedisServer } from './redis-server.js';

/** What {@link useRedisSuite} hands a test file. */
export type RedisSuite = {
  /** This file's private redis-server. */
  readonly server: TestRedisServer;
  /** A cache on the server, closed after the test. */
  cache(overrides?: CacheOptions): Cache;
  /** {@link cache}, resolved once it is connected and its circuit closed. */
  ready(overrides?: CacheOptions): Promise<Cache>;
  /** Closes `cache` after the test. */
  track(cache: Cache): Cache;
};

/**
 * Starts a private redis-server for the calling test file; after each test closes the caches the
 * test opened, brings the server back (restarted if killed, resumed if paused) and flushes it.
 */
export function useRedisSuite(): RedisSuite {
  let server: TestRedisServer | undefined;
  const opened: Cache[] = [];
  beforeAll(async () => {
    server = await TestRedisServer.start();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
    if (server === undefined) return;
    if (!server.running) await server.restart();
    server.resume();
    await server.command('FLUSHALL');
  });
  afterAll(async () => {
    await server?.stop();
  });
  const suite: RedisSuite = {
    get server() {
      if (server === undefined) throw new Error('the suite server starts in beforeAll');
      return server;
    },
    cache: (overrides) => cacheOn(suite.server, overrides, opened),
    async ready(overrides) {
      const cache = suite.cache(overrides);
      await waitForRedis(cache);
      return cache;
    },
    track(cache) {
      opened.push(cache);
      return cache;
    },
  };
  return suite;
}
