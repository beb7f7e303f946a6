import { describe, expect, it } from 'vitest';
import { ErrorCode, isLarderError } from '../src/index.js';
import { commandCalls } from './support/redis-replies.js';
import { useRedisSuite } from './support/suite.js';

const suite = useRedisSuite();
const ready = suite.ready;

describe('basic operations', () => {
  it('sets, gets, checks and deletes', async () => {
    const cache = await ready();
    expect(await cache.get('missing')).toBeUndefined();
    await cache.set('user:1', { name: 'Ada', tags: ['x'] });
    expect(await cache.get('user:1')).toEqual({ name: 'Ada', tags: ['x'] });
    expect(await cache.has('user:1')).toBe(true);
    await cache.delete('user:1');
    expect(await cache.get('user:1')).toBeUndefined();
    expect(await cache.has('user:1')).toBe(false);
  });

  it('reads what another instance wrote, through Redis', async () => {
    const a = await ready();
    const b = await ready();
    await a.set('shared', 42);
    expect(await b.get('shared')).toBe(42);
    expect(b.stats().totals.hits.redis).toBe(1);
    expect(await b.get('shared')).toBe(42);
    expect(b.stats().totals.hits.memory).toBe(1);
  });

  it('stores entries in Redis under escaped, prefixed keys with a TTL', async () => {
    const cache = await ready();
    await cache.namespace('kpi').forTenant('acme').set('revenue:2026', 10, { ttl: '1m' });
    const key = 'test:1:d:kpi:@acme:revenue%3A2026';
    const pttl = Number((await suite.server.command('PTTL', key)).slice(1));
    expect(pttl).toBeGreaterThan(50_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  it('expires entries after their TTL in both tiers', async () => {
    const writer = await ready();
    const reader = await ready();
    await writer.set('short', 'v', { ttl: 150 });
    expect(await reader.get('short')).toBe('v');
    await new Promise((r) => setTimeout(r, 250));
    expect(await writer.get('short')).toBeUndefined();
    expect(await reader.get('short')).toBeUndefined();
    expect(await suite.server.command('EXISTS', 'test:1:d:short')).toBe(':0\r\n');
  });

  it('caches null and undefined loader results for negativeTtl', async () => {
    const cache = await ready();
    let calls = 0;
    const loader = async () => {
      calls++;
      return null;
    };
    expect(await cache.getOrSet('nobody', loader, { negativeTtl: 150 })).toBeNull();
    expect(await cache.getOrSet('nobody', loader, { negativeTtl: 150 })).toBeNull();
    expect(calls).toBe(1);
    await new Promise((r) => setTimeout(r, 250));
    await cache.getOrSet('nobody', loader, { negativeTtl: 150 });
    expect(calls).toBe(2);
    expect(await cache.getOrSet('nothing', async () => undefined)).toBeUndefined();
    expect(await cache.has('nothing')).toBe(true);
  });

  it('does not cache not-found results when negativeTtl is 0', async () => {
    const cache = await ready();
    let calls = 0;
    const loader = async () => {
      calls++;
      return null;
    };
    await cache.getOrSet('k', loader, { negativeTtl: 0 });
    await cache.getOrSet('k', loader, { negativeTtl: 0 });
    expect(calls).toBe(2);
  });

  it('wraps loader failures in E_LOADER_FAILED with the cause and caches nothing', async () => {
    const cache = await ready();
    const boom = new Error('db down');
    const error = await cache.getOrSet('k', () => Promise.reject(boom)).catch((e: unknown) => e);
    expect(isLarderError(error, ErrorCode.LoaderFailed)).toBe(true);
    expect((error as Error).cause).toBe(boom);
    expect(await cache.getOrSet('k', () => 'ok')).toBe('ok');
  });

  it('getMany and setMany use one round trip each and keep order', async () => {
    const writer = await ready();
    const reader = await ready();
    await writer.setMany([
      { key: 'a', value: 1 },
      { key: 'b', value: { two: 2 } },
      { key: 'c', value: 'three', ttl: '1m' },
    ]);
    const before = await suite.server.command('INFO', 'commandstats');
    const values = await reader.getMany(['a', 'missing', 'b', 'c']);
    const after = await suite.server.command('INFO', 'commandstats');
    expect(values).toEqual([1, undefined, { two: 2 }, 'three']);
    expect(commandCalls(after, 'mget') - commandCalls(before, 'mget')).toBe(1); // entries and versions together
    expect(commandCalls(after, 'get') - commandCalls(before, 'get')).toBe(0);
    // now all from memory
    expect(await reader.getMany(['a', 'b'])).toEqual([1, { two: 2 }]);
    expect(reader.stats().totals.hits.memory).toBe(2);
  });

  it('writes both directions of a mapping atomically with setMany({ atomic: true })', async () => {
    const cache = await ready();
    await cache.setMany(
      [
        { key: 'slug:acme', value: { assistantId: 'asst_1' } },
        { key: 'assistant:asst_1', value: 'acme' },
      ],
      { atomic: true },
    );
    const stats = await suite.server.command('INFO', 'commandstats');
    expect(commandCalls(stats, 'multi')).toBe(1);
    expect(commandCalls(stats, 'exec')).toBe(1);
  });
});

describe('tiers', () => {
  it('works with the memory tier off: every read goes to Redis, loads still single-flight', async () => {
    const cache = await ready({ memory: false });
    let calls = 0;
    const load = () =>
      cache.getOrSet('k', async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 20));
        return { v: 1 };
      });
    expect(await Promise.all([load(), load(), load()])).toEqual([{ v: 1 }, { v: 1 }, { v: 1 }]);
    expect(calls).toBe(1);
    expect(await load()).toEqual({ v: 1 });
    expect(await cache.get('k')).toEqual({ v: 1 });
    const stats = cache.stats();
    expect(stats.memory.enabled).toBe(false);
    expect(stats.totals.hits).toEqual({ memory: 0, redis: 2, total: 2 });
  });
});

