import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.js';
import { waitForRedis } from '../support/cache.js';
import { useRedisSuite } from '../support/suite.js';

const suite = useRedisSuite();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('grace and stale-if-error', () => {
  it('serves the stale value when the loader fails within grace, then backs off', async () => {
    const cache = await suite.ready({ grace: '10s', graceBackoff: 300 });
    const stale: string[] = [];
    cache.on('stale', (e) => stale.push(e.reason));
    expect(await cache.getOrSet('k', () => 'v1', { ttl: 100 })).toBe('v1');
    await sleep(150);
    let calls = 0;
    const failing = async () => {
      calls++;
      throw new Error('db down');
    };
    expect(await cache.getOrSet('k', failing, { ttl: 100 })).toBe('v1');
    expect(await cache.getOrSet('k', failing, { ttl: 100 })).toBe('v1'); // backing off: no call
    expect(calls).toBe(1);
    expect(stale).toEqual(['error']);
    expect(cache.stats().totals.staleServed).toBe(2);
    await sleep(350);
    expect(await cache.getOrSet('k', failing, { ttl: 100 })).toBe('v1'); // tried again
    expect(calls).toBe(2);
    expect(await cache.getOrSet('k', () => 'v2', { ttl: 100, graceBackoff: 1 })).toBe('v1');
  });

  it('serves stale from Redis to a fresh instance whose memory is empty', async () => {
    const writer = await suite.ready({ grace: '10s' });
    await writer.getOrSet('k', () => 'v1', { ttl: 100 });
    await sleep(150);
    const reader = await suite.ready({ grace: '10s' });
    expect(await reader.getOrSet('k', () => Promise.reject(new Error('down')))).toBe('v1');
    expect(reader.stats().totals.staleServed).toBe(1);
  });

  it('without grace the loader error reaches the caller, typed, with its cause', async () => {
    const cache = await suite.ready();
    await cache.getOrSet('k', () => 'v1', { ttl: 100 });
    await sleep(150);
    const cause = new Error('db down');
    const error = await cache.getOrSet('k', () => Promise.reject(cause)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCode.LoaderFailed, cause });
  });

  it('never serves stale past grace, nor an entry invalidated by a tag', async () => {
    const cache = await suite.ready({ grace: 200 });
    await cache.getOrSet('a', () => 'old', { ttl: 50 });
    await cache.getOrSet('b', () => 'old', { ttl: 50, tags: ['t'] });
    await sleep(80);
    await cache.deleteByTag('t');
    await expect(
      cache.getOrSet('b', () => Promise.reject(new Error('x')), { tags: ['t'] }),
    ).rejects.toMatchObject({
      code: ErrorCode.LoaderFailed,
    });
    await sleep(250);
    await expect(cache.getOrSet('a', () => Promise.reject(new Error('x')))).rejects.toMatchObject({
      code: ErrorCode.LoaderFailed,
    });
  });

  it('keeps entries in Redis for TTL + grace', async () => {
    const cache = await suite.ready({ grace: '1m' });
    await cache.set('k', 1, { ttl: '1m' });
    const pttl = Number((await suite.server.command('PTTL', 'test:1:d:k')).slice(1));
    expect(pttl).toBeGreaterThan(110_000);
    expect(pttl).toBeLessThanOrEqual(120_000);
  });
});

describe('loader timeouts', () => {
  it('soft timeout: serves stale at once and lets the loader finish and update the cache', async () => {
    const cache = await suite.ready({ grace: '10s' });
    await cache.getOrSet('k', () => 'v1', { ttl: 50 });
    await sleep(80);
    const started = performance.now();
    const slow = () => sleep(300).then(() => 'v2');
    expect(await cache.getOrSet('k', slow, { ttl: '1m', loaderTimeout: { soft: 50 } })).toBe('v1');
    expect(performance.now() - started).toBeLessThan(250);
    await sleep(400);
    expect(await cache.get('k')).toBe('v2');
    const other = await suite.ready();
    expect(await other.get('k')).toBe('v2');
  });

  it('hard timeout without a stale value rejects with E_LOADER_TIMEOUT', async () => {
    const cache = await suite.ready();
    const started = performance.now();
    const error = await cache
      .getOrSet('k', () => sleep(1000).then(() => 'late'), { loaderTimeout: { hard: 100 } })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCode.LoaderTimeout });
    expect(performance.now() - started).toBeLessThan(600);
  });

  it('hard timeout with a stale value serves it', async () => {
    const cache = await suite.ready({ grace: '10s' });
    await cache.getOrSet('k', () => 'v1', { ttl: 50 });
    await sleep(80);
    expect(
      await cache.getOrSet('k', () => sleep(1000).then(() => 'late'), { loaderTimeout: { hard: 100 } }),
    ).toBe('v1');
  });
});

