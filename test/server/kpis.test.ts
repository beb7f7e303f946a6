import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCache } from '../../src/index.js';
import type { Database } from '../../src/server/db/database.js';
import { runMigrations } from '../../src/server/db/migrate.js';
import { seedDemoData } from '../../src/server/db/seed.js';
import { KPI_DEFINITIONS, type KpiReport } from '../../src/server/kpis/kpi.js';
import { KpiRepository } from '../../src/server/kpis/kpi-repository.js';
import { KpiService } from '../../src/server/kpis/kpi-service.js';
import { memoryDatabase } from '../support/pglite.js';
import { useRedisSuite } from '../support/suite.js';
import { appFromEnv, closeApps, gatedDatabase, lookupLead, patchLead, waitForHealth } from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is flushed.
afterEach(closeApps);

type Org = { id: string; slug: string };
let db: Database;
let orgs: Org[];
beforeAll(async () => {
  db = memoryDatabase();
  await runMigrations(db);
  await seedDemoData(db, { organizations: 3, leadsPerOrg: 60 });
  orgs = (await db.query<Org>('SELECT id, slug FROM organizations ORDER BY slug')).rows;
});
afterAll(async () => {
  await db.close();
});

const org = (i: number): Org => orgs[i] as Org;

function getKpis(app: ReturnType<typeof appFromEnv>, ref: string) {
  return app.inject({ method: 'GET', url: '/api/kpis', query: { org: ref } });
}
function getDashboard(app: ReturnType<typeof appFromEnv>, role: string, ref: string) {
  return app.inject({
    method: 'GET',
    url: `/api/dashboards/${encodeURIComponent(role)}`,
    query: { org: ref },
  });
}

/** The KPIs counted straight from the leads table, with queries of their own (not the service's SQL). */
async function countedKpis(organizationId: string): Promise<Record<string, number>> {
  const count = async (where: string) =>
    Number(
      (
        await db.query<{ n: string }>(
          `SELECT count(*)::text AS n FROM leads WHERE organization_id = $1 AND ${where}`,
          [organizationId],
        )
      ).rows[0]?.n,
    );
  const total = await count('true');
  const converted = await count(`status = 'converted'`);
  const counted: Record<string, number> = { leads_total: total };
  for (const status of ['new', 'contacted', 'qualified', 'converted', 'lost']) {
    counted[`status_${status}`] = await count(`status = '${status}'`);
  }
  for (const c of ['hot', 'warm', 'cold'])
    counted[`classification_${c}`] = await count(`classification = '${c}'`);
  counted.classification_none = await count('classification IS NULL');
  counted.leads_last_7_days = await count(`created_at > now() - interval '7 days'`);
  counted.conversion_rate = total === 0 ? 0 : Math.round((converted / total) * 10_000) / 10_000;
  return counted;
}