describe('bad input', () => {
  it('rejects bad keys, TTLs, tags and values with typed errors naming the value', async () => {
    const cache = await ready();
    await expect(cache.get('')).rejects.toMatchObject({ code: ErrorCode.InvalidKey });
    await expect(cache.get('x'.repeat(1025))).rejects.toMatchObject({ code: ErrorCode.InvalidKey });
    await expect(cache.set('k', 1, { ttl: -5 })).rejects.toMatchObject({
      code: ErrorCode.InvalidTtl,
      message: expect.stringContaining('-5'),
    });
    await expect(cache.set('k', 1, { ttl: Number.POSITIVE_INFINITY })).rejects.toMatchObject({
      code: ErrorCode.InvalidTtl,
    });
    await expect(cache.set('k', 1, { ttl: 'soon' })).rejects.toMatchObject({
      code: ErrorCode.InvalidTtl,
      message: expect.stringContaining('soon'),
    });
    await expect(cache.set('k', 1, { tags: [''] })).rejects.toMatchObject({ code: ErrorCode.InvalidTag });
    await expect(cache.set('k', undefined)).rejects.toMatchObject({ code: ErrorCode.InvalidValue });
    await expect(cache.set('k', 10n)).rejects.toMatchObject({ code: ErrorCode.InvalidValue });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(cache.set('k', circular)).rejects.toMatchObject({ code: ErrorCode.InvalidValue });
    expect(() => cache.forTenant('')).toThrow(expect.objectContaining({ code: ErrorCode.InvalidTenant }));
    expect(() => cache.namespace('')).toThrow(expect.objectContaining({ code: ErrorCode.InvalidNamespace }));
    await expect(cache.getOrSet('', () => 1)).rejects.toMatchObject({ code: ErrorCode.InvalidKey });
    // nothing was written by the failed calls
    expect(await suite.server.command('DBSIZE')).toBe(':0\r\n');
  });

  it('rounds fractional TTLs up, bounds tenant and namespace names, returns dense arrays', async () => {
    const cache = await ready();
    await cache.set('fraction', 1, { ttl: 0.4 }); // PX 0 would be refused by Redis
    expect(cache.stats().totals.redisErrors).toBe(0);
    expect(() => cache.forTenant('t'.repeat(257))).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidTenant }),
    );
    expect(() => cache.namespace('n'.repeat(257))).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidNamespace }),
    );
    const values = await cache.getMany(['fraction', 'missing']);
    expect(Object.keys(values)).toEqual(['0', '1']);
  });

  it('rejects values over maxValueBytes', async () => {
    const cache = await ready({ maxValueBytes: 1000 });
    await expect(cache.set('big', 'x'.repeat(2000))).rejects.toMatchObject({ code: ErrorCode.ValueTooLarge });
    await expect(cache.getOrSet('big', () => 'é'.repeat(600))).rejects.toMatchObject({
      code: ErrorCode.ValueTooLarge,
    });
  });
});
