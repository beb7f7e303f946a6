import type { FastifyInstance } from 'fastify';
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
  gatedDatabase,
  healthyApp,
  recordingDatabase,
  unusedPhone,
  waitForHealth,
} from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is flushed.
afterEach(closeApps);

let db: Database;
let defaultOrg: { id: string; slug: string };
const OTHER_ORG = '20000000-0000-4000-8000-000000000001';

beforeAll(async () => {
  db = memoryDatabase();
  await runMigrations(db);
  await seedDemoData(db, { organizations: 2, leadsPerOrg: 5 });
  await db.query(`INSERT INTO organizations (id, name, slug) VALUES ($1, 'Other Org', 'other-org')`, [
    OTHER_ORG,
  ]);
  const { rows } = await db.query<{ id: string; slug: string }>(
    'SELECT id, slug FROM organizations WHERE is_default',
  );
  defaultOrg = rows[0] as { id: string; slug: string };
});
afterAll(async () => {
  await db.close();
});

/** An app without Redis, on this file's database. */
function memoryApp() {
  return appFromEnv({}, undefined, { database: db });
}

const readyApp = (database: Database = db) => healthyApp(suite.server.url, database);

function postMessage(app: FastifyInstance, body: unknown) {
  return app.inject({ method: 'POST', url: '/api/conversations/messages', payload: body as object });
}

function getContext(app: FastifyInstance, query: Record<string, string>) {
  return app.inject({ method: 'GET', url: '/api/conversations/context', query });
}

function putSummary(app: FastifyInstance, body: unknown) {
  return app.inject({ method: 'PUT', url: '/api/conversations/summary', payload: body as object });
}

function getSummary(app: FastifyInstance, query: Record<string, string>) {
  return app.inject({ method: 'GET', url: '/api/conversations/summary', query });
}

/** Appends `count` messages `<prefix>1`, `<prefix>2` ... alternating user and assistant. */
async function appendMany(app: FastifyInstance, phone: string, count: number, prefix = 'm', org?: string) {
  for (let i = 1; i <= count; i++) {
    const res = await postMessage(app, {
      phone,
      ...(org === undefined ? {} : { org }),
      role: i % 2 === 1 ? 'user' : 'assistant',
      content: `${prefix}${i}`,
    });
    expect(res.statusCode).toBe(201);
  }
}

function contents(res: { json(): { messages: Array<{ content: string }> } }): string[] {
  return res.json().messages.map((m) => m.content);
}

