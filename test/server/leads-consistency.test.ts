import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from '../../src/index.js';
import type { Database } from '../../src/server/db/database.js';
import { runMigrations } from '../../src/server/db/migrate.js';
import { DEMO_DATA, seedDemoData } from '../../src/server/db/seed.js';
import { LeadRepository } from '../../src/server/leads/lead-repository.js';
import { type LeadLookup, type LeadLookupInput, LeadService } from '../../src/server/leads/lead-service.js';
import { memoryDatabase } from '../support/pglite.js';
import { useRedisSuite } from '../support/suite.js';
import { appFromEnv, closeApps, lookupLead, patchLead, waitForHealth } from './helpers.js';

const suite = useRedisSuite();
afterEach(closeApps);

let db: Database;
beforeAll(async () => {
  db = memoryDatabase();
  await runMigrations(db);
  await seedDemoData(db, DEMO_DATA);
});
afterAll(async () => {
  await db.close();
});

type DemoLead = { id: string; phone: string; org_id: string; org_slug: string; org_phone: string };

/**
 * Every 4th lead of the demo data set (1,200 of 4,800), each asked for in one of several phone
 * formats and with one of several organization references, so that every fallback step and
 * every format is exercised across the sample.
 */
async function sample(): Promise<LeadLookupInput[]> {
  const { rows } = await db.query<DemoLead>(`
    SELECT l.id, l.phone, o.id AS org_id, o.slug AS org_slug,
           (SELECT min(phone) FROM organization_phone_numbers p WHERE p.organization_id = o.id) AS org_phone
    FROM leads l JOIN organizations o ON o.id = l.organization_id
    ORDER BY l.id`);
  return rows
    .filter((_, i) => i % 4 === 0)
    .map((lead, i) => {
      const parsed = parsePhoneNumberFromString(lead.phone);
      const orgPhone = parsePhoneNumberFromString(lead.org_phone);
      const phone = [
        lead.phone,
        // National formats only parse in the default region (US); others get the international one.
        lead.phone.startsWith('+1') ? parsed?.formatNational() : parsed?.formatInternational(),
        parsed?.formatInternational(),
        parsed?.getURI(),
      ][i % 4] as string;
      const org = [lead.org_id, lead.org_slug, orgPhone?.formatNational(), undefined, `nobody-${i % 7}`][
        i % 5
      ];
      return org === undefined ? { phone } : { phone, org };
    });
}

describe('cached and uncached lookups', () => {
  it('return identical results over the demo data set, before and after updates', async () => {
    const inputs = await sample();
    expect(inputs.length).toBeGreaterThanOrEqual(1000);
    // Uncached: the same service on a cache with neither tier, so every lookup reads Postgres.
    const uncachedCache = createCache({ memory: false, redis: false });
    const uncached = new LeadService({ repository: new LeadRepository(db), cache: uncachedCache });
    const truth = async () =>
      Promise.all(inputs.map(async (input) => strip(await uncached.lookupLead(input))));
    const expected = await truth();
    expect(new Set(expected.map((r) => r.organizationMatch))).toEqual(
      new Set(['id', 'slug', 'phone', 'default']),
    );

    const a = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database: db });
    const b = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database: db });
    await Promise.all([waitForHealth(a), waitForHealth(b)]);
    const pass = async (app: typeof a) => {
      const out = [];
      for (const input of inputs) {
        const res = await lookupLead(app, input.phone, input.org);
        expect(res.statusCode).toBe(200);
        out.push({ body: res.json(), cache: res.headers['x-cache'] });
      }
      return out;
    };

    const cold = await pass(a); // loads from Postgres, writes memory and Redis
    const warm = await pass(a); // memory
    const shared = await pass(b); // Redis, through the codec
    for (const run of [cold, warm, shared]) expect(run.map((r) => r.body)).toEqual(expected);
    const distinct = new Set(expected.map((r) => `${r.lead.organizationId} ${r.lead.phone}`)).size;
    expect(cold.filter((r) => r.cache === 'MISS')).toHaveLength(distinct);
    expect(warm.every((r) => r.cache === 'HIT')).toBe(true);
    expect(shared.every((r) => r.cache === 'HIT')).toBe(true);

    // Update 100 of the sampled leads through either instance; both keep agreeing with Postgres.
    const statuses = ['new', 'contacted', 'qualified', 'converted', 'lost'];
    const last = new Map<typeof a, string>();
    for (let i = 0; i < 100; i++) {
      const lead = expected[i * 10]?.lead as { id: string };
      const app = i % 2 === 0 ? a : b;
      const res = await patchLead(app, lead.id, {
        status: statuses[i % 5],
        classification: i % 3 === 0 ? null : 'warm',
      });
      expect(res.statusCode).toBe(200);
      last.set(app, lead.id);
    }
    const after = await truth();
    expect(after).not.toEqual(expected);
    // Pub/sub reaches the other instance within a round trip; wait for each instance's last one.
    for (const [writer, id] of last) {
      const reader = writer === a ? b : a;
      const index = after.findIndex((r) => r.lead.id === id);
      const input = inputs[index] as LeadLookupInput;
      await expect
        .poll(async () => (await lookupLead(reader, input.phone, input.org)).json().lead.updatedAt, {
          timeout: 1000,
          interval: 5,
        })
        .toBe(after[index]?.lead.updatedAt);
    }
    for (const app of [a, b]) expect((await pass(app)).map((r) => r.body)).toEqual(after);
    await uncachedCache.close();
  }, 120_000);
});

/** The fields the route returns (it leaves out `cache`, which goes into X-Cache). */
function strip({ lead, organization, organizationMatch }: LeadLookup): Omit<LeadLookup, 'cache'> {
  return { lead, organization, organizationMatch };
}
