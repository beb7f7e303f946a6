import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CacheStats } from '../../src/index.js';
import type { Database } from '../../src/server/db/database.js';
import { runMigrations } from '../../src/server/db/migrate.js';
import { seedDemoData } from '../../src/server/db/seed.js';
import { memoryDatabase } from '../support/pglite.js';
import { appFromEnv, closeApps, lookupLead } from './helpers.js';

afterEach(closeApps);

let db: Database;
let leads: Array<{ phone: string; org: string }>;

beforeAll(async () => {
  db = memoryDatabase();
  await runMigrations(db);
  await seedDemoData(db, { organizations: 3, leadsPerOrg: 5 });
  leads = (
    await db.query<{ phone: string; org: string }>(
      'SELECT phone, organization_id AS org FROM leads ORDER BY organization_id, phone',
    )
  ).rows;
});
afterAll(async () => {
  await db.close();
});

describe('GET /api/cache/stats', () => {
  it('reports each organization as a tenant, consistent with its namespace; filters and leaves tenants out on request', async () => {
    const app = appFromEnv({}, undefined, { database: db });
    const [first, second] = [...new Set(leads.map((l) => l.org))] as [string, string];
    const ofFirst = leads.filter((l) => l.org === first);
    for (const lead of ofFirst) await lookupLead(app, lead.phone, lead.org);
    for (const lead of ofFirst) await lookupLead(app, lead.phone, lead.org); // cached now
    const one = leads.find((l) => l.org === second) as { phone: string; org: string };
    await lookupLead(app, one.phone, one.org);

    const stats = (await app.inject({ method: 'GET', url: '/api/cache/stats' })).json<CacheStats>();
    const firstStats = stats.tenants[`leads/@${first}`];
    const secondStats = stats.tenants[`leads/@${second}`];
    expect(firstStats?.hits.total).toBeGreaterThanOrEqual(ofFirst.length);
    expect(secondStats?.misses).toBeGreaterThan(0);
    const leadTenants = Object.entries(stats.tenants).filter(([path]) => path.startsWith('leads/@'));
    const sum = leadTenants.reduce((n, [, t]) => n + t.hits.total + t.misses, 0);
    const namespace = stats.namespaces.leads;
    expect(namespace).toBeDefined();
    // Lead entries are always read through a tenant view, so the namespace is exactly its tenants.
    expect(sum).toBe((namespace?.hits.total ?? 0) + (namespace?.misses ?? 0));

    const filtered = (
      await app.inject({ method: 'GET', url: '/api/cache/stats', query: { namespace: 'orgs' } })
    ).json<CacheStats>();
    expect(Object.keys(filtered.tenants).every((path) => path.startsWith('orgs/@'))).toBe(true);
    const without = (
      await app.inject({ method: 'GET', url: '/api/cache/stats', query: { tenants: 'false' } })
    ).json<CacheStats>();
    expect(without.tenants).toEqual({});
    expect(without.totals.hits.total).toBeGreaterThanOrEqual(stats.totals.hits.total);
  });

  it('answers 400 naming a bad query parameter', async () => {
    const app = appFromEnv({}, undefined, { database: db });
    const bad = await app.inject({ method: 'GET', url: '/api/cache/stats', query: { tenants: 'maybe' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: { message: string } }>().error.message).toMatch(/tenants/);
  });
});
