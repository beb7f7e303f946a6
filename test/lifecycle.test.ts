import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, ErrorCode } from '../src/index.js';
import { cacheOn, waitForRedis } from './support/cache.js';
import { TestRedisServer } from './support/redis-server.js';

let server: TestRedisServer;

beforeAll(async () => {
  server = await TestRedisServer.start();
});
afterAll(async () => {
  await server.stop();
});

/** Active handles and requests counted by type (TCPSocketWrap, Timeout, ...). */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** Types with more live resources now than in `baseline` (the runner's own may only go away). */
function leaked(baseline: Map<string, number>): Record<string, number> {
  const extra: Record<string, number> = {};
  for (const [type, count] of resources()) {
    if (count > (baseline.get(type) ?? 0)) extra[type] = count - (baseline.get(type) ?? 0);
  }
  return extra;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe('lifecycle', () => {
  it('close() leaves no socket, timer or handle behind, even with Redis paused mid-call', async () => {
    await settle();
    const baseline = resources();
    const cache = cacheOn(server);
    await waitForRedis(cache);
    expect(leaked(baseline)).toHaveProperty('TCPSocketWrap'); // the check sees the cache's socket
    await cache.getOrSet('a', () => 1);
    await cache
      .namespace('n')
      .forTenant('t')
      .set('b', 2, { tags: ['x'] });
    await cache.namespace('n').clear(); // starts background reclamation
    server.pause();
    const pending = cache.getOrSet('c', () => 3); // a command in flight with its timeout armed
    await new Promise((r) => setTimeout(r, 20));
    await cache.close();
    server.resume();
    expect(await pending).toBe(3);
    await settle();
    expect(leaked(baseline)).toEqual({});
  });

  it('close() stops reconnecting to an unreachable Redis', async () => {
    // A port that accepts and drops every connection: each reconnection attempt is counted.
    let attempts = 0;
    const dropper = createServer((socket) => {
      attempts++;
      socket.destroy();
    }).listen(0, '127.0.0.1');
    await once(dropper, 'listening');
    const { port } = dropper.address() as AddressInfo;
    const cache = createCache({ prefix: 'test', redis: { url: `redis://127.0.0.1:${port}` } });
    expect(await cache.getOrSet('k', () => 1)).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(attempts).toBeGreaterThan(1); // it was retrying
    await cache.close();
    const atClose = attempts;
    await new Promise((r) => setTimeout(r, 1000)); // twice the longest reconnection back-off
    dropper.close();
    expect(attempts).toBe(atClose);
  });

  it('close() is idempotent and later calls fail with E_CLOSED', async () => {
    const cache = createCache();
    await cache.close();
    await cache.close();
    await expect(cache.getOrSet('k', () => 1)).rejects.toMatchObject({ code: ErrorCode.Closed });
    await expect(cache.set('k', 1)).rejects.toMatchObject({ code: ErrorCode.Closed });
  });

  it('never closes a client it was given', async () => {
    const client = createClient({ url: server.url, disableOfflineQueue: true });
    await client.connect();
    const cache = createCache({ prefix: 'test', redis: { client } });
    await cache.set('k', 'v');
    await cache.close();
    expect(client.isOpen).toBe(true);
    expect(await client.exists('test:1:d:k')).toBe(1);
    client.destroy();
  });

  it('supports await using', async () => {
    let closedCache: ReturnType<typeof createCache> | undefined;
    {
      await using cache = createCache();
      closedCache = cache;
      await cache.set('k', 1);
    }
    await expect(closedCache.get('k')).rejects.toMatchObject({ code: ErrorCode.Closed });
  });

  it('rejects invalid options up front, naming the option', () => {
    expect(() => createCache({ defaultTtl: -1 })).toThrow(/defaultTtl/);
    expect(() => createCache({ memory: { maxEntries: 0 } })).toThrow(/memory\.maxEntries/);
    expect(() => createCache({ prefix: 'has space' })).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidOptions }),
    );
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a deliberately wrong option
    expect(() => createCache({ redis: { urll: 'x' } as any })).toThrow(/urll/);
    expect(() => createCache({ redis: { url: 'http://x' } })).toThrow(/redis\.url/);
  });
});