describe('GET /api/kpis', () => {
  it('answers KPIs equal to direct SQL counts over the seeded leads, and stores them in the kpis table', async () => {
    const app = appFromEnv({}, undefined, { database: db });
    for (const { id, slug } of orgs) {
      const res = await getKpis(app, slug);
      expect(res.statusCode).toBe(200);
      const body = res.json<KpiReport>();
      expect(body.organization).toMatchObject({ id, slug });
      const expected = await countedKpis(id);
      expect(body.kpis).toEqual(expected);
      expect(Object.keys(body.kpis).sort()).toEqual(KPI_DEFINITIONS.map(([n]) => n).sort());
      expect(body.kpis.leads_total).toBe(60);
      const stored = await db.query<{ name: string; value: string }>(
        'SELECT name, value::text AS value FROM kpis WHERE organization_id = $1',
        [id],
      );
      expect(Object.fromEntries(stored.rows.map((r) => [r.name, Number(r.value)]))).toEqual(expected);
    }
  });

  it('answers MISS, then HIT from the HTTP cache, by id or slug', async () => {
    const app = appFromEnv({}, undefined, { database: db });
    const first = await getKpis(app, org(0).slug);
    expect(first.headers['x-cache']).toBe('MISS');
    const second = await getKpis(app, org(0).slug);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body).toBe(first.body);
    expect(second.headers['content-type']).toMatch(/application\/json/);
    expect((await getKpis(app, org(0).id)).headers['x-cache']).toBe('MISS');
    expect((await getKpis(app, org(0).id.toUpperCase())).json().organization.id).toBe(org(0).id);
  });

  it('reflects a PATCHed lead on the next read, on every instance sharing Redis', async () => {
    const a = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database: db });
    const b = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database: db });
    await waitForHealth(a, 'ok');
    await waitForHealth(b, 'ok');
    const { id: orgId, slug } = org(1);
    const before = (await getKpis(b, slug)).json<KpiReport>();
    expect((await getKpis(b, slug)).headers['x-cache']).toBe('HIT');
    expect((await getDashboard(b, 'owner', slug)).statusCode).toBe(200);
    const lead = (
      await db.query<{ id: string }>(
        `SELECT id FROM leads WHERE organization_id = $1 AND status <> 'converted' ORDER BY id LIMIT 1`,
        [orgId],
      )
    ).rows[0] as { id: string };

    expect((await patchLead(a, lead.id, { status: 'converted' })).statusCode).toBe(200);

    // Instance b hears of it over the bus: its next read is a miss and has the new counts.
    await expect
      .poll(async () => (await getKpis(b, slug)).json<KpiReport>().kpis.status_converted, { timeout: 5000 })
      .toBe(before.kpis.status_converted + 1);
    const after = await getKpis(b, slug);
    expect(after.json<KpiReport>().kpis).toEqual(await countedKpis(orgId));
    const dashboard = (await getDashboard(b, 'owner', slug)).json();
    expect(dashboard.sections.pipeline.converted).toBe(before.kpis.status_converted + 1);
    // The other organizations' entries were not touched.
    expect((await getKpis(b, org(1).slug)).headers['x-cache']).toBe('HIT');
  });

  it('counts a lead created by a lookup on the next read', async () => {
    const app = appFromEnv({}, undefined, { database: db });
    const { id: orgId, slug } = org(2);
    const before = (await getKpis(app, slug)).json<KpiReport>().kpis;
    expect((await lookupLead(app, '+1 415 555 0142', slug)).statusCode).toBe(200);
    const res = await getKpis(app, slug);
    expect(res.headers['x-cache']).toBe('MISS');
    expect(res.json<KpiReport>().kpis).toMatchObject({
      leads_total: before.leads_total + 1,
      status_new: before.status_new + 1,
      leads_last_7_days: before.leads_last_7_days + 1,
    });
    expect(res.json<KpiReport>().kpis).toEqual(await countedKpis(orgId));
    // A lookup of an existing lead changes nothing: the cached response stays.
    await lookupLead(app, '+1 415 555 0142', slug);
    expect((await getKpis(app, slug)).headers['x-cache']).toBe('HIT');
  });

  it('answers 400 naming a malformed or missing org, and 404 for an unknown one', async () => {
    const app = appFromEnv({}, undefined, { database: db });
    const bad = await getKpis(app, 'Not A Slug!');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toEqual({
      code: 'E_VALIDATION',
      message: expect.stringContaining('"Not A Slug!"'),
    });
    const missing = await app.inject({ method: 'GET', url: '/api/kpis' });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.message).toMatch(/org/);
    expect((await getKpis(app, 'x'.repeat(129))).statusCode).toBe(400);
    const unknown = await getKpis(app, 'no-such-org');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error).toEqual({
      code: 'E_NOT_FOUND',
      message: expect.stringContaining('"no-such-org"'),
    });
    // Errors are never cached.
    expect((await getKpis(app, 'no-such-org')).headers['x-cache']).toBeUndefined();
  });
});

