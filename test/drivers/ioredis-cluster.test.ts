import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIoredisDriver, ioredisDriverFromClient, keySlot } from '../../src/drivers/ioredis.js';
import { createCache } from '../../src/index.js';
import type { RedisDriver } from '../../src/drivers/driver.js';
import { TestRedisCluster } from '../support/redis-cluster.js';
import { clusterBackend, runDriverConformance, untilReady } from './conformance.js';

runDriverConformance<TestRedisCluster>(
  'ioredis Cluster',
  async (cluster) => createIoredisDriver({ cluster: cluster.nodes }),
  {
    backend: clusterBackend,
    pubsub: true,
    remote: true,
    connections: true,
    atomicAcrossSlots: false,
    callerOwned: async (cluster) => {
      const client = new Cluster(cluster.nodes, {
        lazyConnect: true,
        redisOptions: { maxRetriesPerRequest: 0 },
      });
      client.on('error', () => undefined);
      await client.connect();
      return {
        driver: ioredisDriverFromClient(client),
        works: async () => (await client.ping()) === 'PONG',
        close: async () => client.disconnect(),
      };
    },
  },
);

describe('ioredis Cluster driver', () => {
  let cluster: TestRedisCluster;
  let driver: RedisDriver;
  beforeAll(async () => {
    cluster = await TestRedisCluster.start(3);
    driver = createIoredisDriver({ cluster: cluster.nodes });
    await untilReady(driver);
  }, 60_000);
  afterAll(async () => {
    await driver?.close();
    await cluster?.stop();
  });

  it('computes the hash slot Redis computes, hash tags and UTF-8 included', async () => {
    const keys = [
      '',
      'a',
      'foo',
      'larder:1:d:ns:@acme:k',
      '{user1000}.following',
      'foo{}{bar}',
      'foo{{bar}}zap',
      'é🎉',
      '{é}x',
      'a{b',
    ];
    for (const k of keys) {
      const reply = await cluster.command(cluster.ports[0] as number, 'CLUSTER', 'KEYSLOT', k);
      expect(keySlot(k), JSON.stringify(k)).toBe(Number(reply.slice(1)));
    }
  });

  it('names every startup node in its endpoint', () => {
    expect(driver.endpoint).toBe(`redis-cluster://${cluster.ports.map((p) => `127.0.0.1:${p}`).join(',')}`);
  });

  it('SCAN visits every primary, with the node in the cursor', async () => {
    const keys = Array.from({ length: 60 }, (_, i) => `scan:${i}`);
    await driver.setMany(
      keys.map((key) => ({ key, value: 'v', ttlMs: 60_000 })),
      false,
    );
    // Every node holds some of them, so a scan of one node only would miss keys.
    const perNode = await cluster.commandOnEach('DBSIZE');
    expect(perNode.every((reply) => Number(reply.slice(1)) > 0)).toBe(true);

    const cursors: string[] = [];
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const page = await driver.scan(cursor, 'scan:*', 5);
      page.keys.forEach((k) => seen.add(k));
      cursor = page.cursor;
      cursors.push(cursor);
    } while (cursor !== '0');
    expect([...seen].sort()).toEqual([...keys].sort());
    const nodes = new Set(cursors.filter((c) => c !== '0').map((c) => c.slice(c.indexOf('@') + 1)));
    expect([...nodes].sort()).toEqual(cluster.ports.map((p) => `127.0.0.1:${p}`).sort());
    expect(cursors.every((c) => c === '0' || /^\d+@127\.0\.0\.1:\d+$/.test(c))).toBe(true);
    await driver.unlink(keys);
  });

  it('rejects a cursor it did not make, and moves past a node that left', async () => {
    await expect(driver.scan('42', '*', 10)).rejects.toThrow(/cursor/);
    const ids = cluster.ports.map((p) => `127.0.0.1:${p}`).sort();
    // A node sorting after every current one: nothing is left to scan.
    await expect(driver.scan('7@255.255.255.255:1', '*', 10)).resolves.toEqual({ cursor: '0', keys: [] });
    // A node sorting before every current one: the scan goes on with the first, from its start.
    await expect(driver.scan('7@0.0.0.0:1', 'nothing:*', 1000)).resolves.toEqual({
      cursor: `0@${ids[1]}`,
      keys: [],
    });
  });

  it('keeps one hash slot per transaction: atomic writes with a hash tag work, others name the fix', async () => {
    await driver.setMany(
      [
        { key: '{tenant}:a', value: '1', ttlMs: 60_000 },
        { key: '{tenant}:b', value: '2', ttlMs: 60_000 },
      ],
      true,
    );
    expect(await driver.mget(['{tenant}:a', '{tenant}:b'])).toEqual(['1', '2']);
    await expect(
      driver.setMany(
        [
          { key: 'x:a', value: '1', ttlMs: 60_000 },
          { key: 'x:b', value: '2', ttlMs: 60_000 },
        ],
        true,
      ),
    ).rejects.toMatchObject({ code: 'E_CROSS_SLOT' });
  });

  it("under a cache, a cross-slot atomic setMany is the caller's error, not a Redis outage", async () => {
    const cache = createCache({
      prefix: 'slots',
      redis: { driver: createIoredisDriver({ cluster: cluster.nodes }) },
    });
    try {
      while ((await cache.health()).status !== 'ok') await new Promise((r) => setTimeout(r, 20));
      for (let i = 0; i < 10; i++) {
        await expect(
          cache.setMany(
            [
              { key: 'slug:acme', value: 1 },
              { key: 'assistant:a1', value: 'acme' },
            ],
            { atomic: true },
          ),
        ).rejects.toMatchObject({ code: 'E_CROSS_SLOT' });
      }
      expect(cache.stats().redis.circuit).toBe('closed');
      expect(cache.stats().totals.fallbacks).toBe(0);
      expect(await cache.getMany(['slug:acme', 'assistant:a1'])).toEqual([undefined, undefined]); // nothing kept
      await cache.setMany([
        { key: 'slug:acme', value: 1 },
        { key: 'assistant:a1', value: 'acme' },
      ]);
      expect(await cache.getMany(['slug:acme', 'assistant:a1'])).toEqual([1, 'acme']);
    } finally {
      await cache.close();
    }
  });
});
