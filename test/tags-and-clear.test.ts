import { describe, expect, it } from 'vitest';
import { createCache } from '../src/index.js';
import { useRedisSuite } from './support/suite.js';

const suite = useRedisSuite();
const ready = suite.ready;

describe('tags', () => {
  it('deleteByTag invalidates tagged entries here and, through Redis, in other instances', async () => {
    const a = await ready();
    const b = await ready();
    const leadsA = a.namespace('leads').forTenant('acme');
    const leadsB = b.namespace('leads').forTenant('acme');
    await leadsA.set('lead:1', { status: 'new' }, { tags: ['lead:1', 'list'] });
    await leadsA.set('lead:2', { status: 'new' }, { tags: ['lead:2', 'list'] });
    await leadsA.set('count', 2);
    expect(await leadsB.get('lead:1')).toEqual({ status: 'new' });

    await leadsA.deleteByTag('lead:1');
    expect(await leadsA.get('lead:1')).toBeUndefined();
    expect(await leadsA.get('lead:2')).toEqual({ status: 'new' });
    // A third instance, reading through Redis only, sees the invalidation.
    const c = await ready();
    expect(await c.namespace('leads').forTenant('acme').get('lead:1')).toBeUndefined();
    expect(await c.namespace('leads').forTenant('acme').get('lead:2')).toEqual({ status: 'new' });

    await leadsB.deleteByTag(['list']);
    const d = await ready();
    expect(await d.namespace('leads').forTenant('acme').getMany(['lead:1', 'lead:2', 'count'])).toEqual([
      undefined,
      undefined,
      2,
    ]);
  });

  it('invalidation is O(1): one INCRBY per tag, no scan of entries', async () => {
    const cache = await ready();
    const scope = cache.namespace('kpi');
    await scope.setMany(Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: i, tags: ['all'] })));
    await suite.server.command('CONFIG', 'RESETSTAT');
    await scope.deleteByTag('all');
    const stats = await suite.server.command('INFO', 'commandstats');
    expect(stats).toMatch(/cmdstat_incrby:calls=1,/);
    expect(stats).not.toMatch(/cmdstat_(scan|keys|del|unlink):/);
    expect(await scope.get('k7')).toBeUndefined();
  });

  it('getOrSet with tags reloads after the tag is invalidated', async () => {
    const cache = await ready();
    let version = 1;
    const load = () =>
      cache.namespace('kpi').getOrSet('revenue', async () => ({ version }), { tags: ['orders'] });
    expect(await load()).toEqual({ version: 1 });
    version = 2;
    expect(await load()).toEqual({ version: 1 });
    await cache.namespace('kpi').deleteByTag('orders');
    expect(await load()).toEqual({ version: 2 });
  });

  it('a load that started before an invalidation is not cached as fresh', async () => {
    const cache = await ready();
    const scope = cache.namespace('kpi');
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = scope.getOrSet(
      'report',
      async () => {
        await gate;
        return 'computed from old rows';
      },
      { tags: ['orders'] },
    );
    await new Promise((r) => setTimeout(r, 20));
    await scope.deleteByTag('orders'); // rows changed while the loader ran
    release();
    expect(await slow).toBe('computed from old rows'); // the caller gets its result...
    const other = await ready();
    expect(await other.namespace('kpi').get('report')).toBeUndefined(); // ...but nobody reads it later
    expect(await scope.get('report')).toBeUndefined();
  });

  it('works in a memory-only cache', async () => {
    const cache = createCache({ prefix: 'mem' });
    suite.track(cache);
    await cache.set('a', 1, { tags: ['t'] });
    await cache.set('b', 2);
    await cache.deleteByTag('t');
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.get('b')).toBe(2);
    await cache.clear();
    expect(await cache.get('b')).toBeUndefined();
  });
});

describe('clear', () => {
  it('clears a tenant in every instance and reclaims its keys with SCAN + UNLINK, never KEYS', async () => {
    const a = await ready();
    const acme = a.namespace('kpi').forTenant('acme');
    const globex = a.namespace('kpi').forTenant('globex');
    await acme.setMany(Array.from({ length: 1200 }, (_, i) => ({ key: `k${i}`, value: i })));
    await globex.set('k1', 'kept');
    await suite.server.command('CONFIG', 'RESETSTAT');
    const reclaimed = new Promise<number>((resolve) => a.on('reclaimed', (e) => resolve(e.keys)));
    await acme.clear();
    expect(await acme.get('k1')).toBeUndefined();
    expect(await reclaimed).toBe(1200);
    const stats = await suite.server.command('INFO', 'commandstats');
    expect(stats).toMatch(/cmdstat_scan:calls=\d+/);
    expect(stats).not.toMatch(/cmdstat_keys:/);
    expect(await suite.server.command('DBSIZE')).toBe(':2\r\n'); // globex's k1 + acme's version counter
    const b = await ready();
    expect(await b.namespace('kpi').forTenant('globex').get('k1')).toBe('kept');
    expect(await b.namespace('kpi').forTenant('acme').get('k1')).toBeUndefined();
  });

  it('an entry written after clear() is valid', async () => {
    const cache = await ready();
    const ns = cache.namespace('s');
    await ns.set('k', 'old');
    await ns.clear({ reclaim: false });
    await ns.set('k', 'new');
    const other = await ready();
    expect(await other.namespace('s').get('k')).toBe('new');
  });

  it('a bump that cannot reach Redis applies locally at once and is replayed when Redis answers again', async () => {
    const a = await ready();
    const b = await ready();
    await a.namespace('n').set('k', 'v');
    expect(await b.namespace('n').get('k')).toBe('v');
    // Writes stall for 500 ms: a's INCRBY times out (200 ms), reads still work.
    await suite.server.command('CLIENT', 'PAUSE', '500', 'WRITE');
    await a.namespace('n').clear({ reclaim: false });
    expect(await a.namespace('n').get('k')).toBeUndefined();
    expect(a.stats().totals.fallbacks).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 600));
    // The next successful call replays the bump; then other instances see it through Redis.
    await a.get('anything');
    const deadline = Date.now() + 3000;
    const c = await ready();
    while (Date.now() < deadline && (await c.namespace('n').get('k')) !== undefined) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await c.namespace('n').get('k')).toBeUndefined();
  });
});
