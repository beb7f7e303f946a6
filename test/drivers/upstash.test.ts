import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisDriver } from '../../src/drivers/driver.js';
import { createUpstashDriver } from '../../src/drivers/upstash.js';
import { TestRedisServer } from '../support/redis-server.js';
import { UpstashRestServer } from '../support/upstash-rest-server.js';
import { runDriverConformance, standaloneBackend, untilReady } from './conformance.js';

// One REST front per redis-server, kept across tests (the server restarts on the same port).
const fronts = new Map<TestRedisServer, UpstashRestServer>();
async function frontFor(server: TestRedisServer): Promise<UpstashRestServer> {
  let front = fronts.get(server);
  if (front === undefined) {
    front = await UpstashRestServer.start(server.url);
    fronts.set(server, front);
  }
  return front;
}
afterAll(async () => {
  await Promise.all([...fronts.values()].map((f) => f.stop()));
});

runDriverConformance(
  'upstash',
  async (server) => {
    const front = await frontFor(server);
    return createUpstashDriver({ url: front.url, token: front.token });
  },
  {
    backend: standaloneBackend,
    pubsub: false,
    remote: true,
    // Requests, not connections: nothing of its own shows in CLIENT LIST.
    connections: false,
    atomicAcrossSlots: true,
    binary: false,
  },
);

describe('upstash driver', () => {
  let server: TestRedisServer;
  let front: UpstashRestServer;
  let driver: RedisDriver;
  beforeAll(async () => {
    server = await TestRedisServer.start();
    front = await UpstashRestServer.start(server.url);
    driver = createUpstashDriver({ url: front.url, token: front.token });
    await untilReady(driver);
  });
  afterAll(async () => {
    await driver?.close();
    await front?.stop();
    await server?.stop();
  });

  it('sends the token, and rejects when it is wrong', async () => {
    const wrong = createUpstashDriver({ url: front.url, token: 'not-the-token' });
    await expect(wrong.ping()).rejects.toThrow(/Unauthorized/);
    await wrong.close();
  });

  it('never retries a request: one attempt, then the rejection', async () => {
    const before = front.requests;
    front.dropNext(1);
    await expect(driver.ping()).rejects.toThrow();
    expect(front.requests - before).toBe(1);
    // A transport failure makes it not ready; the next answer makes it ready again.
    expect(driver.isReady).toBe(false);
    await driver.ping();
    expect(driver.isReady).toBe(true);
  });

  it('keeps stored values out of error messages', async () => {
    const failure = await driver.set('k', 'private value', 0).catch((error: unknown) => error as Error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/invalid expire time/);
    expect((failure as Error).message).not.toContain('private value');
  });

  it('redacts credentials in its endpoint and never shows the token', async () => {
    const withUser = createUpstashDriver({ url: front.url.replace('//', '//user:pw@'), token: 'sekret' });
    expect(withUser.endpoint).toBe(`${front.url.replace('//', '//user:***@')}/`);
    expect(withUser.endpoint).not.toContain('sekret');
    expect(withUser.name).toBe('upstash');
    await withUser.close();
  });

  it('close() rejects a request in flight at once', async () => {
    const own = createUpstashDriver({ url: front.url, token: front.token });
    // Redis runs a script that never ends: the REST call waits for it.
    server.command('EVAL', 'while true do end', '0').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    const pending = own.mget(['k']);
    pending.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    const closedAt = performance.now();
    await own.close();
    await expect(pending).rejects.toThrow();
    expect(performance.now() - closedAt).toBeLessThan(500);
    await expect(own.ping()).rejects.toThrow(/closed/);
    await server.restart();
    await untilReady(driver);
  });
});
