import { describe, expect, it } from 'vitest';
import { createCache } from '../src/index.js';
import { commandCalls } from './support/redis-replies.js';
import { useRedisSuite } from './support/suite.js';

const suite = useRedisSuite();

/** Data commands the server has answered so far (pings and INFO excluded). */
async function dataCommands(): Promise<number> {
  const info = await suite.server.command('INFO', 'commandstats');
  return ['get', 'mget', 'set', 'eval', 'evalsha', 'incrby', 'del', 'unlink', 'publish', 'multi', 'exec']
    .map((c) => commandCalls(info, c))
    .reduce((a, b) => a + b, 0);
}

describe('cache.setRedisEnabled (run-time kill switch)', () => {
  it('switched off: no Redis command is sent, callers get memory and loader values, health says why', async () => {
    const cache = await suite.ready();
    await cache.set('before', 'in-redis');
    const switches: boolean[] = [];
    cache.on('redis:switch', ({ enabled }) => switches.push(enabled));
    const callsBefore = await dataCommands();

    cache.setRedisEnabled(false);
    expect(cache.stats().redis.switchedOff).toBe(true);
    expect(await cache.getOrSet('fresh', () => 'from-loader')).toBe('from-loader');
    expect(await cache.get('fresh')).toBe('from-loader'); // memory tier
    await cache.set('during', 'kept');
    await cache.delete('before');

    const callsAfter = await dataCommands();
    expect(callsAfter - callsBefore).toBe(0);
    expect(cache.stats().totals.fallbacks).toBeGreaterThan(0);
    const health = await cache.health();
    expect(health.status).toBe('degraded');
    expect(health.reason).toMatch(/switched off/);
    expect(health.redis.switchedOff).toBe(true);
    expect(switches).toEqual([false]);

    // Switching on again replays what was written and deleted meanwhile.
    cache.setRedisEnabled(true);
    expect(cache.stats().redis.switchedOff).toBe(false);
    const other = await suite.ready();
    await expect.poll(() => other.get('during'), { timeout: 5000 }).toBe('kept');
    await expect.poll(() => other.get('before'), { timeout: 5000 }).toBeUndefined();
    expect((await cache.health()).status).toBe('ok');
    expect(switches).toEqual([false, true]);
  });

  it('is idempotent and a no-op without Redis', async () => {
    const cache = await suite.ready();
    const switches: boolean[] = [];
    cache.on('redis:switch', ({ enabled }) => switches.push(enabled));
    cache.setRedisEnabled(true);
    cache.setRedisEnabled(false);
    cache.setRedisEnabled(false);
    expect(switches).toEqual([false]);

    const memoryOnly = suite.track(createCache({ redis: false }));
    memoryOnly.setRedisEnabled(false);
    expect(memoryOnly.stats().redis).toMatchObject({ enabled: false, switchedOff: false });
  });
});
