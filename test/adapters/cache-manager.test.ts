import { createCache as createCacheManager } from 'cache-manager';
import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { LarderKeyvStore } from '../../src/adapters/keyv-store.js';
import type { CacheScope } from '../../src/index.js';
import { useRedisSuite } from '../support/suite.js';

const suite = useRedisSuite();

/** cache-manager 7 on a Larder scope: the one-line store swap of docs/migration.md. */
function managerOn(scope: CacheScope, ttl?: number) {
  return createCacheManager({ stores: [new Keyv({ store: new LarderKeyvStore(scope) })], ttl });
}

describe('cache-manager 7 on LarderKeyvStore', () => {
  it('set, get and del', async () => {
    const manager = managerOn((await suite.ready()).namespace('cm'));
    expect(await manager.get('user:1')).toBeUndefined();
    expect(await manager.set('user:1', { name: 'Ada' }, 60_000)).toEqual({ name: 'Ada' });
    expect(await manager.get('user:1')).toEqual({ name: 'Ada' });
    const other = managerOn((await suite.ready()).namespace('cm'));
    expect(await other.get('user:1')).toEqual({ name: 'Ada' });
    expect(await manager.del('user:1')).toBe(true);
    expect(await managerOn((await suite.ready()).namespace('cm')).get('user:1')).toBeUndefined();
  });

  it('passes its TTLs to Redis in milliseconds and reports the expiry', async () => {
    const manager = managerOn((await suite.ready()).namespace('cm'), 30_000);
    await manager.set('with-ttl', 1, 10_000);
    await manager.set('default-ttl', 2);
    const pttl = async (key: string) => Number((await suite.server.command('PTTL', key)).slice(1));
    expect(await pttl('test:1:d:cm:keyv:keyv%3Awith-ttl')).toBeLessThanOrEqual(10_000);
    expect(await pttl('test:1:d:cm:keyv:keyv%3Adefault-ttl')).toBeGreaterThan(10_000);
    expect(await pttl('test:1:d:cm:keyv:keyv%3Adefault-ttl')).toBeLessThanOrEqual(30_000);
    const expires = await manager.ttl('with-ttl');
    expect(expires).toBeGreaterThan(Date.now());
    expect(expires).toBeLessThanOrEqual(Date.now() + 10_000);
  });

  it('wrap() runs the function once, then serves the cached value, across instances', async () => {
    const manager = managerOn((await suite.ready()).namespace('cm'));
    let calls = 0;
    const load = async () => {
      calls++;
      return { report: 'q3', rows: [1, 2, 3] };
    };
    const [first, second] = await Promise.all([
      manager.wrap('report:q3', load, 60_000),
      manager.wrap('report:q3', load, 60_000),
    ]);
    expect(first).toEqual({ report: 'q3', rows: [1, 2, 3] });
    expect(second).toEqual(first);
    expect(await manager.wrap('report:q3', load, 60_000)).toEqual(first);
    const other = managerOn((await suite.ready()).namespace('cm'));
    expect(await other.wrap('report:q3', load, 60_000)).toEqual(first);
    expect(calls).toBe(1);
  });

  it('mset, mget, mdel and clear stay inside the store scope', async () => {
    const cache = await suite.ready();
    const manager = managerOn(cache.namespace('cm'));
    const neighbour = managerOn(cache.namespace('other'));
    await manager.mset([
      { key: 'a', value: 1 },
      { key: 'b', value: 2, ttl: 60_000 },
    ]);
    await neighbour.set('a', 'neighbour');
    expect(await manager.mget(['a', 'missing', 'b'])).toEqual([1, undefined, 2]);
    await manager.mdel(['a']);
    expect(await manager.get('a')).toBeUndefined();
    await manager.clear();
    expect(await manager.get('b')).toBeUndefined();
    expect(await neighbour.get('a')).toBe('neighbour');
  });
});
