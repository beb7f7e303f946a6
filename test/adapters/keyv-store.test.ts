import Keyv, { type KeyvOptions, type KeyvStoreAdapter } from 'keyv';
import { describe, expect, it } from 'vitest';
import { LarderKeyvStore } from '../../src/adapters/keyv-store.js';
import { type CacheScope, ErrorCode, isLarderError } from '../../src/index.js';
import { useRedisSuite } from '../support/suite.js';

const suite = useRedisSuite();

/** A Keyv on a fresh store over `scope`, with Keyv's defaults (namespace `keyv`, JSON serializer). */
function keyvOn(scope: CacheScope, options: Omit<KeyvOptions, 'store'> = {}): Keyv {
  return new Keyv(new LarderKeyvStore(scope), options);
}

async function pttl(key: string): Promise<number> {
  return Number((await suite.server.command('PTTL', key)).slice(1));
}

describe('LarderKeyvStore: the Keyv contract', () => {
  it('type-checks as a KeyvStoreAdapter of the installed Keyv', async () => {
    // Keyv 5 declares the adapter's setMany as Promise<void> yet returns what it resolves from its
    // own setMany (declared Promise<boolean[]>): the store resolves booleans so Keyv's holds.
    const adapter: Omit<KeyvStoreAdapter, 'setMany'> &
      Required<Pick<KeyvStoreAdapter, 'getMany' | 'has' | 'hasMany' | 'deleteMany' | 'disconnect'>> =
      new LarderKeyvStore(suite.cache());
    expect(typeof adapter.on).toBe('function');
    expect(adapter.opts).toMatchObject({ dialect: 'larder' });
    expect(
      await new Keyv(new LarderKeyvStore(await suite.ready())).setMany([{ key: 'k', value: 1 }]),
    ).toEqual([true]);
  });

  it('sets, gets, checks and deletes', async () => {
    const keyv = keyvOn((await suite.ready()).namespace('sessions'));
    expect(await keyv.get('foo')).toBeUndefined();
    expect(await keyv.set('foo', 'bar')).toBe(true);
    expect(await keyv.get('foo')).toBe('bar');
    expect(await keyv.has('foo')).toBe(true);
    expect(await keyv.has('fizz')).toBe(false);
    expect(await keyv.delete('foo')).toBe(true);
    expect(await keyv.delete('foo')).toBe(false);
    expect(await keyv.get('foo')).toBeUndefined();
  });

  it('reads what another instance wrote, through Redis', async () => {
    const writer = keyvOn((await suite.ready()).namespace('sessions'));
    const reader = keyvOn((await suite.ready()).namespace('sessions'));
    await writer.set('user:1', { name: 'Ada' });
    expect(await reader.get('user:1')).toEqual({ name: 'Ada' });
  });

  it('getMany, setMany, hasMany and deleteMany keep order and report what existed', async () => {
    const cache = await suite.ready();
    const keyv = keyvOn(cache.namespace('sessions'));
    expect(
      await keyv.setMany([
        { key: 'a', value: 1 },
        { key: 'b', value: { two: 2 }, ttl: 60_000 },
      ]),
    ).toEqual([true, true]);
    await keyv.set('c', 'three');
    const reader = keyvOn((await suite.ready()).namespace('sessions'));
    expect(await reader.get(['a', 'missing', 'b', 'c'])).toEqual([1, undefined, { two: 2 }, 'three']);
    expect(await reader.getMany(['missing'])).toEqual([undefined]);
    expect(await reader.hasMany(['a', 'missing'])).toEqual([true, false]);
    expect(await reader.deleteMany(['a', 'missing'])).toBe(true);
    expect(await reader.deleteMany(['a', 'missing'])).toBe(false);
    expect(await reader.deleteMany([])).toBe(false);
    // A third instance reads Redis (the writer's memory tier may hold `a` for up to memory.maxTtl).
    const third = keyvOn((await suite.ready()).namespace('sessions'));
    expect(await third.get(['a', 'b'])).toEqual([undefined, { two: 2 }]);
  });

  it('passes Keyv TTLs in milliseconds to Redis, and none as the cache defaultTtl', async () => {
    const cache = await suite.ready({ defaultTtl: '1m' });
    const keyv = keyvOn(cache.namespace('sessions'));
    await keyv.set('short', 'v', 5_000);
    await keyv.set('default', 'v');
    // Keyv prefixes keys with its namespace; the store keeps them as sent, inside a Larder
    // namespace of the same name.
    const short = await pttl('test:1:d:sessions:keyv:keyv%3Ashort');
    expect(short).toBeGreaterThan(4_000);
    expect(short).toBeLessThanOrEqual(5_000);
    const fallback = await pttl('test:1:d:sessions:keyv:keyv%3Adefault');
    expect(fallback).toBeGreaterThan(50_000);
    expect(fallback).toBeLessThanOrEqual(60_000);

    const withDefault = new Keyv(new LarderKeyvStore(cache.namespace('sessions'), { defaultTtl: '2h' }));
    await withDefault.set('long', 'v');
    expect(await pttl('test:1:d:sessions:keyv:keyv%3Along')).toBeGreaterThan(3_600_000);
    // Keyv's own ttl option reaches the store as a per-call TTL.
    const keyvTtl = keyvOn(cache.namespace('sessions'), { ttl: 7_000 });
    await keyvTtl.set('keyv-ttl', 'v');
    expect(await pttl('test:1:d:sessions:keyv:keyv%3Akeyv-ttl')).toBeLessThanOrEqual(7_000);
  });

  it('expires entries in Redis, not only in Keyv', async () => {
    const store = new LarderKeyvStore((await suite.ready()).namespace('sessions'));
    const keyv = new Keyv(store);
    await keyv.set('soon', 'v', 150);
    expect(await keyv.get('soon')).toBe('v');
    await new Promise((r) => setTimeout(r, 250));
    expect(await keyv.get('soon')).toBeUndefined();
    // Asked directly, the store has nothing either: Larder expired it in both tiers.
    expect(await store.get('keyv:soon')).toBeUndefined();
    expect(await suite.server.command('EXISTS', 'test:1:d:sessions:keyv:keyv%3Asoon')).toBe(':0\r\n');
  });

  it('clear() empties its own namespace in O(1) and nothing else', async () => {
    const cache = await suite.ready();
    const scope = cache.namespace('sessions');
    const keyv1 = keyvOn(scope, { namespace: 'keyv1' });
    const keyv2 = keyvOn(scope, { namespace: 'keyv2' });
    await keyv1.set('foo', 'keyv1');
    await keyv1.set('bar', 'keyv1');
    await keyv2.set('foo', 'keyv2');
    await scope.set('own', 'larder');
    await suite.server.command('CONFIG', 'RESETSTAT');
    const reclaimed = new Promise<number>((resolve) => cache.on('reclaimed', (e) => resolve(e.keys)));
    await keyv1.clear();
    const stats = await suite.server.command('INFO', 'commandstats');
    expect(stats).toMatch(/cmdstat_incrby:calls=1,/);
    expect(stats).not.toMatch(/cmdstat_(keys|del):/);
    expect(await keyv1.get('foo')).toBeUndefined();
    expect(await keyv1.get('bar')).toBeUndefined();
    expect(await keyv2.get('foo')).toBe('keyv2');
    expect(await reclaimed).toBe(2); // the background SCAN + UNLINK freed keyv1's two keys only

    const other = await suite.ready();
    expect(await keyvOn(other.namespace('sessions'), { namespace: 'keyv1' }).get('foo')).toBeUndefined();
    expect(await keyvOn(other.namespace('sessions'), { namespace: 'keyv2' }).get('foo')).toBe('keyv2');
    expect(await other.namespace('sessions').get('own')).toBe('larder');
  });

  it('keeps stores on different scopes apart, even with the same Keyv namespace', async () => {
    const cache = await suite.ready();
    const acme = keyvOn(cache.forTenant('acme'));
    const globex = keyvOn(cache.forTenant('globex'));
    await acme.set('plan', 'pro');
    await globex.set('plan', 'free');
    expect(await acme.get('plan')).toBe('pro');
    expect(await globex.get('plan')).toBe('free');
    expect(await globex.delete('plan')).toBe(true);
    expect(await acme.get('plan')).toBe('pro');
    await globex.set('seats', 3);
    await acme.clear();
    const reader = await suite.ready();
    expect(await keyvOn(reader.forTenant('acme')).get('plan')).toBeUndefined();
    expect(await keyvOn(reader.forTenant('globex')).get('seats')).toBe(3);
  });

  it('without a Keyv namespace, writes to the scope itself, readable through Larder', async () => {
    const cache = await suite.ready();
    const scope = cache.namespace('sessions');
    const keyv = new Keyv({
      store: new LarderKeyvStore(scope),
      namespace: undefined,
      serialize: undefined,
      deserialize: undefined,
    });
    expect(keyv.store.namespace).toBeUndefined();
    await keyv.set('plain', { n: 1 });
    expect(await scope.get('plain')).toEqual({ value: { n: 1 } });
  });
});

