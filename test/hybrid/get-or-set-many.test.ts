import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.js';
import { commandCalls } from '../support/redis-replies.js';
import { useRedisSuite } from '../support/suite.js';

const suite = useRedisSuite();

describe('getOrSetMany', () => {
  it('memory, then one MGET, then one batch loader call and one pipelined write', async () => {
    const writer = await suite.ready();
    await writer.setMany([
      { key: 'k1', value: 'redis-1' },
      { key: 'k2', value: 'redis-2' },
    ]);
    const cache = await suite.ready();
    await cache.getOrSet('k0', () => 'memory-0');
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const batches: string[][] = [];
    await suite.server.command('CONFIG', 'RESETSTAT');
    const values = await cache.getOrSetMany(keys, async (missing) => {
      batches.push(missing);
      return missing.map((k) => `loaded-${k}`);
    });
    const stats = await suite.server.command('INFO', 'commandstats');
    expect(values.slice(0, 4)).toEqual(['memory-0', 'redis-1', 'redis-2', 'loaded-k3']);
    expect(values[99]).toBe('loaded-k99');
    expect(batches).toHaveLength(1);
    expect(batches[0]).toHaveLength(97);
    expect(commandCalls(stats, 'mget')).toBe(1);
    expect(commandCalls(stats, 'set')).toBe(97); // one pipeline
    // Everything is cached now.
    expect(await cache.getOrSetMany(keys, async () => [])).toEqual(values);
  });

  it('accepts a Map, caches missing values as not found, and keeps request order with repeats', async () => {
    const cache = await suite.ready();
    let calls = 0;
    const loader = async (keys: string[]) => {
      calls++;
      return new Map(keys.filter((k) => k !== 'ghost').map((k) => [k, k.toUpperCase()]));
    };
    expect(await cache.getOrSetMany(['a', 'ghost', 'b', 'a'], loader)).toEqual(['A', undefined, 'B', 'A']);
    expect(await cache.getOrSetMany(['ghost', 'a'], loader)).toEqual([undefined, 'A']);
    expect(calls).toBe(1);
  });

  it('shares in-flight loads with getOrSet, key by key', async () => {
    const cache = await suite.ready();
    let single = 0;
    const slow = cache.getOrSet('x', async () => {
      single++;
      await new Promise((r) => setTimeout(r, 50));
      return 'from getOrSet';
    });
    const loaded: string[][] = [];
    const many = await cache.getOrSetMany(['x', 'y'], async (keys) => {
      loaded.push(keys);
      return keys.map((k) => `batch-${k}`);
    });
    expect(await slow).toBe('from getOrSet');
    expect(many).toEqual(['from getOrSet', 'batch-y']);
    expect(loaded).toEqual([['y']]);
    expect(single).toBe(1);
  });

  it('a failing batch loader rejects with E_LOADER_FAILED and caches nothing', async () => {
    const cache = await suite.ready();
    const cause = new Error('db down');
    await expect(cache.getOrSetMany(['a', 'b'], () => Promise.reject(cause))).rejects.toMatchObject({
      code: ErrorCode.LoaderFailed,
      cause,
    });
    expect(await cache.getMany(['a', 'b'])).toEqual([undefined, undefined]);
  });
});
