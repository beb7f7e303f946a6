import { describe, expect, it } from 'vitest';
import { createMemoryDriver } from '../../src/drivers/memory.js';
import { createCache, ErrorCode } from '../../src/index.js';
import { useRedisSuite } from '../support/suite.js';

const suite = useRedisSuite();

/** The stored bytes of a key, through a raw RESP reply (`$<len>\r\n<bytes>\r\n`). */
async function stored(key: string): Promise<Buffer> {
  const reply = Buffer.from(await suite.server.command('GET', key), 'latin1');
  const header = reply.indexOf('\r\n');
  return reply.subarray(header + 2, reply.length - 2);
}

const big = { rows: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `lead ${i}`, status: 'new' })) };

describe('codecs and compression', () => {
  it('msgpack round-trips through Redis, keeping Dates, Maps and BigInts', async () => {
    const writer = await suite.ready({ codec: 'msgpack' });
    const value = {
      at: new Date('2026-01-02T03:04:05Z'),
      tags: new Map([['a', 1]]),
      big: 2n ** 70n,
      list: [1, 'x'],
    };
    await writer.set('k', value);
    const bytes = await stored('test:1:d:k');
    expect([...bytes.subarray(0, 3)]).toEqual([0x00, 1, 0b001]); // binary, format 1, msgpack
    const reader = await suite.ready({ codec: 'msgpack' });
    expect(await reader.get('k')).toEqual(value);
  });

  it('compresses entries at or above the threshold only, and reads them back', async () => {
    const cache = await suite.ready({ compression: { threshold: 1024, algorithm: 'gzip' } });
    await cache.set('small', { a: 1 });
    await cache.set('big', big);
    expect((await stored('test:1:d:small')).toString()).toMatch(/^\{/); // plain JSON text
    const bytes = await stored('test:1:d:big');
    expect([...bytes.subarray(0, 3)]).toEqual([0x00, 1, 0b010]); // binary, compressed, gzip
    expect(bytes.length).toBeLessThan(JSON.stringify(big).length / 3);
    const reader = await suite.ready({ compression: true });
    expect(await reader.get('big')).toEqual(big);
  });

  it('a rolling change of codec: every setting reads what the others wrote', async () => {
    const json = await suite.ready();
    const packed = await suite.ready({ codec: 'msgpack', compression: true });
    const fresh = () => suite.ready(); // empty memory tier: reads go to Redis
    await json.set('from-json', big);
    await packed.set('from-msgpack', big);
    expect(await (await suite.ready({ codec: 'msgpack', compression: true })).get('from-json')).toEqual(big);
    expect(await (await fresh()).get('from-msgpack')).toEqual(big);
    expect(await (await fresh()).getMany(['from-json', 'from-msgpack'])).toEqual([big, big]);
  });

  it('corrupt binary entries and unknown formats are counted misses', async () => {
    const cache = await suite.ready({ codec: 'msgpack' });
    await suite.server.command('SET', 'test:1:d:bad', '\u0000\u0001\u0003garbage');
    await suite.server.command('SET', 'test:1:d:future', '\u0000\u0009\u0000whatever');
    expect(await cache.getMany(['bad', 'future'])).toEqual([undefined, undefined]);
    expect(cache.stats().totals.decodeErrors).toBe(2);
  });

  it('applies maxValueBytes to the serialized size before compression', async () => {
    const cache = await suite.ready({ codec: 'msgpack', compression: true, maxValueBytes: 2000 });
    await expect(cache.set('big', big)).rejects.toMatchObject({ code: ErrorCode.ValueTooLarge });
  });

  it('refuses binary settings for a driver that cannot read bytes', () => {
    const textOnly = { ...createMemoryDriver(), name: 'text-only', isReady: true, mgetBuffers: undefined };
    expect(() => createCache({ codec: 'msgpack', redis: { driver: textOnly } })).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidOptions }),
    );
  });
});