describe('LarderKeyvStore: values', () => {
  const values: Array<[string, unknown]> = [
    ['a string', 'bar'],
    ['a string starting with a colon', ':base64:not really'],
    ['an empty string', ''],
    ['a number', 42.5],
    ['zero', 0],
    ['false', false],
    ['null', null],
    ['an array', [1, 'two', { three: 3 }]],
    ['a nested object', { id: 'u1', roles: ['admin'], profile: { age: 30, tags: [] } }],
    ['unicode', 'żółw 🐢 \u0000 end'],
  ];

  it.each(values)("round-trips %s with Keyv's default serializer, across instances", async (_, value) => {
    const writer = keyvOn((await suite.ready()).namespace('values'));
    await writer.set('k', value);
    expect(await writer.get('k')).toEqual(value);
    const reader = keyvOn((await suite.ready()).namespace('values'));
    expect(await reader.get('k')).toEqual(value);
  });

  it('round-trips Buffers with the default serializer', async () => {
    const writer = keyvOn((await suite.ready()).namespace('values'));
    await writer.set('buf', Buffer.from([0, 1, 254, 255]));
    const reader = keyvOn((await suite.ready()).namespace('values'));
    expect(Buffer.compare((await reader.get('buf')) as Buffer, Buffer.from([0, 1, 254, 255]))).toBe(0);
  });

  it.each(values)(
    'round-trips %s as a raw object (no Keyv serializer), across instances',
    async (_, value) => {
      const raw = { serialize: undefined, deserialize: undefined };
      const writer = keyvOn((await suite.ready()).namespace('values'), raw);
      await writer.set('k', value, 60_000);
      expect(await writer.get('k')).toEqual(value);
      const reader = keyvOn((await suite.ready()).namespace('values'), raw);
      expect(await reader.get('k')).toEqual(value);
      // The expiry Keyv records travels with the value.
      const rawEntry = await reader.getRaw('k');
      expect(rawEntry?.expires).toBeGreaterThan(Date.now());
    },
  );
});