describe('Redis soft timeout', () => {
  it('with a memory copy at hand, a slow Redis read is not waited for', async () => {
    const cache = await suite.ready({
      memory: { maxTtl: 50 }, // memory copies must be re-checked with Redis after 50 ms
      redis: { url: suite.server.url, softTimeout: 30, commandTimeout: 2000 },
    });
    await cache.set('k', 'v', { ttl: '1m' });
    await sleep(80);
    suite.server.pause();
    let calls = 0;
    const started = performance.now();
    expect(await cache.getOrSet('k', async () => `loaded ${++calls}`)).toBe('v');
    const took = performance.now() - started;
    suite.server.resume();
    expect(calls).toBe(0);
    expect(took).toBeLessThan(1000); // far below the 2 s command timeout
  });
});

describe('refresh-ahead and jitter', () => {
  it('reloads once in the background past the refresh point while callers keep the current value', async () => {
    const cache = await suite.ready();
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(50);
      return `v${calls}`;
    };
    // Wide margins: on a loaded machine a sleep can overshoot by hundreds of milliseconds.
    const opts = { ttl: 2000, refreshAhead: 0.5 };
    expect(await cache.getOrSet('k', loader, opts)).toBe('v1');
    await sleep(1100); // past 50% of the TTL, well before expiry
    const results = await Promise.all(Array.from({ length: 50 }, () => cache.getOrSet('k', loader, opts)));
    expect(results.every((r) => r === 'v1')).toBe(true); // nobody waited for the reload
    await expect.poll(() => calls, { timeout: 800 }).toBe(2);
    await sleep(100);
    expect(calls).toBe(2);
    expect(await cache.getOrSet('k', loader, opts)).toBe('v2');
    expect(cache.stats().totals.refreshes).toBe(1);
  });

  it('refreshes ahead from Redis hits too (memory tier off)', async () => {
    const cache = await suite.ready({ memory: false });
    let calls = 0;
    const loader = async () => `v${++calls}`;
    const opts = { ttl: 2000, refreshAhead: 0.5 };
    expect(await cache.getOrSet('k', loader, opts)).toBe('v1');
    await new Promise((r) => setTimeout(r, 1100));
    const results = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('k', loader, opts)));
    expect(new Set(results)).toEqual(new Set(['v1']));
    await expect.poll(() => calls, { timeout: 800 }).toBe(2);
    expect(await cache.getOrSet('k', loader, opts)).toBe('v2');
  });

  it('refreshAhead: false turns the cache default off for one call', async () => {
    const cache = await suite.ready({ refreshAhead: 0.5 });
    let calls = 0;
    const loader = async () => `v${++calls}`;
    expect(await cache.getOrSet('k', loader, { ttl: 2000, refreshAhead: false })).toBe('v1');
    await new Promise((r) => setTimeout(r, 1100)); // past the default's refresh point
    expect(await cache.getOrSet('k', loader, { ttl: 2000, refreshAhead: false })).toBe('v1');
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toBe(1);
    expect(cache.stats().totals.refreshes).toBe(0);
  });

  it('shortens TTLs by up to ttlJitter, never lengthens them', async () => {
    const cache = await suite.ready({ ttlJitter: 0.5 });
    await cache.setMany(Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: i, ttl: 100_000 })));
    const ttls = await Promise.all(
      Array.from({ length: 50 }, async (_, i) =>
        Number((await suite.server.command('PTTL', `test:1:d:k${i}`)).slice(1)),
      ),
    );
    expect(Math.max(...ttls)).toBeLessThanOrEqual(100_000);
    expect(Math.min(...ttls)).toBeGreaterThanOrEqual(49_000);
    expect(new Set(ttls.map((t) => Math.round(t / 5000))).size).toBeGreaterThan(3);
  });
});

describe('recovery after an outage', () => {
  it('replays writes and deletes made while Redis was down, so other instances converge', async () => {
    const a = await suite.ready();
    const replayed = new Promise((resolve) => a.on('replayed', resolve));
    await a.set('kept', 'old');
    await suite.server.kill();
    await a.set('k', 'written while down');
    await a.delete('kept');
    expect(a.stats().redis.pendingWrites).toBe(2);
    await suite.server.restart();
    await suite.server.command('SET', 'test:1:d:kept', 'stale copy a restart brought back');
    await waitForRedis(a); // the first successful call replays
    expect(await replayed).toEqual({ writes: 1, deletes: 1, bumps: 0 });
    const b = await suite.ready();
    expect(await b.get('k')).toBe('written while down');
    expect(await suite.server.command('EXISTS', 'test:1:d:kept')).toBe(':0\r\n');
    expect(a.stats().redis.pendingWrites).toBe(0);
  });
});
