import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/server/db/database.js';
import { runMigrations } from '../../src/server/db/migrate.js';
import { seedDemoData } from '../../src/server/db/seed.js';
import { memoryDatabase } from '../support/pglite.js';
import { integerReply } from '../support/redis-replies.js';
import { useRedisSuite } from '../support/suite.js';
import {
  appFromEnv,
  closeApps,
  healthyApp,
  lookupLead,
  patchLead,
  recordingDatabase,
  unusedPhone,
} from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is flushed.
afterEach(closeApps);

let db: Database;
let defaultOrg: { id: string; slug: string };
// Two organizations made for the fallback-order tests: `phone-owner` is reached on +1 212 555 0147,
// and `2125550147` is a slug that reads like that number.
const PHONE_OWNER = '10000000-0000-4000-8000-000000000001';
const DIGIT_SLUG = '10000000-0000-4000-8000-000000000002';

beforeAll(async () => {
  db = memoryDatabase();
  await runMigrations(db);
  await seedDemoData(db, { organizations: 4, leadsPerOrg: 20 });
  await db.query(
    `INSERT INTO organizations (id, name, slug) VALUES ($1, 'Phone Owner', 'phone-owner'), ($2, 'Digits Inc', '2125550147')`,
    [PHONE_OWNER, DIGIT_SLUG],
  );
  await db.query(
    `INSERT INTO organization_phone_numbers (phone, organization_id) VALUES ('+12125550147', $1)`,
    [PHONE_OWNER],
  );
  const { rows } = await db.query<{ id: string; slug: string }>(
    'SELECT id, slug FROM organizations WHERE is_default',
  );
  defaultOrg = rows[0] as { id: string; slug: string };
});
afterAll(async () => {
  await db.close();
});

const readyApp = (database: Database = db) => healthyApp(suite.server.url, database);

describe('GET /api/leads/lookup: phone normalisation', () => {
  it('maps every format of a number to one E.164 lead, cached under its E.164 form', async () => {
    const app = await readyApp();
    const formats = [
      '+14155550123',
      '(415) 555-0123',
      '415.555.0123',
      '415 555 0123',
      '1 415 555 0123',
      '+1 (415) 555-0123',
      'tel:+1-415-555-0123',
      ' 4155550123 ',
      '415-555-0123 ext. 12',
    ];
    const responses = [];
    for (const phone of formats) responses.push(await lookupLead(app, phone));
    expect(responses.map((r) => r.statusCode)).toEqual(formats.map(() => 200));
    const ids = new Set(responses.map((r) => r.json().lead.id));
    expect(ids.size).toBe(1);
    expect(responses[0]?.json()).toMatchObject({
      lead: {
        phone: '+14155550123',
        organizationId: defaultOrg.id,
        status: 'new',
        classification: null,
        name: null,
      },
      organization: { id: defaultOrg.id, isDefault: true },
      organizationMatch: 'default',
    });
    // Only the first format missed: all the others read the entry the first one wrote.
    expect(responses.map((r) => r.headers['x-cache'])).toEqual(
      formats.map((_, i) => (i === 0 ? 'MISS' : 'HIT')),
    );
  });

  it('normalises international numbers', async () => {
    const app = await readyApp();
    for (const [input, e164] of [
      ['+44 20 7946 0958', '+442079460958'],
      ['+44 (0)20 7946 0958', '+442079460958'],
      ['011 44 20 7946 0958', '+442079460958'],
      ['+61 412 345 678', '+61412345678'],
      ['+49 151 23456789', '+4915123456789'],
    ] as const) {
      const res = await lookupLead(app, input);
      expect(res.statusCode).toBe(200);
      expect(res.json().lead.phone).toBe(e164);
    }
  });

  it.each(['abc', '123', '+1 415 555 01', '1-800-FLOWERS', '+999 123', '020 7946 0958', '++14155550123x'])(
    'answers 400 E_INVALID_PHONE naming %j',
    async (phone) => {
      const app = appFromEnv({});
      const res = await lookupLead(app, phone);
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toEqual({
        code: 'E_INVALID_PHONE',
        message: expect.stringContaining(JSON.stringify(phone)),
      });
    },
  );

  it.each([
    ['no phone', ''],
    ['an empty phone', '?phone='],
    ['a 65-character phone', `?phone=${'1'.repeat(65)}`],
    ['two phones', '?phone=4155550123&phone=4155550124'],
    ['an empty org', '?phone=4155550123&org='],
    ['a 129-character org', `?phone=4155550123&org=${'a'.repeat(129)}`],
  ])('answers 400 E_VALIDATION for %s', async (_, query) => {
    const app = appFromEnv({});
    const res = await app.inject({ method: 'GET', url: `/api/leads/lookup${query}` });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('E_VALIDATION');
  });
});