describe('LarderKeyvStore: errors', () => {
  it('rejects bad input with LarderError at the store', async () => {
    const store = new LarderKeyvStore((await suite.ready()).namespace('sessions'));
    await expect(store.get('')).rejects.toMatchObject({ code: ErrorCode.InvalidKey });
    await expect(store.set('x'.repeat(2000), 'v')).rejects.toMatchObject({ code: ErrorCode.InvalidKey });
    await expect(store.set('k', undefined)).rejects.toMatchObject({ code: ErrorCode.InvalidValue });
    await expect(store.set('k', 10n)).rejects.toMatchObject({ code: ErrorCode.InvalidValue });
    await expect(store.set('k', 'v', -5)).rejects.toMatchObject({ code: ErrorCode.InvalidTtl });
    await expect(
      store.setMany([
        { key: 'ok', value: 1 },
        { key: '', value: 2 },
      ]),
    ).rejects.toMatchObject({
      code: ErrorCode.InvalidKey,
    });
    expect(await store.get('ok')).toBeUndefined(); // all or nothing
    expect(() => {
      store.namespace = 42 as unknown as string;
    }).toThrow(expect.objectContaining({ code: ErrorCode.InvalidNamespace }));
    expect(() => new LarderKeyvStore(new Map() as unknown as CacheScope)).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidOptions }),
    );
  });

  it("surfaces them through Keyv: an 'error' event and false by default, thrown with throwOnErrors", async () => {
    const scope = (await suite.ready()).namespace('sessions');
    const longKey = 'x'.repeat(2000);
    const keyv = keyvOn(scope);
    const errors: unknown[] = [];
    keyv.on('error', (error: unknown) => errors.push(error));
    expect(await keyv.set(longKey, 'v')).toBe(false);
    expect(errors).toHaveLength(1);
    expect(isLarderError(errors[0], ErrorCode.InvalidKey)).toBe(true);

    const strict = keyvOn(scope, { throwOnErrors: true });
    strict.on('error', () => {});
    await expect(strict.set(longKey, 'v')).rejects.toMatchObject({ code: ErrorCode.InvalidKey });
    await expect(strict.get(longKey)).rejects.toMatchObject({ code: ErrorCode.InvalidKey });
    await expect(strict.has(longKey)).rejects.toMatchObject({ code: ErrorCode.InvalidKey });
  });

  it('absorbs a Redis outage: writes and reads go on from memory, no error is emitted', async () => {
    const cache = await suite.ready();
    const fallbacks: string[] = [];
    cache.on('fallback', (e) => fallbacks.push(e.operation));
    const keyv = keyvOn(cache.namespace('sessions'), { throwOnErrors: true });
    const errors: unknown[] = [];
    keyv.on('error', (error: unknown) => errors.push(error));
    await keyv.set('before', 'v1');
    await suite.server.kill();

    expect(await keyv.set('during', 'v2')).toBe(true);
    expect(await keyv.get('during')).toBe('v2');
    expect(await keyv.get('missing')).toBeUndefined();
    expect(await keyv.has('during')).toBe(true);
    expect(await keyv.delete('during')).toBe(true);
    await keyv.clear();
    expect(await keyv.get('before')).toBeUndefined();
    expect(errors).toEqual([]);
    expect(fallbacks.length).toBeGreaterThan(0);
  });

  it('disconnect() leaves the cache open', async () => {
    const cache = await suite.ready();
    const keyv = keyvOn(cache.namespace('sessions'));
    await keyv.set('k', 'v');
    await keyv.disconnect();
    // The cache still works; what Keyv stored is its serialized envelope.
    expect(await cache.namespace('sessions').namespace('keyv').get('keyv:k')).toBe('{"value":"v"}');
  });
});
