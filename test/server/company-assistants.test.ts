import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../src/server/db/database.js';
import { runMigrations } from '../../src/server/db/migrate.js';
import { useRedisSuite } from '../support/suite.js';
import {
  appFromEnv,
  closeApps,
  commandCalls,
  getByAssistant,
  getBySlug,
  integerReply,
  mappingKey,
  postMapping,
  recordingDatabase,
  sharedDatabase,
  waitForHealth,
} from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is flushed.
afterEach(closeApps);
// Mappings now persist to Postgres too: every test starts from empty tables, as it starts from an
// empty Redis (the suite flushes it).
beforeEach(async () => {
  const db = sharedDatabase();
  await runMigrations(db);
  await db.exec('TRUNCATE company_assistants, assistants, companies');
});

async function readyApp() {
  const app = appFromEnv({ REDIS_URL: suite.server.url });
  await waitForHealth(app, 'ok');
  return app;
}

const THIRTY_DAYS_MS = 30 * 24 * 60 * 60 * 1000;

describe('POST /api/company-assistants then GET both directions', () => {
  it('creates a mapping readable by slug and by assistant id', async () => {
    const app = await readyApp();
    const created = await postMapping(app, {
      companyName: '  Acme Corp ',
      assistantId: 'asst_ABC-123',
      plan: 'pro',
      seats: 5,
      branding: { color: '#ff0000' },
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({
      companySlug: 'acme-corp',
      assistantId: 'asst_ABC-123',
      demoUrl: '/demo/acme-corp',
    });
    expect(created.headers.location).toBe('/api/company-assistant?slug=acme-corp');

    const bySlug = await getBySlug(app, 'acme-corp');
    expect(bySlug.statusCode).toBe(200);
    expect(bySlug.json()).toEqual({
      companySlug: 'acme-corp',
      companyName: 'Acme Corp',
      assistantId: 'asst_ABC-123',
      plan: 'pro',
      seats: 5,
      branding: { color: '#ff0000' },
      createdAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
    });

    const byAssistant = await getByAssistant(app, 'asst_ABC-123');
    expect(byAssistant.statusCode).toBe(200);
    expect(byAssistant.json()).toEqual({
      companySlug: 'acme-corp',
      assistantId: 'asst_ABC-123',
      companyName: 'Acme Corp',
    });
  });

  it('writes both directions in one MULTI/EXEC with the same 30-day TTL', async () => {
    const app = await readyApp();
    const before = await suite.server.command('INFO', 'commandstats');
    expect((await postMapping(app, { companyName: 'Acme', assistantId: 'asst_1' })).statusCode).toBe(201);
    const after = await suite.server.command('INFO', 'commandstats');
    expect(commandCalls(after, 'multi') - commandCalls(before, 'multi')).toBe(1);
    expect(commandCalls(after, 'exec') - commandCalls(before, 'exec')).toBe(1);
    expect(commandCalls(after, 'set') - commandCalls(before, 'set')).toBe(2);

    const forward = integerReply(await suite.server.command('PTTL', mappingKey('slug:acme')));
    const reverse = integerReply(await suite.server.command('PTTL', mappingKey('assistant:asst_1')));
    expect(forward).toBeGreaterThan(THIRTY_DAYS_MS - 10_000);
    expect(forward).toBeLessThanOrEqual(THIRTY_DAYS_MS);
    expect(Math.abs(forward - reverse)).toBeLessThan(1000);
  });

  it('uses ttlSeconds for both directions', async () => {
    const app = await readyApp();
    await postMapping(app, { companyName: 'Acme', assistantId: 'asst_1', ttlSeconds: 120 });
    for (const key of ['slug:acme', 'assistant:asst_1']) {
      const pttl = integerReply(await suite.server.command('PTTL', mappingKey(key)));
      expect(pttl).toBeGreaterThan(110_000);
      expect(pttl).toBeLessThanOrEqual(120_000);
    }
  });

  it('is readable by a second app instance sharing the Redis', async () => {
    const writer = await readyApp();
    const reader = await readyApp();
    await postMapping(writer, { companyName: 'Globex', assistantId: 'asst_g', region: 'eu' });
    const bySlug = await getBySlug(reader, 'globex');
    expect(bySlug.statusCode).toBe(200);
    expect(bySlug.json()).toMatchObject({ assistantId: 'asst_g', region: 'eu' });
    const byAssistant = await getByAssistant(reader, 'asst_g');
    expect(byAssistant.json()).toEqual({
      companySlug: 'globex',
      assistantId: 'asst_g',
      companyName: 'Globex',
    });
    const stats = (await reader.inject({ method: 'GET', url: '/api/cache/stats' })).json();
    expect(stats.totals.hits.redis).toBeGreaterThanOrEqual(2);
  });

  it('is idempotent: the same assistant for the same company keeps its slug and createdAt', async () => {
    const app = await readyApp();
    await postMapping(app, { companyName: 'Acme', assistantId: 'asst_1', plan: 'free' });
    const first = (await getBySlug(app, 'acme')).json();
    const again = await postMapping(app, { companyName: 'ACME', assistantId: 'asst_1', plan: 'pro' });
    expect(again.statusCode).toBe(201);
    expect(again.json().companySlug).toBe('acme');
    const second = (await getBySlug(app, 'acme')).json();
    expect(second).toMatchObject({ companyName: 'ACME', plan: 'pro', createdAt: first.createdAt });
    // No acme-2 was taken by the repost.
    expect((await getBySlug(app, 'acme-2')).statusCode).toBe(404);
  });

  it('moves an assistant to another company and removes the old slug in the same MULTI', async () => {
    const app = await readyApp();
    await postMapping(app, { companyName: 'Acme', assistantId: 'asst_1' });
    const before = await suite.server.command('INFO', 'commandstats');
    const moved = await postMapping(app, { companyName: 'Initech', assistantId: 'asst_1' });
    const after = await suite.server.command('INFO', 'commandstats');
    expect(moved.json().companySlug).toBe('initech');
    expect(commandCalls(after, 'multi') - commandCalls(before, 'multi')).toBe(1);
    expect(commandCalls(after, 'set') - commandCalls(before, 'set')).toBe(3);

    expect((await getBySlug(app, 'acme')).statusCode).toBe(404);
    expect((await getByAssistant(app, 'asst_1')).json().companySlug).toBe('initech');
    // Another instance, with nothing in memory, agrees.
    const other = await readyApp();
    expect((await getBySlug(other, 'acme')).statusCode).toBe(404);
    expect((await getBySlug(other, 'initech')).json().assistantId).toBe('asst_1');
    // The freed slug can be taken by another assistant.
    expect((await postMapping(app, { companyName: 'Acme', assistantId: 'asst_2' })).json().companySlug).toBe(
      'acme',
    );
  });
});

describe('slugs', () => {
  it('strips diacritics and maps unicode names to ASCII slugs', async () => {
    const app = await readyApp();
    const cases: Array<[string, string]> = [
      ['Café Müller GmbH', 'cafe-muller-gmbh'],
      ['Ångström & Søn', 'angstrom-son'],
      ['Straße 42', 'strasse-42'],
      ['日本 Robotics 株式会社', 'robotics'],
    ];
    for (const [i, [companyName, slug]] of cases.entries()) {
      const res = await postMapping(app, { companyName, assistantId: `asst_${i}` });
      expect(res.statusCode).toBe(201);
      expect(res.json().companySlug).toBe(slug);
      expect((await getBySlug(app, slug)).json().companyName).toBe(companyName);
    }
  });

  it('appends -2, -3 ... when the slug belongs to another assistant', async () => {
    const app = await readyApp();
    const slugs = [];
    for (const [i, companyName] of ['Acme', 'ACME', 'acme!', 'Acme'].entries()) {
      slugs.push((await postMapping(app, { companyName, assistantId: `asst_${i}` })).json().companySlug);
    }
    expect(slugs).toEqual(['acme', 'acme-2', 'acme-3', 'acme-4']);
    expect((await getBySlug(app, 'acme-3')).json().assistantId).toBe('asst_2');
    expect((await getByAssistant(app, 'asst_1')).json().companySlug).toBe('acme-2');
  });

  it('gives concurrent posts for one company distinct slugs', async () => {
    const app = await readyApp();
    const responses = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => postMapping(app, { companyName: 'Acme', assistantId: `asst_${i}` })),
    );
    const slugs = responses.map((r) => r.json().companySlug);
    expect(new Set(slugs)).toEqual(new Set(['acme', 'acme-2', 'acme-3', 'acme-4', 'acme-5']));
    for (const [i, slug] of slugs.entries()) {
      expect((await getByAssistant(app, `asst_${i + 1}`)).json().companySlug).toBe(slug);
    }
  });

  it('keeps suffixed slugs within 64 characters', async () => {
    const app = await readyApp();
    const name = `${'Long Company Name '.repeat(10)}`.trim();
    const first = (await postMapping(app, { companyName: name, assistantId: 'a1' })).json().companySlug;
    const second = (await postMapping(app, { companyName: name, assistantId: 'a2' })).json().companySlug;
    expect(first.length).toBeLessThanOrEqual(64);
    expect(second.length).toBeLessThanOrEqual(64);
    expect(second).toMatch(/^[a-z0-9]+(?:-[a-z0-9]+)*-2$/);
    expect((await getBySlug(app, second)).json().assistantId).toBe('a2');
  });

  it('answers 409 once acme to acme-100 are all taken', async () => {
    const app = appFromEnv({}); // memory-only: the rule does not depend on Redis, and it is faster
    for (let i = 1; i <= 100; i++) {
      expect((await postMapping(app, { companyName: 'Acme', assistantId: `a${i}` })).statusCode).toBe(201);
    }
    const res = await postMapping(app, { companyName: 'Acme', assistantId: 'a101' });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({
      code: 'E_SLUG_TAKEN',
      message: expect.stringContaining('acme-100'),
    });
  });
});

