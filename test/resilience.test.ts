import { describe, expect, it } from 'vitest';
import { createCache } from '../src/index.js';
import { waitForRedis } from './support/cache.js';
import { freePort, TestRedisServer } from './support/redis-server.js';
import { useRedisSuite } from './support/suite.js';

// The configured Redis timeout of these caches (see support/cache.ts). Stall bounds below add a
// margin for the event loop of a shared 2-core machine; they check "bounded by the timeout", not speed.
const COMMAND_TIMEOUT_MS = 200;
const SCHEDULING_MARGIN_MS = 150;

const suite = useRedisSuite();
const ready = suite.ready;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stampede protection in one process', () => {
  it('200 concurrent getOrSet on one cold key call the loader once', async () => {
    const cache = await ready();
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(50);
      return { computed: true };
    };
    const results = await Promise.all(Array.from({ length: 200 }, () => cache.getOrSet('hot', loader)));
    expect(calls).toBe(1);
    expect(results.every((r) => r.computed)).toBe(true);
    expect(cache.stats().totals.loader.calls).toBe(1);
  });

  it('a failing load rejects every waiter once and does not stick', async () => {
    const cache = await ready();
    let calls = 0;
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        cache.getOrSet('k', async () => {
          calls++;
          await sleep(10);
          throw new Error('nope');
        }),
      ),
    );
    expect(calls).toBe(1);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(await cache.getOrSet('k', () => 'fine')).toBe('fine');
  });
});

