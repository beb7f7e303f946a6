import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisDriver } from '../../src/drivers/driver.js';
import { createIoredisDriver } from '../../src/drivers/ioredis.js';
import { pipelinePerTick } from '../../src/drivers/pipeline-per-tick.js';
import { TestRedisServer } from '../support/redis-server.js';
import { untilReady } from './conformance.js';

describe('pipelinePerTick', () => {
  it('sends the commands of one tick in one batch, and a lone command on its own', async () => {
    const batches: string[][] = [];
    const ones: string[] = [];
    const send = pipelinePerTick<string>(
      async (item) => void ones.push(item),
      async (items) => {
        batches.push([...items]);
        return items.map(() => undefined);
      },
    );
    await Promise.all([send('a'), send('b'), send('c')]);
    await send('d');
    expect(batches).toEqual([['a', 'b', 'c']]);
    expect(ones).toEqual(['d']);
  });

  it("rejects only the caller whose command failed, and every caller when the batch can't be sent", async () => {
    let down = false;
    const send = pipelinePerTick<string>(
      async () => undefined,
      async (items) => {
        if (down) throw new Error('connection lost');
        return items.map((item) => (item === 'bad' ? new Error(`refused ${item}`) : undefined));
      },
    );
    const outcomes = await Promise.allSettled([send('a'), send('bad'), send('c')]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    down = true;
    const failed = await Promise.allSettled([send('a'), send('b')]);
    expect(failed.map((o) => o.status)).toEqual(['rejected', 'rejected']);
  });
});

describe('ioredis driver: SETs issued together', () => {
  let server: TestRedisServer;
  let driver: RedisDriver;
  beforeAll(async () => {
    server = await TestRedisServer.start();
    driver = createIoredisDriver({ url: server.url });
    await untilReady(driver);
  });
  afterAll(async () => {
    await driver.close();
    await server.stop();
  });

  it('share one pipeline, and a refused one fails alone', async () => {
    await server.command('CONFIG', 'RESETSTAT');
    const outcomes = await Promise.allSettled(
      Array.from({ length: 32 }, (_, i) => driver.set(`p${i}`, `v${i}`, i === 7 ? 0 : 60_000)),
    );
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(1);
    expect(outcomes[7]?.status).toBe('rejected');
    const stored = await driver.mget(Array.from({ length: 32 }, (_, i) => `p${i}`));
    expect(stored).toEqual(Array.from({ length: 32 }, (_, i) => (i === 7 ? null : `v${i}`)));
    const stats = String(await server.command('INFO', 'commandstats'));
    expect(Number(/cmdstat_set:calls=(\d+)/.exec(stats)?.[1])).toBe(32);
  });
});
