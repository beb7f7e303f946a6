import { describe, expect, it } from 'vitest';
import { createCache } from '../src/index.js';
import { waitForRedis } from './support/cache.js';
import { useRedisSuite } from './support/suite.js';

const suite = useRedisSuite();

async function instance() {
  const cache = suite.track(createCache({ redis: { url: suite.server.url } }));
  await waitForRedis(cache);
  return cache;
}

describe('namespace(name, { memory: false })', () => {
  it('a read on another instance right after a write sees it, every time (no bus delay)', async () => {
    const [a, b] = [await instance(), await instance()];
    const writer = a.namespace('conversations', { memory: false }).forTenant('org-1');
    const reader = b.namespace('conversations', { memory: false }).forTenant('org-1');
    let stale = 0;
    for (let i = 0; i < 200; i++) {
      await writer.set('context', i);
      if ((await reader.getOrSet('context', () => -1)) !== i) stale++;
    }
    expect(stale).toBe(0);
    expect(b.stats().memory.entries).toBe(0);
    expect(b.stats().namespaces.conversations?.hits).toMatchObject({ memory: 0, redis: 200 });
  });

  it('leaves other namespaces in the memory tier, and is ignored without Redis', async () => {
    const cache = await instance();
    await cache.namespace('direct', { memory: false }).set('k', 1);
    await cache.namespace('cached').set('k', 2);
    expect(cache.stats().memory.entries).toBe(1);
    expect(await cache.namespace('cached').get('k')).toBe(2);
    expect(cache.stats().totals.hits.memory).toBe(1);

    const memoryOnly = suite.track(createCache({ redis: false }));
    const scope = memoryOnly.namespace('direct', { memory: false });
    let loads = 0;
    await scope.getOrSet('k', () => ++loads);
    expect(await scope.getOrSet('k', () => ++loads)).toBe(1);
    expect(loads).toBe(1);
  });

  it('with Redis down, runs the loader rather than serving a copy nobody can invalidate', async () => {
    const cache = suite.track(
      createCache({
        redis: {
          url: suite.server.url,
          commandTimeout: 200,
          circuitBreaker: { failureThreshold: 3, openDuration: 300 },
        },
      }),
    );
    await waitForRedis(cache);
    const scope = cache.namespace('direct', { memory: false });
    await scope.set('k', 'before');
    await suite.server.kill();
    let loads = 0;
    expect(await scope.getOrSet('k', () => `loaded-${++loads}`)).toBe('loaded-1');
    expect(await scope.getOrSet('k', () => `loaded-${++loads}`)).toBe('loaded-2');
    expect(cache.stats().memory.entries).toBe(0);
  });
});