describe('Redis failures never reach a getOrSet caller', () => {
  it('Redis killed mid-run: zero errors, no stall past the timeout, back on Redis within 2 s of restart', async () => {
    const cache = await ready();
    const errors: unknown[] = [];
    let slowest = 0;
    let calls = 0;
    let i = 0;
    let restartedAt = 0;
    let backOnRedisAfter = Number.POSITIVE_INFINITY;
    const runUntil = Date.now() + 4500;
    const loop = (async () => {
      while (Date.now() < runUntil) {
        const key = `k${i++ % 500}`; // 500 keys: mostly misses, so Redis is in play on every call
        const started = performance.now();
        try {
          const value = await cache.getOrSet(key, async () => key.toUpperCase(), { ttl: 150 });
          if (value !== key.toUpperCase()) errors.push(new Error(`wrong value ${value}`));
        } catch (error) {
          errors.push(error);
        }
        slowest = Math.max(slowest, performance.now() - started);
        calls++;
        if (
          restartedAt > 0 &&
          backOnRedisAfter === Number.POSITIVE_INFINITY &&
          (await suite.server.command('DBSIZE')) !== ':0\r\n'
        ) {
          backOnRedisAfter = Date.now() - restartedAt;
        }
        if (calls % 50 === 0) await sleep(1); // let the harness's timers run
      }
    })();
    await sleep(1000);
    await suite.server.kill();
    await sleep(1500);
    await suite.server.restart();
    restartedAt = Date.now();
    await loop;

    console.info(
      `[fault: redis killed] calls=${calls} errors=${errors.length} slowest=${slowest.toFixed(1)}ms back-on-redis=${backOnRedisAfter}ms after restart`,
    );
    expect(errors).toEqual([]);
    expect(calls).toBeGreaterThan(500);
    expect(slowest).toBeLessThan(COMMAND_TIMEOUT_MS + SCHEDULING_MARGIN_MS);
    expect(backOnRedisAfter).toBeLessThanOrEqual(2000);
    const stats = cache.stats();
    expect(stats.totals.fallbacks).toBeGreaterThan(0);
    expect(stats.redis.circuit).toBe('closed');
  });

  it('Redis killed: get, getMany and has keep answering from memory copies that have not expired', async () => {
    const cache = await ready();
    await cache.setMany([
      { key: 'a', value: 1 },
      { key: 'b', value: 2, ttl: 100 },
    ]);
    await suite.server.kill(); // the bus drops too: memory copies must be re-checked, Redis cannot be asked
    await sleep(150);
    for (let i = 0; i < 10; i++) {
      expect(await cache.get('a')).toBe(1);
      expect(await cache.getMany(['a', 'b'])).toEqual([1, undefined]); // b expired
      expect(await cache.has('a')).toBe(true);
    }
    expect(cache.stats().redis.bus).toBe('down');
  });

  it('Redis absent at start: loader values served at once; Redis used once it appears', async () => {
    const port = await freePort();
    const cache = createCache({
      prefix: 'test',
      redis: {
        url: `redis://127.0.0.1:${port}`,
        commandTimeout: COMMAND_TIMEOUT_MS,
        circuitBreaker: { failureThreshold: 3, openDuration: 300 },
      },
    });
    suite.track(cache);
    const started = performance.now();
    expect(await cache.getOrSet('a', () => 'loaded')).toBe('loaded');
    const firstCallMs = performance.now() - started;
    console.info(
      `[fault: redis absent at start] first getOrSet returned the loader's value in ${firstCallMs.toFixed(1)}ms`,
    );
    expect(firstCallMs).toBeLessThan(COMMAND_TIMEOUT_MS + SCHEDULING_MARGIN_MS);
    for (let i = 0; i < 20; i++) expect(await cache.getOrSet(`k${i}`, () => i)).toBe(i);
    expect((await cache.health()).status).toBe('degraded');
    expect(cache.stats().totals.fallbacks).toBeGreaterThan(0);

    const late = await TestRedisServer.start(port);
    try {
      await waitForRedis(cache, 3000);
      await cache.set('after', 1);
      expect(await late.command('EXISTS', 'test:1:d:after')).toBe(':1\r\n');
    } finally {
      await cache.close();
      await late.stop();
    }
  });

  it('Redis paused (SIGSTOP): every call returns within the timeout, then recovers on SIGCONT', async () => {
    const cache = await ready();
    await cache.set('warm', 'in memory');
    suite.server.pause();
    const durations: number[] = [];
    for (let i = 0; i < 30; i++) {
      const started = performance.now();
      expect(await cache.getOrSet(`cold${i}`, () => i)).toBe(i);
      expect(await cache.get('warm')).toBe('in memory');
      durations.push(performance.now() - started);
    }
    const sorted = [...durations].sort((x, y) => x - y);
    console.info(
      `[fault: redis paused] calls=${durations.length} slowest=${(sorted.at(-1) ?? 0).toFixed(1)}ms median=${(sorted[sorted.length >> 1] ?? 0).toFixed(2)}ms timeout=${COMMAND_TIMEOUT_MS}ms`,
    );
    expect(Math.max(...durations)).toBeLessThan(COMMAND_TIMEOUT_MS + SCHEDULING_MARGIN_MS);
    expect(cache.stats().redis.circuit).not.toBe('closed');
    expect(cache.stats().totals.timeouts).toBeGreaterThan(0);
    suite.server.resume();
    await waitForRedis(cache, 3000);
    await cache.getOrSet('x', () => 1); // the probe closes the circuit
    expect(cache.stats().redis.circuit).toBe('closed');
  });

  it('pending commands are bounded while Redis is slow', async () => {
    const cache = suite.cache({
      redis: {
        url: suite.server.url,
        maxPendingCommands: 10,
        commandTimeout: 2000,
        circuitBreaker: { failureThreshold: 1000 },
      },
    });
    await waitForRedis(cache);
    suite.server.pause();
    const calls = Array.from({ length: 100 }, (_, i) => cache.getOrSet(`p${i}`, () => i));
    await sleep(50);
    expect(cache.stats().redis.pendingCommands).toBeLessThanOrEqual(10);
    suite.server.resume();
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});

describe('bad data and switches', () => {
  it('corrupt or foreign bytes under a Larder key are a counted miss, then overwritten', async () => {
    const cache = await ready();
    await suite.server.command('SET', 'test:1:d:broken', '{not json');
    await suite.server.command('SET', 'test:1:d:foreign', '"just a string"');
    const events: string[] = [];
    cache.on('decode:error', (e) => events.push(e.key));
    expect(await cache.get('broken')).toBeUndefined();
    expect(await cache.getOrSet('foreign', () => 'repaired')).toBe('repaired');
    expect(cache.stats().totals.decodeErrors).toBe(2);
    expect(events).toEqual(['test:1:d:broken', 'test:1:d:foreign']);
    expect(await cache.getMany(['broken', 'foreign'])).toEqual([undefined, 'repaired']);
    expect(cache.stats().totals.decodeErrors).toBe(3);
    const fresh = await ready();
    expect(await fresh.get('foreign')).toBe('repaired');
  });

  it('the kill switch (enabled: false) never connects to Redis', async () => {
    const before = await suite.server.command('INFO', 'stats');
    const cache = createCache({ prefix: 'test', redis: { url: suite.server.url, enabled: false } });
    suite.track(cache);
    expect(await cache.getOrSet('k', () => 1)).toBe(1);
    expect(await cache.get('k')).toBe(1);
    const health = await cache.health();
    expect(health.status).toBe('degraded');
    expect(health.redis.enabled).toBe(false);
    const after = await suite.server.command('INFO', 'stats');
    expect(connections(after)).toBe(connections(before) + 1); // only this INFO's own connection
  });

  it('health() reports ping latency and redacts credentials', async () => {
    const cache = createCache({
      prefix: 'test',
      redis: { url: `redis://user:s3cret@127.0.0.1:${suite.server.port}` },
    });
    suite.track(cache);
    const health = await cache.health();
    expect(JSON.stringify(health)).not.toContain('s3cret');
    expect(health.redis.endpoint).toContain('***');
  });
});

function connections(info: string): number {
  return Number(/total_connections_received:(\d+)/.exec(info)?.[1]);
}
