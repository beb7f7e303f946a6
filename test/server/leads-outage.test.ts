import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/server/db/database.js';
import { runMigrations } from '../../src/server/db/migrate.js';
import { seedDemoData } from '../../src/server/db/seed.js';
import { memoryDatabase } from '../support/pglite.js';
import { useRedisSuite } from '../support/suite.js';
import { appFromEnv, closeApps, gatedDatabase, lookupLead, patchLead, waitForHealth } from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is
// restarted and flushed.
afterEach(closeApps);

let db: Database;
let seeded: Array<{ id: string; phone: string; status: string }>;
beforeAll(async () => {
  db = memoryDatabase();
  await runMigrations(db);
  await seedDemoData(db, { organizations: 2, leadsPerOrg: 40 });
  seeded = (
    await db.query<{ id: string; phone: string; status: string }>(
      'SELECT l.id, l.phone, l.status FROM leads l JOIN organizations o ON o.id = l.organization_id WHERE o.is_default ORDER BY l.id',
    )
  ).rows;
});
afterAll(async () => {
  await db.close();
});

let phoneCounter = 0;
function newPhones(count: number): string[] {
  return Array.from({ length: count }, () => `+1646555${String(1000 + ++phoneCounter).slice(-4)}`);
}

describe('Redis killed mid-request', () => {
  it('answers lookups from Postgres (200, never 500) while and after Redis dies', async () => {
    const gated = gatedDatabase(db, /\bleads\b/);
    const app = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database: gated.database });
    await waitForHealth(app, 'ok');
    const warm = seeded.slice(0, 5);
    for (const lead of warm) expect((await lookupLead(app, lead.phone)).headers['x-cache']).toBe('MISS');

    // Hold 15 lookups inside their loaders (they have read Redis and missed), then kill Redis.
    const fresh = newPhones(10);
    const cold = seeded.slice(5, 10).map((l) => l.phone);
    gated.close();
    const inFlight = [...fresh, ...cold].map((phone) => lookupLead(app, phone));
    await expect.poll(() => gated.state.waiting, { timeout: 5000, interval: 5 }).toBe(15);
    await suite.server.kill();
    gated.open();
    const answered = await Promise.all(inFlight);
    expect(answered.map((r) => r.statusCode)).toEqual(answered.map(() => 200));
    expect(answered.map((r) => r.json().lead.phone)).toEqual([...fresh, ...cold]);
    expect(answered.slice(10).map((r) => r.json().lead.id)).toEqual(seeded.slice(5, 10).map((l) => l.id));

    // With Redis gone: cached leads come from memory, others from Postgres, new ones are created.
    const statuses: number[] = [];
    for (let round = 0; round < 8; round++) {
      // Enough calls to trip the circuit breaker (5 consecutive failures) and go on past it.
      for (const lead of warm) {
        const res = await lookupLead(app, lead.phone);
        statuses.push(res.statusCode);
        expect(res.json().lead.id).toBe(lead.id);
      }
      const [phone] = newPhones(1);
      const created = await lookupLead(app, phone as string);
      statuses.push(created.statusCode);
      expect(created.json().lead.phone).toBe(phone);
      statuses.push((await lookupLead(app, 'not a phone')).statusCode);
    }
    expect(statuses.filter((s) => s === 400)).toHaveLength(8);
    expect(statuses.filter((s) => s !== 400 && s !== 200)).toEqual([]);

    // Updates still write Postgres, and this instance stops serving the old lead at once.
    const target = warm[0] as { id: string; phone: string };
    const patched = await patchLead(app, target.id, { status: 'lost' });
    expect(patched.statusCode).toBe(200);
    expect((await lookupLead(app, target.phone)).json().lead.status).toBe('lost');

    const health = (await app.inject({ method: 'GET', url: '/api/health' })).json();
    expect(health).toMatchObject({ status: 'degraded', checks: { database: { reachable: true } } });
    expect(health.reason).toMatch(/Redis/);
    expect(
      (await app.inject({ method: 'GET', url: '/api/cache/stats' })).json().totals.fallbacks,
    ).toBeGreaterThan(0);

    // Redis back (empty): the service returns to it by itself and keeps answering.
    await suite.server.restart();
    await waitForHealth(app, 'ok', 10_000);
    const back = await lookupLead(app, target.phone);
    expect(back.statusCode).toBe(200);
    expect(back.json().lead.status).toBe('lost');
  });

  it('answers from Postgres when Redis stalls and then dies under waiting lookups', async () => {
    const app = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database: db });
    await waitForHealth(app, 'ok');
    suite.server.pause(); // SIGSTOP: reads hang until the command timeout
    const phones = [...newPhones(5), ...seeded.slice(20, 25).map((l) => l.phone)];
    const inFlight = phones.map((phone) => lookupLead(app, phone));
    await suite.server.kill();
    const answered = await Promise.all(inFlight);
    expect(answered.map((r) => r.statusCode)).toEqual(phones.map(() => 200));
    expect(answered.map((r) => r.json().lead.phone)).toEqual(phones);
    expect(answered.every((r) => r.headers['x-cache'] === 'MISS')).toBe(true);
  });

  it('starts and answers lookups while Redis is down from the beginning', async () => {
    await suite.server.kill();
    const app = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database: db });
    const lead = seeded[30] as { id: string; phone: string };
    const first = await lookupLead(app, lead.phone);
    expect(first.statusCode).toBe(200);
    expect(first.json().lead.id).toBe(lead.id);
    const [phone] = newPhones(1);
    expect((await lookupLead(app, phone as string)).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/api/health' })).json().status).toBe('degraded');
  });
});
