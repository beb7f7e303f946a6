import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { coalesceMget } from '../../src/drivers/coalesce-mget.js';
import type { RedisDriver } from '../../src/drivers/driver.js';
import { createIoredisDriver } from '../../src/drivers/ioredis.js';
import { createNodeRedisDriver } from '../../src/drivers/node-redis.js';
import { TestRedisServer } from '../support/redis-server.js';
import { untilReady } from './conformance.js';

describe('coalesceMget', () => {
  it('sends the calls of one tick as one MGET, deduplicated, and answers each in its own order', async () => {
    const sent: string[][] = [];
    const mget = coalesceMget(async (keys: readonly string[]) => {
      sent.push([...keys]);
      return keys.map((k) => `v:${k}`);
    });
    const answers = await Promise.all([mget(['a', 'v']), mget(['b', 'v']), mget(['a', 'a', 'c'])]);
    expect(sent).toEqual([['a', 'v', 'b', 'c']]);
    expect(answers).toEqual([
      ['v:a', 'v:v'],
      ['v:b', 'v:v'],
      ['v:a', 'v:a', 'v:c'],
    ]);
  });

  it('passes a lone call through as it is', async () => {
    const sent: string[][] = [];
    const mget = coalesceMget(async (keys: readonly string[]) => {
      sent.push([...keys]);
      return keys.map(() => null);
    });
    await mget(['x', 'x']);
    await mget(['y']);
    expect(sent).toEqual([['x', 'x'], ['y']]);
  });

  it('rejects every caller of a failed MGET, and the next tick starts afresh', async () => {
    let fail = true;
    const mget = coalesceMget(async (keys: readonly string[]) => {
      if (fail) throw new Error('connection lost');
      return keys.map(() => 'ok');
    });
    const results = await Promise.allSettled([mget(['a']), mget(['b'])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(mget(['a'])).resolves.toEqual(['ok']);
  });

  it('a send that throws synchronously rejects its callers instead of throwing', async () => {
    const mget = coalesceMget<string>(() => {
      throw new Error('not ready');
    });
    await expect(mget(['a'])).rejects.toThrow('not ready');
  });

  it('splits a tick over the key cap into several MGETs', async () => {
    const sizes: number[] = [];
    const mget = coalesceMget(async (keys: readonly string[]) => {
      sizes.push(keys.length);
      return keys.map((k) => k);
    });
    const calls = Array.from({ length: 30 }, (_, i) =>
      mget(Array.from({ length: 100 }, (_, j) => `k${i}-${j}`)),
    );
    const answers = await Promise.all(calls);
    expect(answers.every((a, i) => a[0] === `k${i}-0` && a[99] === `k${i}-99`)).toBe(true);
    expect(sizes.length).toBeGreaterThan(1);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1024);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(3000);
  });
});

describe.each([
  ['ioredis', (url: string) => createIoredisDriver({ url })],
  ['node-redis', (url: string) => createNodeRedisDriver({ url })],
])('%s driver: concurrent reads against a real redis-server', (_name, create) => {
  let server: TestRedisServer;
  let driver: RedisDriver;
  beforeAll(async () => {
    server = await TestRedisServer.start();
    driver = create(server.url);
    await untilReady(driver);
  });
  afterAll(async () => {
    await driver.close();
    await server.stop();
  });
  beforeEach(async () => {
    await server.command('FLUSHALL');
  });

  const mgetCalls = async () => {
    const stats = String(await server.command('INFO', 'commandstats'));
    return Number(/cmdstat_mget:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  };

  it('64 reads issued together reach Redis as one MGET, each answered with its own keys', async () => {
    for (let i = 0; i < 64; i++) await driver.set(`e${i}`, `value-${i}`, 60_000);
    await driver.set('version', '7', 60_000);
    await server.command('CONFIG', 'RESETSTAT');
    const answers = await Promise.all(
      Array.from({ length: 64 }, (_, i) => driver.mget([`e${i}`, 'version', `missing${i}`])),
    );
    expect(answers).toEqual(Array.from({ length: 64 }, (_, i) => [`value-${i}`, '7', null]));
    expect(await mgetCalls()).toBe(1);
  });
});
