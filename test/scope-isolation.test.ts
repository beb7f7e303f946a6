import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Cache, CacheScope } from '../src/index.js';
import { escapeSegment, unescapeSegment } from '../src/keys/escape.js';
import { useRedisSuite } from './support/suite.js';

const suite = useRedisSuite();
// Not a fault test: a generous timeout keeps a busy machine from turning a slow write into a
// fallback whose replay would land after the next run's FLUSHALL.
const ready = () => suite.ready({ redis: { commandTimeout: 5000 } });

// Strings built to collide under naive `${ns}:${tenant}:${key}` concatenation or to act as globs.
const adversarial = fc.constantFrom(
  'a',
  'a:b',
  'b',
  'b:c',
  ':',
  '::',
  '*',
  '?',
  '[a-z]',
  '\\',
  '{tag}',
  '{',
  '}',
  ' ',
  '\t',
  '\n',
  '%',
  '%3A',
  '%25',
  '@',
  '@a',
  'é',
  'e\u0301',
  '日本',
  '🙂',
  '\uD800',
  '\uDC00',
  '\u00A0',
  '\u2028',
  'a b',
  'x'.repeat(120),
);
// Short strings over a tiny alphabet rich in separators collide often under naive joining.
const joined = fc
  .array(fc.constantFrom('a', 'b', ':', '@', '%', '3A', '*'), { minLength: 1, maxLength: 4 })
  .map((p) => p.join(''));
const segment = fc.oneof(adversarial, joined, fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }));
const keyPart = segment;
type Address = { namespace: string | undefined; tenant: string | undefined; key: string };
const address = fc.record({
  namespace: fc.option(segment, { nil: undefined }),
  tenant: fc.option(segment, { nil: undefined }),
  key: keyPart,
});

function view(cache: Cache, a: Address): CacheScope {
  let scope: CacheScope = cache;
  if (a.namespace !== undefined) scope = scope.namespace(a.namespace);
  if (a.tenant !== undefined) scope = scope.forTenant(a.tenant);
  return scope;
}

const id = (a: Address) => JSON.stringify([a.namespace ?? null, a.tenant ?? null, a.key]);

describe('scope isolation', () => {
  it('escaping is reversible and leaves no separator, glob or hash-tag character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const escaped = escapeSegment(s);
        expect(unescapeSegment(escaped)).toBe(s);
        expect(escaped).not.toMatch(/[:*?[\]\\{}@\s]/);
        expect(escaped.isWellFormed()).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it("no (namespace, tenant, key) can read another one's entry, through Redis", async () => {
    const writer = await ready();
    await fc.assert(
      fc.asyncProperty(
        fc.array(address, { maxLength: 20 }),
        segment,
        segment,
        segment,
        async (random, a, b, c) => {
          // Addresses that naive `ns:tenant:key` joining maps to the same string, plus random ones.
          const crafted: Address[] = [
            { namespace: a, tenant: undefined, key: `${b}:${c}` },
            { namespace: `${a}:${b}`, tenant: undefined, key: c },
            { namespace: a, tenant: b, key: c },
            { namespace: `${a}:@${b}`, tenant: undefined, key: c },
            { namespace: undefined, tenant: a, key: b },
            { namespace: undefined, tenant: undefined, key: `@${a}:${b}` },
          ];
          const addresses = [...new Map([...crafted, ...random].map((x) => [id(x), x])).values()];
          await suite.server.command('FLUSHALL');
          await Promise.all(addresses.map((x) => view(writer, x).set(x.key, { owner: id(x) })));
          // A fresh instance has an empty memory tier: every read goes to Redis.
          const reader = await ready();
          const values = await Promise.all(
            addresses.map((x) => view(reader, x).get<{ owner: string }>(x.key)),
          );
          expect(values.map((v) => v?.owner)).toEqual(addresses.map(id));
          // One Redis key per address: no two addresses share one (writes create no version keys).
          expect(await suite.server.command('DBSIZE')).toBe(`:${addresses.length}\r\n`);
          await reader.close();
        },
      ),
      { numRuns: 60 },
    );
  });

  it('clear() and deleteByTag() of one tenant never touch another, whatever the ids', async () => {
    const cache = await ready();
    await fc.assert(
      fc.asyncProperty(segment, segment, async (t1, t2) => {
        fc.pre(t1 !== t2);
        const a = cache.namespace('kpi').forTenant(t1);
        const b = cache.namespace('kpi').forTenant(t2);
        await a.set('k', 'a', { tags: ['leads'] });
        await b.set('k', 'b', { tags: ['leads'] });
        await a.deleteByTag('leads');
        expect(await b.get('k')).toBe('b');
        await b.set('k2', 'b2');
        await a.clear();
        expect(await a.get('k2')).toBeUndefined();
        expect(await b.get('k2')).toBe('b2');
        const fresh = await ready();
        expect(await fresh.namespace('kpi').forTenant(t2).get('k2')).toBe('b2');
        await fresh.close();
      }),
      { numRuns: 40 },
    );
  });

  it('keeps the classic concatenation collisions apart', async () => {
    const writer = await ready();
    const pairs: Array<[Address, Address]> = [
      [
        { namespace: 'a', tenant: undefined, key: 'b:c' },
        { namespace: 'a:b', tenant: undefined, key: 'c' },
      ],
      [
        { namespace: 'a', tenant: 'b', key: 'c' },
        { namespace: 'a:@b', tenant: undefined, key: 'c' },
      ],
      [
        { namespace: undefined, tenant: 't', key: 'k' },
        { namespace: undefined, tenant: undefined, key: '@t:k' },
      ],
      [
        { namespace: undefined, tenant: '\uD800', key: 'k' },
        { namespace: undefined, tenant: '\uDC00', key: 'k' },
      ],
      [
        { namespace: undefined, tenant: '%3A', key: 'k' },
        { namespace: undefined, tenant: ':', key: 'k' },
      ],
    ];
    for (const [x, y] of pairs) {
      await view(writer, x).set(x.key, 'x');
      const reader = await ready();
      expect(await view(reader, y).get(y.key)).toBeUndefined();
      expect(await view(reader, x).get(x.key)).toBe('x');
    }
  });

  it('a namespace clear reaches its tenants but not a namespace whose name extends it', async () => {
    const cache = await ready();
    await cache.namespace('kpi').forTenant('acme').set('k', 1);
    await cache.namespace('kpi*').set('k', 2);
    await cache.namespace('kpis').set('k', 3);
    let reclaimed = 0;
    const done = new Promise<void>((resolve) =>
      cache.on('reclaimed', (e) => {
        reclaimed = e.keys;
        resolve();
      }),
    );
    await cache.namespace('kpi').clear();
    await done;
    expect(reclaimed).toBe(1);
    expect(await cache.namespace('kpi').forTenant('acme').get('k')).toBeUndefined();
    const fresh = await ready();
    expect(await fresh.namespace('kpi*').get('k')).toBe(2);
    expect(await fresh.namespace('kpis').get('k')).toBe(3);
    expect(await fresh.namespace('kpi').forTenant('acme').get('k')).toBeUndefined();
  });
});
