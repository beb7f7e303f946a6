import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RedisDriver } from '../../src/drivers/driver.js';
import { createMemoryDriver, createMemoryStore, globMatch } from '../../src/drivers/memory.js';
import { createNodeRedisDriver } from '../../src/drivers/node-redis.js';
import { TestRedisServer } from '../support/redis-server.js';
import {
  eventually,
  noBackend,
  recordingListener,
  runDriverConformance,
  scanAll,
  untilReady,
} from './conformance.js';

runDriverConformance<undefined>('memory', async () => createMemoryDriver(), {
  backend: noBackend,
  pubsub: true,
  remote: false,
  connections: false,
  atomicAcrossSlots: true,
  // The caller-owned counterpart of a client: a store passed in, which close() must leave intact.
  callerOwned: async () => {
    const store = createMemoryStore();
    const reader = createMemoryDriver({ store });
    return {
      driver: createMemoryDriver({ store }),
      works: async () => store.size > 0 && (await reader.mget(['x'])).length === 1,
      close: () => reader.close(),
    };
  },
});

describe('memory driver', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires keys by its clock, to the millisecond, as Redis does', async () => {
    let now = 1_000_000;
    const driver = createMemoryDriver({ store: createMemoryStore({ now: () => now }) });
    await driver.set('k', 'v', 1000);
    await driver.setIfAbsent('lock', 't', 500);
    now += 1000; // Redis keeps a key until the clock is past its deadline
    expect(await driver.mget(['k', 'lock'])).toEqual(['v', null]);
    now += 1;
    expect(await driver.mget(['k'])).toEqual([null]);
    expect(await driver.setIfAbsent('k', 'again', 10)).toBe(true);
  });

  it('runs no timer: not for expiry, not for pub/sub', async () => {
    vi.useFakeTimers();
    const driver = createMemoryDriver();
    const listener = recordingListener();
    const subscription = driver.subscribe!('ch', listener);
    await driver.set('k', 'v', 10);
    await driver.setMany([{ key: 'm', value: 'v', ttlMs: 10 }], true);
    await driver.publish('ch', 'hello');
    await Promise.resolve();
    expect(listener.messages).toEqual(['hello']);
    expect(vi.getTimerCount()).toBe(0);
    await subscription.close();
    await driver.close();
  });

  it('reclaims expired keys that are never read again', async () => {
    let now = 0;
    const store = createMemoryStore({ now: () => now });
    const driver = createMemoryDriver({ store });
    await driver.setMany(
      Array.from({ length: 5000 }, (_, i) => ({ key: `old-${i}`, value: 'v', ttlMs: 10 })),
      false,
    );
    now = 1000;
    for (let i = 0; i < 2000; i++) await driver.set(`new-${i}`, 'v', 60_000);
    // Each write probes a few keys: the expired ones are gone without being read.
    expect(store.size).toBeLessThan(2000 + 5000 / 2);
    expect((await scanAll(driver, 'new-*')).keys).toHaveLength(2000);
  });

  it('lets drivers on one store see each other, and leaves the store to its owner on close()', async () => {
    const store = createMemoryStore();
    const a = createMemoryDriver({ store });
    const b = createMemoryDriver({ store });
    const listener = recordingListener();
    const subscription = b.subscribe!('bus', listener);
    await eventually(() => listener.ups === 1);
    await a.set('k', 'from a', 60_000);
    await a.publish('bus', 'hi');
    expect(await b.mget(['k'])).toEqual(['from a']);
    await eventually(() => listener.messages.length === 1);
    await a.close();
    expect(await b.mget(['k'])).toEqual(['from a']);
    await b.publish('bus', 'still');
    await eventually(() => listener.messages.length === 2);
    await subscription.close();
    await b.close();
    expect(store.size).toBe(1);
  });

  it("closing a driver ends its subscriptions, not other drivers' on the same store", async () => {
    const store = createMemoryStore();
    const a = createMemoryDriver({ store });
    const b = createMemoryDriver({ store });
    const onA = recordingListener();
    const onB = recordingListener();
    a.subscribe!('ch', onA);
    b.subscribe!('ch', onB);
    await eventually(() => onA.ups === 1 && onB.ups === 1);
    await a.close();
    await b.publish('ch', 'm');
    await eventually(() => onB.messages.length === 1);
    expect(onA.messages).toEqual([]);
    await b.close();
  });

  it('answers with the errors Redis gives', async () => {
    const driver = createMemoryDriver();
    await expect(driver.set('k', 'v', 0)).rejects.toThrow("ERR invalid expire time in 'set' command");
    await expect(driver.set('k', 'v', 1.5)).rejects.toThrow('ERR value is not an integer or out of range');
    await driver.set('n', '9223372036854775807', 60_000);
    await expect(driver.incrBy(['n'], 1)).rejects.toThrow('ERR increment or decrement would overflow');
    for (const bad of ['', ' 1', '+1', '01', '-0', '1.0', '99999999999999999999']) {
      await driver.set('bad', bad, 60_000);
      await expect(driver.incrBy(['bad'], 1), JSON.stringify(bad)).rejects.toThrow(
        'ERR value is not an integer',
      );
    }
    await expect(driver.scan('x', '*', 10)).rejects.toThrow('ERR invalid cursor');
    await expect(driver.scan('0', '*', 0)).rejects.toThrow('ERR syntax error');
  });

  it('matches glob edge cases byte by byte', () => {
    const m = (pattern: string, subject: string) => globMatch(Buffer.from(pattern), Buffer.from(subject));
    expect(m('a[bc', 'ab')).toBe(true); // an unclosed set runs to the end of the pattern (checked on Redis 7.0)
    expect(m('a[bc', 'a')).toBe(false);
    expect(m('a\\', 'a\\')).toBe(true); // a trailing backslash is itself
    expect(m('[]', ']')).toBe(false);
    expect(m('*', '')).toBe(false); // as stringmatchlen: nothing is matched against an empty key…
    expect(m('', '')).toBe(true);
    expect(m('?', '')).toBe(false);
    expect(m('a*', 'a')).toBe(true);
    expect(m(`${'*a'.repeat(40)}b`, 'a'.repeat(60))).toBe(false); // no exponential blow-up
  });

  it('lists the empty key for MATCH * (SCAN does not match at all then, as on Redis)', async () => {
    const driver = createMemoryDriver();
    await driver.set('', 'v', 60_000);
    expect((await scanAll(driver, '*')).keys).toEqual(['']);
    expect((await scanAll(driver, '')).keys).toEqual(['']);
    expect((await scanAll(driver, '*?')).keys).toEqual([]);
    await driver.close();
  });
});