describe('400 on bad input', () => {
  it.each([
    ['a missing slug', ''],
    ['an empty slug', '?slug='],
    ['uppercase', '?slug=Acme'],
    ['a double dash', '?slug=acme--corp'],
    ['a leading dash', '?slug=-acme'],
    ['a trailing dash', '?slug=acme-'],
    ['a non-ASCII letter', '?slug=caf%C3%A9'],
    ['65 characters', `?slug=${'a'.repeat(65)}`],
    ['two slugs', '?slug=a&slug=b'],
  ])('GET /api/company-assistant with %s', async (_, query) => {
    const app = appFromEnv({});
    const res = await app.inject({ method: 'GET', url: `/api/company-assistant${query}` });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({ code: 'E_VALIDATION', message: expect.stringContaining('slug') });
  });

  it.each([
    ['a space', 'bad id'],
    ['a dot', 'asst.1'],
    ['129 characters', 'a'.repeat(129)],
    ['a unicode letter', 'assé'],
  ])('GET /api/assistants/:assistantId/company with %s', async (_, id) => {
    const app = appFromEnv({});
    const res = await getByAssistant(app, id);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('E_VALIDATION');
  });

  it('accepts a 128-character assistant id', async () => {
    const app = appFromEnv({});
    const id = 'a'.repeat(128);
    expect((await postMapping(app, { companyName: 'Acme', assistantId: id })).statusCode).toBe(201);
    expect((await getByAssistant(app, id)).statusCode).toBe(200);
  });

  it.each([
    ['no companyName', { assistantId: 'a1' }, 'E_VALIDATION'],
    ['no assistantId', { companyName: 'Acme' }, 'E_VALIDATION'],
    ['an empty companyName', { companyName: '', assistantId: 'a1' }, 'E_VALIDATION'],
    ['a blank companyName', { companyName: '   \t ', assistantId: 'a1' }, 'E_VALIDATION'],
    ['a 201-character companyName', { companyName: 'x'.repeat(201), assistantId: 'a1' }, 'E_VALIDATION'],
    ['a numeric companyName', { companyName: 42, assistantId: 'a1' }, 'E_VALIDATION'],
    ['a companyName with no slug', { companyName: '日本', assistantId: 'a1' }, 'E_EMPTY_SLUG'],
    ['a punctuation-only companyName', { companyName: '!!!', assistantId: 'a1' }, 'E_EMPTY_SLUG'],
    ['a bad assistantId', { companyName: 'Acme', assistantId: 'no spaces' }, 'E_VALIDATION'],
    ['a numeric assistantId', { companyName: 'Acme', assistantId: 123 }, 'E_VALIDATION'],
    ['a long assistantId', { companyName: 'Acme', assistantId: 'a'.repeat(129) }, 'E_VALIDATION'],
    ['ttlSeconds 0', { companyName: 'Acme', assistantId: 'a1', ttlSeconds: 0 }, 'E_VALIDATION'],
    ['negative ttlSeconds', { companyName: 'Acme', assistantId: 'a1', ttlSeconds: -5 }, 'E_VALIDATION'],
    ['fractional ttlSeconds', { companyName: 'Acme', assistantId: 'a1', ttlSeconds: 1.5 }, 'E_VALIDATION'],
    ['string ttlSeconds', { companyName: 'Acme', assistantId: 'a1', ttlSeconds: '60' }, 'E_VALIDATION'],
    [
      'ttlSeconds over 365 days',
      { companyName: 'Acme', assistantId: 'a1', ttlSeconds: 365 * 86400 + 1 },
      'E_VALIDATION',
    ],
    [
      'a reserved field',
      { companyName: 'Acme', assistantId: 'a1', createdAt: 'yesterday' },
      'E_RESERVED_FIELD',
    ],
    ['an array body', [{ companyName: 'Acme', assistantId: 'a1' }], 'E_VALIDATION'],
  ])('POST with %s', async (_, body, code) => {
    const app = appFromEnv({});
    const res = await postMapping(app, body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({ code, message: expect.any(String) });
  });

  it('POST with malformed JSON or no body', async () => {
    const app = appFromEnv({});
    const malformed = await app.inject({
      method: 'POST',
      url: '/api/company-assistants',
      headers: { 'content-type': 'application/json' },
      payload: '{"companyName": "Acme",',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toMatch(/^FST_ERR_CTP_/);
    const empty = await app.inject({ method: 'POST', url: '/api/company-assistants' });
    expect(empty.statusCode).toBe(400);
    const poisoned = await app.inject({
      method: 'POST',
      url: '/api/company-assistants',
      headers: { 'content-type': 'application/json' },
      payload: '{"companyName":"Acme","assistantId":"a1","__proto__":{"admin":true}}',
    });
    expect(poisoned.statusCode).toBe(400);
  });

  it('the max 365-day ttlSeconds is accepted', async () => {
    const app = appFromEnv({});
    const res = await postMapping(app, { companyName: 'Acme', assistantId: 'a1', ttlSeconds: 365 * 86400 });
    expect(res.statusCode).toBe(201);
  });
});

describe('404', () => {
  it('for an unknown slug or assistant, and an unknown route', async () => {
    const app = await readyApp();
    const slug = await getBySlug(app, 'nobody');
    expect(slug.statusCode).toBe(404);
    expect(slug.json().error.code).toBe('E_NOT_FOUND');
    const assistant = await getByAssistant(app, 'asst_nobody');
    expect(assistant.statusCode).toBe(404);
    expect(assistant.json().error.code).toBe('E_NOT_FOUND');
    const route = await app.inject({ method: 'GET', url: '/api/nothing-here' });
    expect(route.statusCode).toBe(404);
    expect(route.json().error.code).toBe('E_NOT_FOUND');
  });

  // Before Postgres held the mappings, a reverse entry whose forward entry was gone was a 404.
  // Now the forward entry is rebuilt from Postgres.
  it('not for an assistant whose forward entry is gone: it is rebuilt from Postgres', async () => {
    const writer = await readyApp();
    await postMapping(writer, { companyName: 'Acme', assistantId: 'asst_1' });
    expect(await suite.server.command('UNLINK', mappingKey('slug:acme'))).toBe(':1\r\n');
    // A fresh instance has nothing in memory: it sees the reverse entry alone.
    const reader = await readyApp();
    expect(await suite.server.command('EXISTS', mappingKey('assistant:asst_1'))).toBe(':1\r\n');
    const res = await getByAssistant(reader, 'asst_1');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ companySlug: 'acme', assistantId: 'asst_1', companyName: 'Acme' });
    expect(await suite.server.command('EXISTS', mappingKey('slug:acme'))).toBe(':1\r\n');
    expect((await getBySlug(reader, 'acme')).json().assistantId).toBe('asst_1');
  });
});

describe('Postgres behind the cache', () => {
  it('rebuilds expired entries from Postgres: queried once, then cached again for 30 days', async () => {
    const recording = recordingDatabase(sharedDatabase());
    const app = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database: recording.db });
    await waitForHealth(app, 'ok');
    await postMapping(app, { companyName: 'Acme', assistantId: 'asst_1', plan: 'pro', ttlSeconds: 1 });
    // Both directions expire in Redis (and in this instance's memory) after a second.
    await expect
      .poll(
        async () =>
          integerReply(
            await suite.server.command('EXISTS', mappingKey('slug:acme'), mappingKey('assistant:asst_1')),
          ),
        {
          timeout: 5000,
          interval: 50,
        },
      )
      .toBe(0);
    const before = recording.statements.length;
    for (let i = 0; i < 3; i++) {
      expect((await getByAssistant(app, 'asst_1')).json()).toEqual({
        companySlug: 'acme',
        assistantId: 'asst_1',
        companyName: 'Acme',
      });
      expect((await getBySlug(app, 'acme')).json()).toMatchObject({ assistantId: 'asst_1', plan: 'pro' });
    }
    const queries = recording.statements.slice(before);
    expect(queries.filter((s) => s.includes('WHERE assistant_id'))).toHaveLength(1);
    expect(queries.filter((s) => s.includes('WHERE company_slug'))).toHaveLength(1);
    expect(queries).toHaveLength(2);
    for (const key of ['slug:acme', 'assistant:asst_1']) {
      expect(integerReply(await suite.server.command('PTTL', mappingKey(key)))).toBeGreaterThan(
        THIRTY_DAYS_MS - 10_000,
      );
    }
  });

  it('keeps a move in Postgres: once the tombstone is gone the old slug is still not found', async () => {
    const app = await readyApp();
    await postMapping(app, { companyName: 'Acme', assistantId: 'asst_1' });
    await postMapping(app, { companyName: 'Initech', assistantId: 'asst_1' });
    await suite.server.command('FLUSHALL');
    const fresh = await readyApp();
    expect((await getBySlug(fresh, 'acme')).statusCode).toBe(404);
    expect((await getByAssistant(fresh, 'asst_1')).json().companySlug).toBe('initech');
    const { rows } = await sharedDatabase().query(
      'SELECT company_slug, assistant_id FROM company_assistants',
    );
    expect(rows).toEqual([{ company_slug: 'initech', assistant_id: 'asst_1' }]);
  });

  it('a lookup that read Postgres before a save committed cannot cache its stale answer', async () => {
    // Holds the result of slug lookups after Postgres answered, while the gate is closed.
    let gate: Promise<void> | undefined;
    let open: (() => void) | undefined;
    let held = 0;
    const inner = sharedDatabase();
    const database: Database = {
      engine: inner.engine,
      location: inner.location,
      async query<R extends object>(sql: string, params?: readonly unknown[]) {
        const result = await inner.query<R>(sql, params);
        if (gate !== undefined && sql.includes('WHERE company_slug')) {
          held++;
          await gate;
        }
        return result;
      },
      exec: (sql) => inner.exec(sql),
      transaction: (fn) => inner.transaction(fn),
      close: () => inner.close(),
    };
    const app = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database });
    await waitForHealth(app, 'ok');
    gate = new Promise((resolve) => (open = resolve));
    const early = getBySlug(app, 'acme'); // reads "no such slug", then waits
    await expect.poll(() => held, { timeout: 5000, interval: 5 }).toBe(1);
    expect((await postMapping(app, { companyName: 'Acme', assistantId: 'asst_1' })).statusCode).toBe(201);
    gate = undefined;
    open?.();
    expect((await early).statusCode).toBe(404); // it answered what it read
    // ... but its "not found" did not replace the mapping, here or in Redis.
    expect((await getBySlug(app, 'acme')).json().assistantId).toBe('asst_1');
    const other = await readyApp();
    expect((await getBySlug(other, 'acme')).json().assistantId).toBe('asst_1');
  });
});

