import { describe, expect, it } from 'vitest';
import { createCache } from '../../src/index.js';

describe('stats per tenant (maxTenants)', () => {
  it('counts each tenant scope, includes them in their namespace, and bounds how many are tracked', async () => {
    const cache = createCache({ redis: false, maxTenants: 2 });
    const leads = cache.namespace('leads');
    const [a, b, c] = ['org-a', 'org-b', 'org-c'].map((t) => leads.forTenant(t)) as [
      ReturnType<typeof leads.forTenant>,
      ReturnType<typeof leads.forTenant>,
      ReturnType<typeof leads.forTenant>,
    ];
    await a.getOrSet('k', () => 1); // miss
    await a.getOrSet('k', () => 1); // hit
    await a.getOrSet('k', () => 1); // hit
    await b.getOrSet('k', () => 2); // miss
    await c.getOrSet('k', () => 3); // miss: org-c is past the bound
    await leads.getOrSet('own', () => 4); // miss on the namespace itself

    const stats = cache.stats();
    expect(Object.keys(stats.tenants).sort()).toEqual(['leads/@org-a', 'leads/@org-b']);
    expect(stats.tenants['leads/@org-a']).toMatchObject({
      hits: { memory: 2, redis: 0, total: 2 },
      misses: 1,
      loaderCalls: 1,
      hitRate: 2 / 3,
    });
    expect(stats.tenants['leads/@org-b']).toMatchObject({ hits: { total: 0 }, misses: 1 });
    // The namespace counts everything: its own calls, tracked tenants and tenants past the bound.
    expect(stats.namespaces.leads).toMatchObject({ hits: { total: 2 }, misses: 4 });
    expect(stats.namespaces.leads?.loader.calls).toBe(4);
    expect(stats.totals).toMatchObject({ hits: { total: 2 }, misses: 4 });
    // Loader latency is kept per namespace and shared by its tenants.
    expect(stats.namespaces.leads?.loader.latencyMicros.count).toBe(4);
    await cache.close();
  });

  it('is off by default: tenants count in their namespace only', async () => {
    const cache = createCache({ redis: false });
    await cache
      .namespace('leads')
      .forTenant('org-a')
      .getOrSet('k', () => 1);
    const stats = cache.stats();
    expect(stats.tenants).toEqual({});
    expect(stats.namespaces.leads?.misses).toBe(1);
    await cache.close();
  });

  it('refuses a bad maxTenants with a clear error', () => {
    expect(() => createCache({ redis: false, maxTenants: -1 })).toThrow(/maxTenants/);
  });
});