describe('GET /api/leads/lookup: organization fallback', () => {
  it('resolves exact id or slug, then the organization phone number, then the default', async () => {
    const app = await readyApp();
    const phone = unusedPhone();
    const cases: Array<[string | undefined, string, string]> = [
      [PHONE_OWNER, PHONE_OWNER, 'id'],
      [PHONE_OWNER.toUpperCase(), PHONE_OWNER, 'id'],
      ['phone-owner', PHONE_OWNER, 'slug'],
      // Exact beats phone: this slug is also, read as a number, phone-owner's number.
      ['2125550147', DIGIT_SLUG, 'slug'],
      ['(212) 555-0147', PHONE_OWNER, 'phone'],
      ['+1 212 555 0147', PHONE_OWNER, 'phone'],
      ['212.555.0147', PHONE_OWNER, 'phone'],
      ['no-such-org', defaultOrg.id, 'default'],
      ['00000000-0000-4000-8000-00000000dead', defaultOrg.id, 'default'],
      ['+1 617 555 0199', defaultOrg.id, 'default'], // a valid number no organization is reached on
      [undefined, defaultOrg.id, 'default'],
    ];
    for (const [org, organizationId, match] of cases) {
      const res = await lookupLead(app, phone, org);
      expect(res.statusCode, `org=${org}`).toBe(200);
      expect(res.json(), `org=${org}`).toMatchObject({
        organization: { id: organizationId },
        organizationMatch: match,
        lead: { organizationId, phone },
      });
    }
    // One lead per organization: the same caller is a different lead in each.
    const leads = await db.query('SELECT DISTINCT organization_id FROM leads WHERE phone = $1', [phone]);
    expect(leads.rows).toHaveLength(3);
  });

  it('caches organizations for 10 minutes and "no such organization" for 30 seconds', async () => {
    const { db: recorded, statements } = recordingDatabase(db);
    const app = await readyApp(recorded);
    const phone = unusedPhone();
    const bySlug = () => statements.filter((s) => s.includes('o.slug = $1')).length;
    await lookupLead(app, phone, 'ghost-org');
    await lookupLead(app, phone, 'ghost-org');
    await lookupLead(app, phone, 'phone-owner');
    await lookupLead(app, phone, 'phone-owner');
    expect(bySlug()).toBe(2); // one query per distinct reference: the repeats were cached

    const orgKey = (key: string) => `larder:test:1:d:orgs:${key.replace(':', '%3A')}`;
    const negative = integerReply(await suite.server.command('PTTL', orgKey('ref:ghost-org')));
    expect(negative).toBeGreaterThan(25_000);
    expect(negative).toBeLessThanOrEqual(30_000);
    const positive = integerReply(await suite.server.command('PTTL', orgKey('ref:phone-owner')));
    expect(positive).toBeGreaterThan(590_000);
    expect(positive).toBeLessThanOrEqual(600_000);
  });

  it("caches leads for 5 minutes in the organization's tenant scope", async () => {
    const app = await readyApp();
    const phone = unusedPhone();
    const res = await lookupLead(app, phone, 'phone-owner');
    expect(res.statusCode).toBe(200);
    const scan = await suite.server.command(
      'SCAN',
      '0',
      'MATCH',
      `*:d:leads:@${PHONE_OWNER}:*`,
      'COUNT',
      '1000',
    );
    const keys = scan.split('\r\n').filter((line) => line.startsWith('larder:'));
    expect(keys).toHaveLength(2); // phone → id, and id → lead
    for (const key of keys) {
      const pttl = integerReply(await suite.server.command('PTTL', key));
      expect(pttl).toBeGreaterThan(290_000);
      expect(pttl).toBeLessThanOrEqual(300_000);
    }
  });
});