describe('memory driver glob matching, against a real Redis', () => {
  let server: TestRedisServer;
  let redis: RedisDriver;
  let memory: RedisDriver;
  const names = [
    '',
    'a',
    'b',
    'ab',
    'ba',
    'aa',
    'abc',
    'a*b',
    'a?b',
    'a[b',
    'a]b',
    'a\\b',
    'a-b',
    'a^b',
    'é',
    'aé',
    '[',
    ']',
    '\\',
    '*',
    'A',
  ];
  const prefix = 'g:';

  beforeAll(async () => {
    server = await TestRedisServer.start();
    redis = createNodeRedisDriver({ url: server.url });
    memory = createMemoryDriver();
    await untilReady(redis);
    const writes = names.map((n) => ({ key: prefix + n, value: 'v', ttlMs: 600_000 }));
    await redis.setMany(writes, false);
    await memory.setMany(writes, false);
  });
  afterAll(async () => {
    await redis?.close();
    await memory?.close();
    await server?.stop();
  });

  it('SCAN MATCH selects the same keys on both, for random patterns', async () => {
    const token = fc.constantFrom('a', 'b', 'é', '*', '?', '[', ']', '^', '-', '\\', 'A', 'z');
    await fc.assert(
      fc.asyncProperty(fc.array(token, { maxLength: 7 }), async (tokens) => {
        const pattern = prefix + tokens.join('');
        const [fromRedis, fromMemory] = await Promise.all([
          scanAll(redis, pattern),
          scanAll(memory, pattern),
        ]);
        expect(fromMemory.keys, pattern).toEqual(fromRedis.keys);
      }),
      // The example: a range bounded by a UTF-8 byte, which Redis compares as a signed char.
      { numRuns: 1000, examples: [[['[', 'a', '-', 'é']]] },
    );
  });
});