describe('GET /api/dashboards/:role', () => {
  it('scopes sections by role: owner sees everything, manager no performance, agent the pipeline only', async () => {
    const app = appFromEnv({}, undefined, { database: db });
    const { id, slug } = org(0);
    const kpis = await countedKpis(id);
    const pipeline = {
      new: kpis.status_new,
      contacted: kpis.status_contacted,
      qualified: kpis.status_qualified,
      converted: kpis.status_converted,
      lost: kpis.status_lost,
      lastSevenDays: kpis.leads_last_7_days,
    };
    const classification = {
      hot: kpis.classification_hot,
      warm: kpis.classification_warm,
      cold: kpis.classification_cold,
      unclassified: kpis.classification_none,
    };
    const owner = await getDashboard(app, 'owner', slug);
    expect(owner.statusCode).toBe(200);
    expect(owner.headers['x-cache']).toBe('MISS');
    expect(owner.json()).toMatchObject({
      role: 'owner',
      organization: { id, slug },
      sections: {
        pipeline,
        classification,
        performance: { totalLeads: kpis.leads_total, conversionRate: kpis.conversion_rate },
      },
    });
    expect((await getDashboard(app, 'owner', slug)).headers['x-cache']).toBe('HIT');
    expect((await getDashboard(app, 'manager', slug)).json().sections).toEqual({ pipeline, classification });
    const agent = await getDashboard(app, 'agent', slug);
    expect(agent.json().sections).toEqual({ pipeline });
    expect(agent.headers['x-cache']).toBe('MISS');
  });

  it('answers 400 naming an unknown role, and 400/404 for a bad org', async () => {
    const app = appFromEnv({}, undefined, { database: db });
    const res = await getDashboard(app, 'ceo', org(0).slug);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({
      code: 'E_VALIDATION',
      message: 'Unknown dashboard role "ceo": expected one of owner, manager, agent',
    });
    expect((await getDashboard(app, 'ceo', org(0).slug)).statusCode).toBe(400);
    expect((await getDashboard(app, 'owner', 'Bad Org')).statusCode).toBe(400);
    expect((await getDashboard(app, 'owner', 'no-such-org')).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/api/dashboards/owner' })).statusCode).toBe(400);
  });
});

describe('KpiService refresh-ahead', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers from the cache past the refresh point and reloads in the background', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const cache = suite.track(createCache({}));
    let recomputes = 0;
    class CountingRepository extends KpiRepository {
      override recompute(o: Parameters<KpiRepository['recompute']>[0]) {
        recomputes++;
        return super.recompute(o);
      }
    }
    const service = new KpiService({
      repository: new CountingRepository(db),
      cache,
      ttl: '10m',
      refreshAhead: 0.5,
    });
    const { id: orgId, slug } = org(0);
    const first = await service.report(slug);
    expect(recomputes).toBe(1);
    expect((await service.report(slug)).kpis).toEqual(first.kpis);
    expect(recomputes).toBe(1);

    // A lead added behind the cache's back, then time moves past half the TTL.
    await db.query(`INSERT INTO leads (organization_id, phone) VALUES ($1, '+14155550199')`, [orgId]);
    vi.setSystemTime(Date.now() + 6 * 60_000);
    const served = await service.report(slug);
    expect(served.kpis.leads_total).toBe(first.kpis.leads_total); // answered at once, not reloaded
    await expect.poll(() => recomputes).toBe(2);
    await expect
      .poll(async () => (await service.report(slug)).kpis.leads_total)
      .toBe(first.kpis.leads_total + 1);
    expect(recomputes).toBe(2);
    await db.query(`DELETE FROM leads WHERE phone = '+14155550199'`);
  });
});

describe('Redis killed mid-request', () => {
  it('answers KPIs and dashboards (200, correct values) while and after Redis dies', async () => {
    const gated = gatedDatabase(db, /INSERT INTO kpis/);
    const app = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database: gated.database });
    await waitForHealth(app, 'ok');
    gated.close();
    const inFlight = [
      getKpis(app, org(0).slug),
      getKpis(app, org(1).id),
      getDashboard(app, 'agent', org(2).slug),
    ];
    await expect.poll(() => gated.state.waiting, { timeout: 5000 }).toBe(3);
    await suite.server.kill();
    gated.open();
    const answered = await Promise.all(inFlight);
    expect(answered.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    expect(answered[0]?.json().kpis).toEqual(await countedKpis(org(0).id));

    const statuses: number[] = [];
    for (let round = 0; round < 8; round++) {
      for (const { slug } of orgs) {
        statuses.push((await getKpis(app, slug)).statusCode);
        statuses.push((await getDashboard(app, 'owner', slug)).statusCode);
      }
      statuses.push((await getDashboard(app, 'nobody', org(0).slug)).statusCode);
    }
    expect(statuses.filter((s) => s !== 200 && s !== 400)).toEqual([]);
    expect(statuses.filter((s) => s === 400)).toHaveLength(8);

    // A change is still reflected on this instance (its memory entries are invalidated).
    const before = (await getKpis(app, org(0).slug)).json<KpiReport>().kpis;
    const lead = (
      await db.query<{ id: string }>(
        `SELECT id FROM leads WHERE organization_id = $1 AND status <> 'lost' ORDER BY id LIMIT 1`,
        [org(0).id],
      )
    ).rows[0] as { id: string };
    expect((await patchLead(app, lead.id, { status: 'lost' })).statusCode).toBe(200);
    expect((await getKpis(app, org(0).slug)).json<KpiReport>().kpis.status_lost).toBe(before.status_lost + 1);
  });
});
