import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIoredisDriver, ioredisDriverFromClient } from '../../src/drivers/ioredis.js';
import { freePort, TestRedisServer } from '../support/redis-server.js';
import { eventually, runDriverConformance, scanAll, standaloneBackend, untilReady } from './conformance.js';

runDriverConformance('ioredis', async (server) => createIoredisDriver({ url: server.url }), {
  backend: standaloneBackend,
  pubsub: true,
  remote: true,
  connections: true,
  atomicAcrossSlots: true,
  callerOwned: async (server) => {
    const client = new Redis(server.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    client.on('error', () => undefined);
    await client.connect();
    return {
      driver: ioredisDriverFromClient(client),
      works: async () => (await client.ping()) === 'PONG',
      close: async () => client.disconnect(),
    };
  },
});

describe('ioredis driver', () => {
  let server: TestRedisServer;
  beforeAll(async () => {
    server = await TestRedisServer.start();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('redacts credentials in its endpoint', async () => {
    const fromUrl = createIoredisDriver({ url: `redis://app:s3cret@127.0.0.1:${server.port}/2` });
    const fromFields = createIoredisDriver({ host: '127.0.0.1', port: server.port, password: 's3cret' });
    const sentinel = createIoredisDriver({
      sentinels: [{ host: '127.0.0.1', port: 1 }],
      name: 'main',
      password: 's3cret',
    });
    try {
      expect(fromUrl.endpoint).toBe(`redis://app:***@127.0.0.1:${server.port}/2`);
      expect(fromFields.endpoint).toBe(`redis://127.0.0.1:${server.port}/0`);
      expect(sentinel.endpoint).toBe('redis-sentinel://127.0.0.1:1/main');
      expect(fromUrl.name).toBe('ioredis');
    } finally {
      await Promise.all([fromUrl.close(), fromFields.close(), sentinel.close()]);
    }
  });

  it('starts while Redis is down, rejects at once meanwhile, and connects when it comes up', async () => {
    const down = await TestRedisServer.start();
    await down.kill();
    const driver = createIoredisDriver({ url: down.url });
    try {
      expect(driver.isReady).toBe(false);
      await expect(driver.mget(['k'])).rejects.toThrow(/not ready/);
      await down.restart();
      await untilReady(driver);
    } finally {
      await driver.close();
      await down.stop();
    }
  });

  it("honours a caller-owned client's keyPrefix, SCAN included", async () => {
    const client = new Redis(server.url, {
      keyPrefix: 'app*1:',
      lazyConnect: true,
      enableOfflineQueue: false,
    });
    await client.connect();
    const driver = ioredisDriverFromClient(client);
    try {
      await driver.set('a:1', 'v', 60_000);
      await driver.setMany([{ key: 'a:2', value: 'w', ttlMs: 60_000 }], true);
      expect(await server.command('EXISTS', 'app*1:a:1')).toBe(':1\r\n');
      expect(await driver.mget(['a:1', 'a:2'])).toEqual(['v', 'w']);
      // Only this prefix's keys, returned without it (the prefix's `*` is matched literally).
      await server.command('SET', 'appX1:a:3', 'other');
      expect((await scanAll(driver, 'a:*')).keys).toEqual(['a:1', 'a:2']);
      expect(await driver.deleteIfEquals('a:1', 'v')).toBe(true);
      expect(await driver.unlink(['a:2'])).toBe(1);
    } finally {
      await driver.close();
      client.disconnect();
      await server.command('FLUSHALL');
    }
  });

  it('rejects calls on a caller-owned client that is not connected yet, instead of queueing them', async () => {
    const client = new Redis(server.url, { lazyConnect: true });
    const driver = ioredisDriverFromClient(client);
    await expect(driver.ping()).rejects.toThrow(/status: wait/);
    expect(client.status).toBe('wait');
    client.disconnect();
  });

  it('finds the primary through Sentinel', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'larder-sentinel-'));
    const port = await freePort();
    const config = join(dir, 'sentinel.conf');
    writeFileSync(config, `port ${port}\nbind 127.0.0.1\nsentinel monitor main 127.0.0.1 ${server.port} 1\n`);
    const sentinel = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
    const driver = createIoredisDriver({ sentinels: [{ host: '127.0.0.1', port }], name: 'main' });
    try {
      await untilReady(driver);
      await driver.set('through-sentinel', 'v', 60_000);
      expect(await server.command('GET', 'through-sentinel')).toBe('$1\r\nv\r\n');
      await eventually(async () => (await driver.mget(['through-sentinel']))[0] === 'v');
    } finally {
      await driver.close();
      const exited = once(sentinel, 'exit');
      sentinel.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      await server.command('FLUSHALL');
    }
  });
});