describe('GET /api/leads/lookup: find-or-create and X-Cache', () => {
  it('creates a new lead once under 50 concurrent lookups', async () => {
    const { db: recorded, statements } = recordingDatabase(db);
    const app = await readyApp(recorded);
    const phone = unusedPhone();
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => lookupLead(app, phone, 'phone-owner')),
    );
    expect(new Set(responses.map((r) => r.statusCode))).toEqual(new Set([200]));
    expect(new Set(responses.map((r) => r.json().lead.id)).size).toBe(1);
    expect(statements.filter((s) => s.startsWith('INSERT INTO leads')).length).toBe(1);
    expect(responses.filter((r) => r.headers['x-cache'] === 'MISS')).toHaveLength(1);
    const rows = await db.query('SELECT id FROM leads WHERE phone = $1', [phone]);
    expect(rows.rows).toEqual([{ id: responses[0]?.json().lead.id }]);
  });

  it('creates one lead when two instances race, and both return it', async () => {
    const [a, b] = [await readyApp(), await readyApp()];
    const phone = unusedPhone();
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => lookupLead(i % 2 === 0 ? a : b, phone, 'phone-owner')),
    );
    expect(new Set(responses.map((r) => r.json().lead.id)).size).toBe(1);
    expect((await db.query('SELECT id FROM leads WHERE phone = $1', [phone])).rows).toHaveLength(1);
  });

  it('answers MISS, then HIT from memory, then HIT from Redis on another instance', async () => {
    const { rows } = await db.query<{ phone: string; id: string }>(
      'SELECT phone, id FROM leads WHERE organization_id = $1 ORDER BY id LIMIT 1',
      [defaultOrg.id],
    );
    const seeded = rows[0] as { phone: string; id: string };
    const { db: recorded, statements } = recordingDatabase(db);
    const [a, b] = [await readyApp(recorded), await readyApp(recorded)];
    const first = await lookupLead(a, seeded.phone);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(first.json().lead.id).toBe(seeded.id);
    const leadQueries = statements.filter((s) => s.includes('FROM leads')).length;
    const second = await lookupLead(a, seeded.phone);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.json()).toEqual(first.json());
    const third = await lookupLead(b, seeded.phone);
    expect(third.headers['x-cache']).toBe('HIT');
    expect(third.json()).toEqual(first.json());
    expect(statements.filter((s) => s.includes('FROM leads')).length).toBe(leadQueries);
    const stats = (await b.inject({ method: 'GET', url: '/api/cache/stats' })).json();
    expect(stats.namespaces.leads.hits.redis).toBeGreaterThanOrEqual(2);
  });
});