describe('Redis killed mid-request', () => {
  it('POST still answers 201 and stores in Postgres; lookups answer 200', async () => {
    // Holds mapping saves inside their Postgres transaction while the gate is closed.
    let open: (() => void) | undefined;
    // Closed (set) after a first, unhindered save.
    let gate: Promise<void> | undefined = undefined;
    let waiting = 0;
    const inner = sharedDatabase();
    const database: Database = {
      engine: inner.engine,
      location: inner.location,
      query: (sql, params) => inner.query(sql, params),
      exec: (sql) => inner.exec(sql),
      transaction: (fn) =>
        inner.transaction(async (tx) => {
          const result = await fn(tx);
          if (gate !== undefined) {
            waiting++;
            await gate;
          }
          return result;
        }),
      close: () => inner.close(),
    };
    const app = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database });
    await waitForHealth(app, 'ok');
    expect((await postMapping(app, { companyName: 'Warm', assistantId: 'asst_warm' })).statusCode).toBe(201);
    gate = new Promise((resolve) => (open = resolve));
    const inFlight = [1, 2, 3].map((i) =>
      postMapping(app, { companyName: 'Acme', assistantId: `asst_${i}` }),
    );
    // The first save is inside its transaction (the others queue behind it): kill Redis, let go.
    await expect.poll(() => waiting, { timeout: 5000, interval: 5 }).toBeGreaterThanOrEqual(1);
    await suite.server.kill();
    open?.();
    const answered = await Promise.all(inFlight);
    expect(answered.map((r) => r.statusCode)).toEqual([201, 201, 201]);
    expect(answered.map((r) => r.json().companySlug)).toEqual(['acme', 'acme-2', 'acme-3']);

    const statuses: number[] = [];
    for (let round = 0; round < 4; round++) {
      for (const [i, slug] of ['acme', 'acme-2', 'acme-3'].entries()) {
        const bySlug = await getBySlug(app, slug);
        statuses.push(bySlug.statusCode);
        expect(bySlug.json().assistantId).toBe(`asst_${i + 1}`);
        statuses.push((await getByAssistant(app, `asst_${i + 1}`)).statusCode);
      }
      statuses.push((await getBySlug(app, 'nobody')).statusCode);
    }
    expect(statuses.filter((s) => s !== 200 && s !== 404)).toEqual([]);
    expect(statuses.filter((s) => s === 404)).toHaveLength(4);

    // A second instance with nothing in memory answers from Postgres.
    const other = appFromEnv({ REDIS_URL: suite.server.url });
    expect((await getByAssistant(other, 'asst_2')).json().companySlug).toBe('acme-2');
    expect((await getBySlug(other, 'warm')).json().assistantId).toBe('asst_warm');
  });
});
