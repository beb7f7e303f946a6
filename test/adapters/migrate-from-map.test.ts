import { LRUCache } from 'lru-cache';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { migrateFromMap, type MigrationProgress } from '../../src/adapters/migrate-from-map.js';
import { CacheScope, ErrorCode } from '../../src/index.js';
import { useRedisSuite } from '../support/suite.js';

const suite = useRedisSuite();

afterEach(() => {
  vi.restoreAllMocks();
});

type Context = { messages: Array<{ role: string; text: string }>; updatedAt: string };

// Legacy maps from the seed: keyed `${orgId}:${phone}`.
const tenantOf = (key: string) => {
  const colon = key.indexOf(':');
  if (colon < 0) throw new Error(`no orgId in ${key}`);
  return key.slice(0, colon);
};
const phoneOf = (key: string) => key.slice(key.indexOf(':') + 1);

/** `orgs` × `phones` conversation contexts; every org has the same phone numbers. */
function legacyContexts(orgs: number, phones: number): Map<string, Context> {
  const map = new Map<string, Context>();
  for (let p = 0; p < phones; p++) {
    for (let o = 0; o < orgs; o++) {
      map.set(`org-${o}:+1555${String(p).padStart(7, '0')}`, {
        messages: [{ role: 'user', text: `hello from org ${o}, phone ${p}` }],
        updatedAt: '2026-01-01T00:00:00.000Z',
      });
    }
  }
  return map;
}

async function dbsize(): Promise<number> {
  return Number((await suite.server.command('DBSIZE')).slice(1));
}