describe('PATCH /api/leads/:id', () => {
  async function seededLead(offset: number) {
    const { rows } = await db.query<{ id: string; phone: string; updated_at: Date }>(
      'SELECT id, phone, updated_at FROM leads WHERE organization_id = $1 ORDER BY id OFFSET $2 LIMIT 1',
      [defaultOrg.id, offset],
    );
    return rows[0] as { id: string; phone: string; updated_at: Date };
  }

  it('updates status, classification and name, and returns the lead', async () => {
    const app = await readyApp();
    const lead = await seededLead(1);
    const res = await patchLead(app, lead.id, {
      status: 'qualified',
      classification: 'hot',
      name: '  Ada Lovelace ',
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      id: lead.id,
      phone: lead.phone,
      status: 'qualified',
      classification: 'hot',
      name: 'Ada Lovelace',
    });
    expect(Date.parse(res.json().updatedAt)).toBeGreaterThan(lead.updated_at.getTime());
    const cleared = await patchLead(app, lead.id, { classification: null, name: null });
    expect(cleared.json()).toMatchObject({ status: 'qualified', classification: null, name: null });
  });

  it('invalidates the cached lead on every instance sharing the Redis', async () => {
    const [a, b] = [await readyApp(), await readyApp()];
    const lead = await seededLead(2);
    await db.query(`UPDATE leads SET status = 'new' WHERE id = $1`, [lead.id]);
    // Both instances hold the lead in memory, and Redis holds it too.
    for (const app of [a, b, a, b])
      expect((await lookupLead(app, lead.phone)).json().lead.status).toBe('new');
    expect((await lookupLead(b, lead.phone)).headers['x-cache']).toBe('HIT');

    expect((await patchLead(a, lead.id, { status: 'contacted' })).statusCode).toBe(200);
    expect((await lookupLead(a, lead.phone)).json().lead.status).toBe('contacted');
    await expect
      .poll(async () => (await lookupLead(b, lead.phone)).json().lead.status, { timeout: 1000, interval: 5 })
      .toBe('contacted');

    expect((await patchLead(b, lead.id, { status: 'converted', classification: 'warm' })).statusCode).toBe(
      200,
    );
    expect((await lookupLead(b, lead.phone)).json().lead).toMatchObject({
      status: 'converted',
      classification: 'warm',
    });
    await expect
      .poll(async () => (await lookupLead(a, lead.phone)).json().lead.status, { timeout: 1000, interval: 5 })
      .toBe('converted');
    // A third instance, with nothing in memory, reads the new lead.
    const c = await readyApp();
    expect((await lookupLead(c, lead.phone)).json().lead).toMatchObject({
      status: 'converted',
      classification: 'warm',
    });
  });

  it('answers 404 E_NOT_FOUND for an unknown id', async () => {
    const app = appFromEnv({});
    const res = await patchLead(app, '00000000-0000-4000-8000-00000000beef', { status: 'lost' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toEqual({
      code: 'E_NOT_FOUND',
      message: expect.stringContaining('00000000-0000-4000-8000-00000000beef'),
    });
  });

  it.each([
    ['an empty object', {}],
    ['an unknown field', { status: 'lost', phone: '+14155550000' }],
    ['an unknown status', { status: 'maybe' }],
    ['a null status', { status: null }],
    ['a numeric status', { status: 3 }],
    ['an unknown classification', { classification: 'lukewarm' }],
    ['a blank name', { name: '   ' }],
    ['a 201-character name', { name: 'x'.repeat(201) }],
    ['a numeric name', { name: 42 }],
    ['an array', [{ status: 'lost' }]],
  ])('answers 400 E_VALIDATION for %s', async (_, body) => {
    const app = appFromEnv({});
    const lead = await seededLead(3);
    const res = await patchLead(app, lead.id, body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({ code: 'E_VALIDATION', message: expect.any(String) });
  });

  it('answers 400 for a malformed id, malformed JSON, a JSON string or no body', async () => {
    const app = appFromEnv({});
    const badId = await patchLead(app, 'not-a-uuid', { status: 'lost' });
    expect(badId.statusCode).toBe(400);
    expect(badId.json().error.code).toBe('E_VALIDATION');
    const lead = await seededLead(3);
    const malformed = await app.inject({
      method: 'PATCH',
      url: `/api/leads/${lead.id}`,
      headers: { 'content-type': 'application/json' },
      payload: '{"status": ',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toMatch(/^FST_ERR_CTP_/);
    const jsonString = await app.inject({
      method: 'PATCH',
      url: `/api/leads/${lead.id}`,
      headers: { 'content-type': 'application/json' },
      payload: '"lost"',
    });
    expect(jsonString.statusCode).toBe(400);
    expect(jsonString.json().error.code).toBe('E_VALIDATION');
    const empty = await app.inject({ method: 'PATCH', url: `/api/leads/${lead.id}` });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.code).toBe('E_VALIDATION');
  });
});