async function messageCount(phone: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM conversation_messages m JOIN conversations c ON c.id = m.conversation_id
     WHERE c.phone = $1`,
    [phone],
  );
  return rows[0]?.n ?? 0;
}

describe('POST /api/conversations/messages: bad input', () => {
  it.each([
    [
      'a phone that is not a number',
      { phone: 'abc', role: 'user', content: 'hi' },
      'E_INVALID_PHONE',
      '"abc"',
    ],
    ['an invalid number', { phone: '+1 415 555 01', role: 'user', content: 'hi' }, 'E_INVALID_PHONE', '01'],
    ['an unknown role', { role: 'robot', content: 'hi' }, 'E_VALIDATION', '"robot"'],
    ['a numeric role', { role: 7, content: 'hi' }, 'E_VALIDATION', 'got 7'],
    ['a null role', { role: null, content: 'hi' }, 'E_VALIDATION', 'got null'],
    ['empty content', { role: 'user', content: '' }, 'E_VALIDATION', 'content'],
    ['numeric content', { role: 'user', content: 42 }, 'E_VALIDATION', 'got 42'],
    [
      'content of 4,001 characters',
      { role: 'user', content: 'x'.repeat(4001) },
      'E_VALIDATION',
      'limit is 4000',
    ],
    [
      'content of 4,001 emoji',
      { role: 'user', content: '😀'.repeat(4001) },
      'E_VALIDATION',
      '4001 characters',
    ],
    ['content with NUL', { role: 'user', content: 'a\u0000b' }, 'E_VALIDATION', 'NUL'],
    ['content with a lone surrogate', { role: 'user', content: 'a\ud800b' }, 'E_VALIDATION', 'surrogate'],
    ['no role', { content: 'hi' }, 'E_VALIDATION', 'role'],
    ['no content', { role: 'user' }, 'E_VALIDATION', 'content'],
    ['no phone', { phone: undefined, role: 'user', content: 'hi' }, 'E_VALIDATION', 'phone'],
    ['a numeric phone', { phone: 14155550123, role: 'user', content: 'hi' }, 'E_VALIDATION', 'phone'],
    ['an empty org', { org: '', role: 'user', content: 'hi' }, 'E_VALIDATION', 'org'],
  ])('answers 400 for %s, naming it, and stores nothing', async (_, body, code, named) => {
    const app = memoryApp();
    const phone = unusedPhone();
    const res = await postMessage(app, { phone, ...body });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({ code, message: expect.stringContaining(named) });
    expect(await messageCount(phone)).toBe(0);
  });

  it('answers 400 for malformed JSON and for a body that is not an object', async () => {
    const app = memoryApp();
    const malformed = await app.inject({
      method: 'POST',
      url: '/api/conversations/messages',
      headers: { 'content-type': 'application/json' },
      payload: '{"phone": ',
    });
    expect(malformed.statusCode).toBe(400);
    const array = await postMessage(app, [{ phone: unusedPhone(), role: 'user', content: 'hi' }]);
    expect(array.statusCode).toBe(400);
    expect(array.json().error.code).toBe('E_VALIDATION');
  });

  it('stores content of exactly 4,000 characters (8,000 UTF-16 units of emoji) unchanged', async () => {
    const app = memoryApp();
    const phone = unusedPhone();
    const content = '😀'.repeat(4000);
    const res = await postMessage(app, { phone, role: 'system', content });
    expect(res.statusCode).toBe(201);
    expect(res.json().message).toMatchObject({ role: 'system', content });
    const context = await getContext(app, { phone, limit: '1' });
    expect(contents(context)).toEqual([content]);
  });
});

describe('GET /api/conversations/context: bad input', () => {
  it.each(['0', '51', '-1', '1.5', 'abc', '', '1e1', '99999999999999999999'])(
    'answers 400 E_VALIDATION for limit=%j, naming the range',
    async (limit) => {
      const app = memoryApp();
      const res = await getContext(app, { phone: unusedPhone(), limit });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('E_VALIDATION');
      if (limit !== '' && limit.length <= 16) {
        expect(res.json().error.message).toContain(
          `${JSON.stringify(limit)}: expected a whole number from 1 to 50`,
        );
      }
    },
  );

  it.each([
    ['no phone', ''],
    ['a bad phone', '?phone=12'],
    ['two phones', '?phone=4155550123&phone=4155550124'],
    ['two limits', '?phone=4155550123&limit=1&limit=2'],
    ['a 129-character org', `?phone=4155550123&org=${'a'.repeat(129)}`],
  ])('answers 400 for %s', async (_, query) => {
    const app = memoryApp();
    const res = await app.inject({ method: 'GET', url: `/api/conversations/context${query}` });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toMatch(/^E_(VALIDATION|INVALID_PHONE)$/);
  });
});

describe('GET /api/conversations/context', () => {
  it('returns the latest messages oldest first: 20 by default, up to 50', async () => {
    const app = await readyApp();
    const phone = unusedPhone();
    await appendMany(app, phone, 60);
    const range = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);

    const byDefault = await getContext(app, { phone });
    expect(byDefault.statusCode).toBe(200);
    expect(byDefault.json()).toMatchObject({
      organizationId: defaultOrg.id,
      organizationMatch: 'default',
      phone,
      limit: 20,
    });
    expect(contents(byDefault)).toEqual(range(41, 60));
    expect(byDefault.json().messages[0]).toEqual({
      id: expect.stringMatching(/^\d+$/),
      role: 'user',
      content: 'm41',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    const ids = byDefault.json().messages.map((m: { id: string }) => Number(m.id));
    expect(ids).toEqual([...ids].sort((x, y) => x - y));

    expect(contents(await getContext(app, { phone, limit: '50' }))).toEqual(range(11, 60));
    expect(contents(await getContext(app, { phone, limit: '1' }))).toEqual(['m60']);
    expect(contents(await getContext(app, { phone, limit: '7' }))).toEqual(range(54, 60));
  });

  it('caches one capped list per conversation: reads of any limit share it, for 30 minutes', async () => {
    const { db: recorded, statements } = recordingDatabase(db);
    const app = await readyApp(recorded);
    const phone = unusedPhone();
    await appendMany(app, phone, 55);
    const loads = () => statements.filter((s) => s.includes('FROM conversation_messages')).length;
    const before = loads();
    const first = await getContext(app, { phone, limit: '50' });
    expect(first.headers['x-cache']).toBe('MISS');
    for (const limit of ['50', '20', '3']) {
      const res = await getContext(app, { phone, limit });
      expect(res.headers['x-cache']).toBe('HIT');
    }
    expect(loads()).toBe(before + 1);
    // The loader asked Postgres for 50 rows, never all 55.
    expect(statements.filter((s) => s.includes('FROM conversation_messages')).at(-1)).toContain('LIMIT $3');

    const scan = await suite.server.command(
      'SCAN',
      '0',
      'MATCH',
      `*:d:conversations:@${defaultOrg.id}:*`,
      'COUNT',
      '1000',
    );
    const keys = scan.split('\r\n').filter((line) => line.startsWith('larder:') && line.includes('context'));
    expect(keys).toHaveLength(1);
    const pttl = integerReply(await suite.server.command('PTTL', keys[0] as string));
    expect(pttl).toBeGreaterThan(29 * 60_000);
    expect(pttl).toBeLessThanOrEqual(30 * 60_000);
  });

  it('answers an empty list for a conversation without messages, and creates nothing', async () => {
    const app = await readyApp();
    const phone = unusedPhone();
    const res = await getContext(app, { phone });
    expect(res.statusCode).toBe(200);
    expect(res.json().messages).toEqual([]);
    expect((await db.query('SELECT 1 FROM conversations WHERE phone = $1', [phone])).rows).toEqual([]);
    // A first message after the cached empty list is seen at once.
    await appendMany(app, phone, 1, 'first');
    expect(contents(await getContext(app, { phone }))).toEqual(['first1']);
  });

  it('normalises the phone and keeps each organization apart', async () => {
    const app = await readyApp();
    const e164 = unusedPhone();
    const national = `(${e164.slice(2, 5)}) ${e164.slice(5, 8)}-${e164.slice(8)}`;
    await postMessage(app, { phone: national, role: 'user', content: 'to default' });
    await postMessage(app, { phone: e164, org: 'other-org', role: 'user', content: 'to other' });
    await postMessage(app, {
      phone: `tel:${e164}`,
      org: OTHER_ORG,
      role: 'assistant',
      content: 'other reply',
    });

    const mine = await getContext(app, { phone: e164 });
    expect(mine.json()).toMatchObject({ organizationId: defaultOrg.id, phone: e164 });
    expect(contents(mine)).toEqual(['to default']);
    const other = await getContext(app, { phone: national, org: 'other-org' });
    expect(other.json()).toMatchObject({ organizationId: OTHER_ORG, organizationMatch: 'slug', phone: e164 });
    expect(contents(other)).toEqual(['to other', 'other reply']);
    expect(
      (await db.query('SELECT organization_id FROM conversations WHERE phone = $1 ORDER BY 1', [e164])).rows,
    ).toHaveLength(2);
  });

  it('never returns stale context after an append, on this instance', async () => {
    const { db: recorded, statements } = recordingDatabase(db);
    const app = await readyApp(recorded);
    const phone = unusedPhone();
    const loads = () => statements.filter((s) => s.includes('FROM conversation_messages')).length;
    const expected: string[] = [];
    for (let i = 1; i <= 55; i++) {
      // Read twice (the second from the cache), then append: the next read must show the append.
      const fresh = await getContext(app, { phone, limit: '50' });
      expect(fresh.headers['x-cache']).toBe('MISS');
      expect(contents(fresh)).toEqual(expected.slice(-50));
      const cached = await getContext(app, { phone, limit: '50' });
      expect(cached.headers['x-cache']).toBe('HIT');
      expect(contents(cached)).toEqual(expected.slice(-50));
      expect((await postMessage(app, { phone, role: 'user', content: `n${i}` })).statusCode).toBe(201);
      expected.push(`n${i}`);
    }
    expect(contents(await getContext(app, { phone, limit: '50' }))).toEqual(expected.slice(-50));
    expect(loads()).toBe(56);
  });

  it('never returns stale context after an append on another instance sharing the Redis', async () => {
    const [a, b] = [await readyApp(), await readyApp()];
    const phone = unusedPhone();
    await appendMany(a, phone, 3);
    // Both instances have read it, so Redis holds it.
    for (const app of [a, b, a, b])
      expect(contents(await getContext(app, { phone }))).toEqual(['m1', 'm2', 'm3']);
    expect((await getContext(b, { phone })).headers['x-cache']).toBe('HIT');

    const expected = ['m1', 'm2', 'm3'];
    for (let i = 1; i <= 20; i++) {
      const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
      expect((await postMessage(writer, { phone, role: 'assistant', content: `x${i}` })).statusCode).toBe(
        201,
      );
      expected.push(`x${i}`);
      expect(contents(await getContext(writer, { phone, limit: '50' }))).toEqual(expected);
      // Conversations read through Redis without a memory tier: the other instance sees the append
      // at once, from the entry the writer's read put in Redis.
      const read = await getContext(reader, { phone, limit: '50' });
      expect(read.headers['x-cache']).toBe('HIT');
      expect(contents(read)).toEqual(expected);
      // And straight after an append, before any read, it reloads from Postgres.
      expect((await postMessage(writer, { phone, role: 'user', content: `y${i}` })).statusCode).toBe(201);
      expected.push(`y${i}`);
      const direct = await getContext(reader, { phone, limit: '50' });
      expect(direct.headers['x-cache']).toBe('MISS');
      expect(contents(direct)).toEqual(expected.slice(-50));
    }
    // A third instance, with nothing in memory, reads the same from Redis.
    const c = await readyApp();
    const third = await getContext(c, { phone, limit: '50' });
    expect(third.headers['x-cache']).toBe('HIT');
    expect(contents(third)).toEqual(expected);
  });
});

describe('conversation summaries', () => {
  it('answers null before any summary, then the latest one written, cached for 24 hours', async () => {
    const { db: recorded, statements } = recordingDatabase(db);
    const app = await readyApp(recorded);
    const phone = unusedPhone();
    const loads = () => statements.filter((s) => s.startsWith('SELECT summary')).length;

    const none = await getSummary(app, { phone });
    expect(none.statusCode).toBe(200);
    expect(none.json()).toEqual({
      organizationId: defaultOrg.id,
      organizationMatch: 'default',
      phone,
      summary: null,
      updatedAt: null,
    });
    expect(none.headers['x-cache']).toBe('MISS');
    expect((await getSummary(app, { phone })).headers['x-cache']).toBe('HIT');

    const put = await putSummary(app, { phone, summary: 'Wants a quote for 3 bikes.' });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({
      phone,
      summary: 'Wants a quote for 3 bikes.',
      updatedAt: expect.any(String),
    });
    const after = await getSummary(app, { phone });
    expect(after.headers['x-cache']).toBe('MISS');
    expect(after.json()).toEqual(put.json());
    expect((await getSummary(app, { phone })).headers['x-cache']).toBe('HIT');
    expect(loads()).toBe(2);

    const replaced = await putSummary(app, { phone, summary: 'Bought 2 bikes.' });
    expect((await getSummary(app, { phone })).json().summary).toBe('Bought 2 bikes.');
    expect(Date.parse(replaced.json().updatedAt)).toBeGreaterThanOrEqual(Date.parse(put.json().updatedAt));

    const scan = await suite.server.command(
      'SCAN',
      '0',
      'MATCH',
      `*:d:conversations:@${defaultOrg.id}:summary*`,
      'COUNT',
      '1000',
    );
    const keys = scan.split('\r\n').filter((line) => line.startsWith('larder:'));
    expect(keys).toHaveLength(1);
    const pttl = integerReply(await suite.server.command('PTTL', keys[0] as string));
    expect(pttl).toBeGreaterThan(23 * 3_600_000);
    expect(pttl).toBeLessThanOrEqual(24 * 3_600_000);
  });

  it('keeps summaries and contexts apart: a summary does not touch the messages, nor an append the summary', async () => {
    const app = await readyApp();
    const phone = unusedPhone();
    await putSummary(app, { phone, org: 'other-org', summary: 'first call' });
    expect(contents(await getContext(app, { phone, org: 'other-org' }))).toEqual([]);
    await appendMany(app, phone, 2, 'm', 'other-org');
    expect((await getSummary(app, { phone, org: 'other-org' })).json().summary).toBe('first call');
    expect((await getSummary(app, { phone })).json().summary).toBeNull();
  });

  it('never returns a stale summary after a write on another instance sharing the Redis', async () => {
    const [a, b] = [await readyApp(), await readyApp()];
    const phone = unusedPhone();
    await putSummary(a, { phone, summary: 'v1' });
    for (const app of [a, b, a, b]) expect((await getSummary(app, { phone })).json().summary).toBe('v1');
    for (let i = 2; i <= 20; i++) {
      const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
      await putSummary(writer, { phone, summary: `v${i}` });
      expect((await getSummary(reader, { phone })).json().summary).toBe(`v${i}`);
      expect((await getSummary(writer, { phone })).json().summary).toBe(`v${i}`);
    }
  });

  it.each([
    ['a summary of 8,001 characters', { summary: 's'.repeat(8001) }, 'limit is 8000'],
    ['an empty summary', { summary: '' }, 'summary'],
    ['a null summary', { summary: null }, 'got null'],
    ['no summary', {}, 'summary'],
    ['an object summary', { summary: { text: 'x' } }, 'summary'],
    ['a bad phone', { phone: '555', summary: 'x' }, '"555"'],
  ])('answers 400 for %s, naming it, and stores nothing', async (_, body, named) => {
    const app = memoryApp();
    const phone = unusedPhone();
    const res = await putSummary(app, { phone, ...body });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toContain(named);
    expect((await db.query('SELECT 1 FROM conversations WHERE phone = $1', [phone])).rows).toEqual([]);
  });

  it('stores a summary of exactly 8,000 characters, and answers 400 for a bad phone on read', async () => {
    const app = memoryApp();
    const phone = unusedPhone();
    expect((await putSummary(app, { phone, summary: 's'.repeat(8000) })).statusCode).toBe(200);
    expect((await getSummary(app, { phone })).json().summary).toHaveLength(8000);
    const bad = await getSummary(app, { phone: 'not a phone' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toEqual({
      code: 'E_INVALID_PHONE',
      message: expect.stringContaining('"not a phone"'),
    });
  });
});

describe('Redis killed mid-request', () => {
  it('answers from Postgres (never 500) while and after Redis dies, and stays fresh', async () => {
    const gated = gatedDatabase(db, /\bconversation/);
    const app = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database: gated.database });
    await waitForHealth(app, 'ok');
    const phones = [unusedPhone(), unusedPhone(), unusedPhone()];
    for (const phone of phones) await appendMany(app, phone, 2);
    const warm = phones[0] as string;
    expect(contents(await getContext(app, { phone: warm }))).toEqual(['m1', 'm2']);

    // Hold reads, appends and summary writes inside Postgres (past their Redis reads), then kill Redis.
    gated.close();
    const inFlight = [
      getContext(app, { phone: phones[1] as string }),
      getContext(app, { phone: phones[2] as string, limit: '1' }),
      postMessage(app, { phone: warm, role: 'user', content: 'during' }),
      putSummary(app, { phone: warm, summary: 'during the outage' }),
      getSummary(app, { phone: phones[1] as string }),
    ];
    await expect.poll(() => gated.state.waiting, { timeout: 5000, interval: 5 }).toBe(5);
    await suite.server.kill();
    gated.open();
    const answered = await Promise.all(inFlight);
    expect(answered.map((r) => r.statusCode)).toEqual([200, 200, 201, 200, 200]);
    expect(contents(answered[0] as never)).toEqual(['m1', 'm2']);
    expect(contents(answered[1] as never)).toEqual(['m2']);

    // With Redis gone: every read after a write on this instance shows the write.
    const statuses: number[] = [];
    const expected = ['m1', 'm2', 'during'];
    for (let i = 1; i <= 12; i++) {
      const read = await getContext(app, { phone: warm });
      statuses.push(read.statusCode);
      expect(contents(read)).toEqual(expected);
      const appended = await postMessage(app, { phone: warm, role: 'assistant', content: `down${i}` });
      statuses.push(appended.statusCode);
      expected.push(`down${i}`);
      statuses.push((await getContext(app, { phone: 'not a phone' })).statusCode);
    }
    expect(contents(await getContext(app, { phone: warm, limit: '50' }))).toEqual(expected);
    expect((await getSummary(app, { phone: warm })).json().summary).toBe('during the outage');
    await putSummary(app, { phone: warm, summary: 'after' });
    expect((await getSummary(app, { phone: warm })).json().summary).toBe('after');
    expect(statuses.filter((s) => s === 400)).toHaveLength(12);
    expect(statuses.filter((s) => s !== 400 && s !== 200 && s !== 201)).toEqual([]);

    // Redis back (empty): the service returns to it by itself and keeps answering fresh context.
    await suite.server.restart();
    await waitForHealth(app, 'ok', 10_000);
    await appendMany(app, warm, 1, 'back');
    expected.push('back1');
    expect(contents(await getContext(app, { phone: warm, limit: '50' }))).toEqual(expected);
  });

  it('starts and answers while Redis is down from the beginning', async () => {
    await suite.server.kill();
    const app = appFromEnv({ REDIS_URL: suite.server.url }, undefined, { database: db });
    const phone = unusedPhone();
    expect((await postMessage(app, { phone, role: 'user', content: 'hello' })).statusCode).toBe(201);
    const res = await getContext(app, { phone });
    expect(res.statusCode).toBe(200);
    expect(contents(res)).toEqual(['hello']);
    expect((await putSummary(app, { phone, summary: 'greeting' })).statusCode).toBe(200);
    expect((await getSummary(app, { phone })).json().summary).toBe('greeting');
  });
});
