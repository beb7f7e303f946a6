import { describe, expect, it } from 'vitest';
import type { Cache } from '../../src/index.js';
import { useRedisSuite } from '../support/suite.js';

const suite = useRedisSuite();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `cache.stats().redis.bus` is `up`. */
async function busUp(cache: Cache): Promise<void> {
  const deadline = Date.now() + 3000;
  while (cache.stats().redis.bus !== 'up') {
    if (Date.now() > deadline) throw new Error('bus not up within 3 s');
    await sleep(10);
  }
}

/** Polls `read` until it returns `expected`; resolves with the time it took. */
async function until<T>(read: () => Promise<T>, expected: T, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if ((await read()) === expected) return Date.now() - started;
    await sleep(5);
  }
  throw new Error(`value did not become ${String(expected)} within ${timeoutMs} ms`);
}

describe('L1 coherence bus', () => {
  it("set, delete, deleteByTag and clear on one instance drop the others' memory copies", async () => {
    const a = await suite.ready();
    const b = await suite.ready();
    await Promise.all([busUp(a), busUp(b)]);
    const na = a.namespace('n');
    const nb = b.namespace('n');

    await na.set('k', 'v1', { tags: ['t'] });
    expect(await nb.get('k')).toBe('v1'); // now in b's memory
    await na.set('k', 'v2', { tags: ['t'] });
    await until(() => nb.get('k'), 'v2', 1000);

    await na.delete('k');
    await until(() => nb.get('k'), undefined, 1000);

    await na.set('k', 'v3', { tags: ['t'] });
    expect(await nb.get('k')).toBe('v3');
    await na.deleteByTag('t');
    await until(() => nb.get('k'), undefined, 1000);

    await na.set('k', 'v4');
    expect(await nb.get('k')).toBe('v4');
    await na.clear({ reclaim: false });
    await until(() => nb.get('k'), undefined, 1000);
  });

  it('without the bus another instance keeps serving its memory copy (the bound is memory.maxTtl)', async () => {
    const a = await suite.ready({ redis: { url: suite.server.url, bus: false } });
    const b = await suite.ready({ redis: { url: suite.server.url, bus: false } });
    await a.set('k', 'v1');
    expect(await b.get('k')).toBe('v1');
    await a.set('k', 'v2');
    await sleep(100);
    expect(await b.get('k')).toBe('v1');
    expect(b.stats().redis.bus).toBe('off');
  });

  it('when the bus drops, an instance stops serving old memory copies within unhealthyMemoryTtl', async () => {
    const bound = 300;
    const options = { redis: { url: suite.server.url, bus: { unhealthyMemoryTtl: bound } } };
    const a = await suite.ready(options);
    const b = await suite.ready(options);
    await Promise.all([busUp(a), busUp(b)]);
    await a.set('k', 'old');
    expect(await b.get('k')).toBe('old');

    // Take the bus down and keep it down: SUBSCRIBE is refused, then every subscriber is cut.
    // Messages published meanwhile reach nobody.
    const downs: string[] = [];
    b.on('bus', (e) => downs.push(e.state));
    await suite.server.command('ACL', 'SETUSER', 'default', '-subscribe');
    let took: number;
    let tookWhileDown: number;
    try {
      await suite.server.command('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await until(async () => b.stats().redis.bus, 'down', 2000);
      await a.set('k', 'new'); // b does not hear of it
      took = await until(() => b.get('k'), 'new', 2000);
      // While the bus is still down, b trusts what it reads for at most `bound` ms.
      await a.set('k', 'newer');
      tookWhileDown = await until(() => b.get('k'), 'newer', 2000);
      expect(b.stats().redis.bus).toBe('down');
    } finally {
      await suite.server.command('ACL', 'SETUSER', 'default', '+subscribe');
    }
    console.info(
      `[bus down] b served new values ${took} ms and ${tookWhileDown} ms after the writes (bound ${bound} ms)`,
    );
    expect(took).toBeLessThanOrEqual(bound + 100);
    expect(tookWhileDown).toBeLessThanOrEqual(bound + 100);
    expect(downs).toContain('down');
    await busUp(b);
  });

  it('an instance ignores its own messages and keeps its memory copy', async () => {
    const a = await suite.ready();
    await busUp(a);
    await a.set('k', 'v');
    await sleep(50); // its own message has come back by now
    await a.get('k');
    expect(a.stats().totals.hits).toEqual({ memory: 1, redis: 0, total: 1 });
  });
});

describe('what is announced on the bus', () => {
  async function publishes(): Promise<number> {
    const info = await suite.server.command('INFO', 'commandstats');
    return Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0);
  }

  it('a fill after a cold miss is not published; writes, and fills replacing a stale entry, are', async () => {
    const a = await suite.ready({ grace: '1m' });
    const b = await suite.ready({ grace: '1m' });
    await busUp(a);
    await busUp(b);
    const before = await publishes();
    expect(await a.getOrSet('cold', () => 'filled', { ttl: 100 })).toBe('filled');
    expect(await publishes()).toBe(before);

    await b.set('written', 1);
    expect(await publishes()).toBe(before + 1);

    // Past the TTL but within grace: the entry is stale in Redis, so others may hold it; the new
    // value is announced.
    await new Promise((r) => setTimeout(r, 150));
    expect(await b.getOrSet('cold', () => 'reloaded', { ttl: 100 })).toBe('reloaded');
    expect(await publishes()).toBe(before + 2);
  });
});