describe('migrateFromMap', () => {
  it('migrates a 10k-entry Map, split by tenant, in batches with monotonic progress', async () => {
    const cache = await suite.ready();
    const map = legacyContexts(20, 500);
    const setMany = vi.spyOn(CacheScope.prototype, 'setMany');
    const progress: MigrationProgress[] = [];
    const report = await migrateFromMap(map, {
      target: cache.namespace('conversations'),
      tenantOf,
      keyOf: phoneOf,
      ttl: '1h',
      onProgress: (p) => progress.push(p),
    });

    expect(report).toEqual({ total: 10_000, written: 10_000, skipped: [] });
    expect(setMany).toHaveBeenCalledTimes(20); // 500 entries per tenant, one write each
    expect(await dbsize()).toBe(10_000);
    expect(progress[0]).toEqual({ done: 0, total: 10_000 });
    expect(progress.at(-1)).toEqual({ done: 10_000, total: 10_000 });
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.done).toBeGreaterThan(progress[i - 1]!.done);
      expect(progress[i]!.total).toBe(10_000);
    }

    // A fresh instance reads every entry from Redis through its tenant, and only there.
    const reader = await suite.ready();
    const conversations = reader.namespace('conversations');
    for (const org of [0, 7, 19]) {
      const keys = [...map.keys()].filter((k) => k.startsWith(`org-${org}:`));
      expect(keys).toHaveLength(500);
      const values = await conversations.forTenant(`org-${org}`).getMany(keys.map(phoneOf));
      expect(values).toEqual(keys.map((k) => map.get(k)));
    }
    const phone = '+15550000042';
    expect(await conversations.forTenant('org-3').get<Context>(phone)).toEqual(map.get(`org-3:${phone}`));
    expect(await conversations.forTenant('org-4').get<Context>(phone)).toEqual(map.get(`org-4:${phone}`));
    expect(await conversations.get(phone)).toBeUndefined();
    expect(await conversations.forTenant('org-20').get(phone)).toBeUndefined();
    const pttl = Number(
      (await suite.server.command('PTTL', `test:1:d:conversations:@org-3:${phone}`)).slice(1),
    );
    expect(pttl).toBeGreaterThan(3_500_000);
  });

  it('skips bad entries with a reason and a code, and writes all the others', async () => {
    const cache = await suite.ready({ maxValueBytes: 1024 });
    const circular: Record<string, unknown> = { id: 1 };
    circular.self = circular;
    const entries: Array<[string, unknown]> = [
      ['org-1:+15550000001', { ok: 1 }],
      ['org-1:+15550000002', undefined],
      ['org-1:+15550000003', () => 'callback'],
      ['org-1:+15550000004', { count: 10n }],
      ['org-1:+15550000005', circular],
      ['org-1:+15550000006', { seen: new Set(['a']) }],
      ['org-1:', { emptyPhone: true }],
      [`org-1:${'9'.repeat(2000)}`, { longPhone: true }],
      [':+15550000007', { noOrg: true }],
      [`${'o'.repeat(300)}:+15550000008`, { longOrg: true }],
      ['no-org+15550000012', { broken: true }],
      ['org-1:+15550000009', 'x'.repeat(5000)],
      ['org-1:+1-555-000-0001', { duplicate: true }],
      ['org-2:+15550000001', { ok: 2 }],
      ['org-1:+15550000010', null],
      ['org-1:+15550000011', 'fine'],
    ];
    const map = new Map(entries);
    const report = await migrateFromMap(map, {
      target: cache.namespace('conversations'),
      tenantOf,
      // Normalizing phones makes `+1-555-000-0001` the same entry as `+15550000001`.
      keyOf: (key) => phoneOf(key).replace(/[^\d+]/g, ''),
    });

    expect(report.total).toBe(16);
    expect(report.written).toBe(4);
    expect(report.skipped.map((s) => [s.key.slice(0, 24), s.code])).toEqual([
      ['org-1:+15550000002', ErrorCode.InvalidValue],
      ['org-1:+15550000003', ErrorCode.InvalidValue],
      ['org-1:+15550000004', ErrorCode.InvalidValue],
      ['org-1:+15550000005', ErrorCode.InvalidValue],
      ['org-1:+15550000006', ErrorCode.InvalidValue],
      ['org-1:', ErrorCode.InvalidKey],
      [`org-1:${'9'.repeat(18)}`, ErrorCode.InvalidKey],
      [':+15550000007', ErrorCode.InvalidTenant],
      ['o'.repeat(24), ErrorCode.InvalidTenant],
      ['no-org+15550000012', ErrorCode.InvalidTenant],
      ['org-1:+15550000009', ErrorCode.ValueTooLarge],
      ['org-1:+1-555-000-0001', ErrorCode.InvalidKey],
    ]);
    const reasons = Object.fromEntries(report.skipped.map((s) => [s.key.slice(0, 24), s.reason]));
    expect(reasons['org-1:+15550000002']).toMatch(/undefined/);
    expect(reasons['org-1:+15550000003']).toMatch(/function/);
    expect(reasons['org-1:+15550000004']).toMatch(/BigInt/);
    expect(reasons['org-1:+15550000005']).toMatch(/circular/i);
    expect(reasons['org-1:+15550000006']).toMatch(/"seen" is a Set/);
    expect(reasons['org-1:']).toMatch(/non-empty string/);
    expect(reasons[`org-1:${'9'.repeat(18)}`]).toMatch(/maxKeyLength/);
    expect(reasons['o'.repeat(24)]).toMatch(/maxTenantLength \(256\)/);
    expect(reasons['no-org+15550000012']).toMatch(/tenantOf threw: no orgId in no-org/);
    expect(reasons['org-1:+15550000009']).toMatch(/maxValueBytes/);
    expect(reasons['org-1:+1-555-000-0001']).toMatch(
      /same cache entry as the earlier Map key "org-1:\+15550000001"/,
    );

    const reader = await suite.ready();
    const org1 = reader.namespace('conversations').forTenant('org-1');
    expect(await org1.getMany(['+15550000001', '+15550000010', '+15550000011'])).toEqual([
      { ok: 1 },
      null,
      'fine',
    ]);
    expect(await reader.namespace('conversations').forTenant('org-2').get('+15550000001')).toEqual({ ok: 2 });
    expect(await dbsize()).toBe(4);
  });

  it('isolates a bad entry found at write time in few calls, keeping the batch', async () => {
    const cache = await suite.ready();
    const map = new Map<string, number>();
    for (let i = 0; i < 500; i++) map.set(`k${i}`, i);
    map.set('x'.repeat(5000), -1); // over maxKeyLength: only setMany can tell
    const setMany = vi.spyOn(CacheScope.prototype, 'setMany');
    const report = await migrateFromMap(map, { target: cache });
    expect(report.written).toBe(500);
    expect(report.skipped).toEqual([
      { key: 'x'.repeat(5000), code: ErrorCode.InvalidKey, reason: expect.stringContaining('maxKeyLength') },
    ]);
    // One failed write of 501, then halves down to the bad entry: 2 per level, log2(501) levels.
    expect(setMany.mock.calls.length).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(501)));
    expect(await dbsize()).toBe(500);
  });

  it('is idempotent: a re-run reports the same and leaves the same data', async () => {
    const cache = await suite.ready();
    const map = legacyContexts(3, 100);
    map.set('org-0:bad', undefined as unknown as Context);
    const options = { target: cache.namespace('conversations'), tenantOf, keyOf: phoneOf, batchSize: 64 };
    const first = await migrateFromMap(map, options);
    const keysAfterFirst = await dbsize();
    const second = await migrateFromMap(map, options);
    expect(second).toEqual(first);
    expect(first).toMatchObject({ total: 301, written: 300 });
    expect(await dbsize()).toBe(keysAfterFirst);
    expect(keysAfterFirst).toBe(300);
    const reader = await suite.ready();
    expect(await reader.namespace('conversations').forTenant('org-2').get('+15550000099')).toEqual(
      map.get('org-2:+15550000099'),
    );
  });

  it('turns number keys into strings by default and skips other keys without keyOf', async () => {
    const cache = await suite.ready();
    const map = new Map<unknown, string>([
      [42, 'answer'],
      ['name', 'plain'],
      [{ id: 1 }, 'object key'],
    ]);
    const report = await migrateFromMap(map, { target: cache.namespace('legacy') });
    expect(report.written).toBe(2);
    expect(report.skipped).toEqual([
      { key: '[object Object]', code: ErrorCode.InvalidKey, reason: expect.stringContaining('pass keyOf') },
    ]);
    expect(await cache.namespace('legacy').getMany(['42', 'name'])).toEqual(['answer', 'plain']);
  });

  it('reads anything Map-like, such as an LRUCache', async () => {
    const cache = await suite.ready();
    const lru = new LRUCache<string, { plan: string }>({ max: 100 });
    lru.set('acme:plan', { plan: 'pro' });
    lru.set('globex:plan', { plan: 'free' });
    const report = await migrateFromMap(lru, { target: cache, tenantOf, keyOf: phoneOf });
    expect(report).toEqual({ total: 2, written: 2, skipped: [] });
    expect(await cache.forTenant('globex').get('plan')).toEqual({ plan: 'free' });
  });

  it('handles an empty Map', async () => {
    const progress: MigrationProgress[] = [];
    const report = await migrateFromMap(new Map(), {
      target: await suite.ready(),
      onProgress: (p) => progress.push(p),
    });
    expect(report).toEqual({ total: 0, written: 0, skipped: [] });
    expect(progress).toEqual([{ done: 0, total: 0 }]);
  });

  it('throws for problems of the whole migration instead of skipping every entry', async () => {
    const cache = await suite.ready();
    const map = new Map([['k', 1]]);
    await expect(migrateFromMap(map, { target: cache, batchSize: 0 })).rejects.toMatchObject({
      code: ErrorCode.InvalidOptions,
      message: 'Expected `batchSize` to be an integer from 1 to 10000, got 0 (number)',
    });
    await expect(migrateFromMap(map, { target: {} as CacheScope })).rejects.toMatchObject({
      code: ErrorCode.InvalidOptions,
      details: { option: 'target' },
    });
    await expect(
      migrateFromMap([['k', 1]] as unknown as Map<string, number>, { target: cache }),
    ).rejects.toMatchObject({
      code: ErrorCode.InvalidOptions,
      details: { option: 'map' },
    });
    await expect(migrateFromMap(map, { target: cache, ttl: -1 })).rejects.toMatchObject({
      code: ErrorCode.InvalidTtl,
    });
    const aborted = migrateFromMap(map, {
      target: cache,
      onProgress: ({ done }) => {
        if (done > 0) throw new Error('stop');
      },
    });
    await expect(aborted).rejects.toThrow('stop');
    await cache.close();
    await expect(migrateFromMap(map, { target: cache })).rejects.toMatchObject({ code: ErrorCode.Closed });
  });
});
