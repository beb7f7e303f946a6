import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import type { Database } from '../../src/server/db/database.js';
import { runMigrations } from '../../src/server/db/migrate.js';
import { useRedisSuite } from '../support/suite.js';
import {
  appFromEnv,
  closeApps,
  getByAssistant,
  getBySlug,
  integerReply,
  mappingKey,
  openedApps,
  postMapping,
  recordingDatabase,
  sharedDatabase,
  waitForHealth,
} from './helpers.js';
import { createdAssistant, OpenAIStandIn } from './openai-stand-in.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is flushed.
afterEach(closeApps);

const standIn = new OpenAIStandIn();
beforeAll(() => standIn.start());
afterAll(() => standIn.stop());

const KEY = 'sk-test-prototypeKey-4xY8wq2Lm';
const THIRTY_DAYS_MS = 30 * 24 * 60 * 60 * 1000;

beforeEach(async () => {
  standIn.reset();
  const db = sharedDatabase();
  await runMigrations(db);
  await db.exec('TRUNCATE company_assistants, assistants, companies');
});

function postPrototype(app: FastifyInstance, body: unknown) {
  return app.inject({ method: 'POST', url: '/api/prototypes', payload: body as object });
}

async function readyApp(env: NodeJS.ProcessEnv = {}, database?: Database) {
  const app = appFromEnv({ REDIS_URL: suite.server.url, ...env }, undefined, { database });
  await waitForHealth(app, 'ok');
  return app;
}

/** Rows of the three tables, to show what a request stored. */
async function stored() {
  const db = sharedDatabase();
  const count = async (table: string) =>
    Number((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n);
  return {
    companies: await count('companies'),
    assistants: await count('assistants'),
    mappings: await count('company_assistants'),
  };
}

/** An app whose log lines are kept, to check what it logs. */
function loggedApp(env: NodeJS.ProcessEnv) {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const app = buildApp({
    config: loadConfig({ LARDER_ENV: 'test', ...env }),
    database: sharedDatabase(),
    seed: false,
    logger: { level: 'debug', stream },
  });
  openedApps.push(app);
  return { app, lines };
}

describe('POST /api/prototypes', () => {
  it('creates company, assistant and mapping, readable both ways, cached for 30 days', async () => {
    const app = await readyApp({ DEMO_BASE_URL: 'https://demo.example.com/d/' });
    const res = await postPrototype(app, { companyName: '  Sunny Café Solar ', location: ' Austin, TX ' });
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toBe('/api/company-assistant?slug=sunny-cafe-solar');
    const body = res.json();
    expect(body).toEqual({
      companySlug: 'sunny-cafe-solar',
      demoUrl: 'https://demo.example.com/d/sunny-cafe-solar',
      assistant: {
        id: expect.stringMatching(/^asst_local_[A-Za-z0-9_-]+$/),
        provider: 'local',
        name: 'Sunny Café Solar Assistant',
        instructions: expect.stringContaining('Sunny Café Solar, a company located in Austin, TX'),
        model: 'local',
        demoUrl: 'https://demo.example.com/d/sunny-cafe-solar',
        createdAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      },
      company: {
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        slug: 'sunny-cafe-solar',
        name: 'Sunny Café Solar',
        location: 'Austin, TX',
        createdAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      },
    });

    const db = sharedDatabase();
    const assistants = await db.query('SELECT id, company_id, provider, demo_url FROM assistants');
    expect(assistants.rows).toEqual([
      { id: body.assistant.id, company_id: body.company.id, provider: 'local', demo_url: body.demoUrl },
    ]);
    expect(await stored()).toEqual({ companies: 1, assistants: 1, mappings: 1 });

    const bySlug = await getBySlug(app, 'sunny-cafe-solar');
    expect(bySlug.statusCode).toBe(200);
    expect(bySlug.json()).toEqual({
      companySlug: 'sunny-cafe-solar',
      companyName: 'Sunny Café Solar',
      assistantId: body.assistant.id,
      location: 'Austin, TX',
      provider: 'local',
      createdAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
    });
    expect((await getByAssistant(app, body.assistant.id)).json()).toEqual({
      companySlug: 'sunny-cafe-solar',
      assistantId: body.assistant.id,
      companyName: 'Sunny Café Solar',
    });

    for (const key of ['slug:sunny-cafe-solar', `assistant:${body.assistant.id}`]) {
      const pttl = integerReply(await suite.server.command('PTTL', mappingKey(key)));
      expect(pttl).toBeGreaterThan(THIRTY_DAYS_MS - 10_000);
      expect(pttl).toBeLessThanOrEqual(THIRTY_DAYS_MS);
    }
  });

  it('builds the demo URL from HOST and PORT without DEMO_BASE_URL', async () => {
    const app = appFromEnv({ PORT: '4100' });
    const res = await postPrototype(app, { companyName: 'Acme', location: 'Berlin' });
    expect(res.json().demoUrl).toBe('http://127.0.0.1:4100/demo/acme');
  });

  it('resolves slug collisions with -2, -3 ..., also against mappings and prototype companies', async () => {
    const app = await readyApp();
    const slugs = [];
    for (const companyName of ['Acme', 'ACME', 'acme!']) {
      slugs.push((await postPrototype(app, { companyName, location: 'Paris' })).json().companySlug);
    }
    expect(slugs).toEqual(['acme', 'acme-2', 'acme-3']);

    // A slug a mapping holds is skipped by prototypes ...
    expect(
      (await postMapping(app, { companyName: 'Globex', assistantId: 'asst_g' })).json().companySlug,
    ).toBe('globex');
    const globex = await postPrototype(app, { companyName: 'Globex', location: 'Oslo' });
    expect(globex.json()).toMatchObject({
      companySlug: 'globex-2',
      demoUrl: expect.stringMatching(/\/globex-2$/),
    });
    // ... and a prototype company's slug by mappings.
    expect((await postMapping(app, { companyName: 'Acme', assistantId: 'asst_x' })).json().companySlug).toBe(
      'acme-4',
    );
    expect((await getBySlug(app, 'acme-2')).json().companyName).toBe('ACME');
  });

  it('gives concurrent prototypes of one company distinct slugs', async () => {
    const app = await readyApp();
    const responses = await Promise.all(
      [1, 2, 3, 4].map(() => postPrototype(app, { companyName: 'Initech', location: 'Ohio' })),
    );
    expect(responses.map((r) => r.statusCode)).toEqual([201, 201, 201, 201]);
    const slugs = responses.map((r) => r.json().companySlug);
    expect(new Set(slugs)).toEqual(new Set(['initech', 'initech-2', 'initech-3', 'initech-4']));
    for (const r of responses) {
      const { assistant, companySlug, demoUrl } = r.json();
      expect(demoUrl.endsWith(`/${companySlug}`)).toBe(true);
      expect((await getByAssistant(app, assistant.id)).json().companySlug).toBe(companySlug);
    }
    expect(await stored()).toEqual({ companies: 4, assistants: 4, mappings: 4 });
  });
});

describe('lookups rebuilt from Postgres', () => {
  it('after the cache entries are gone: Postgres is queried once, then the cache answers', async () => {
    const writer = await readyApp();
    const created = (await postPrototype(writer, { companyName: 'Hooli', location: 'Palo Alto' })).json();
    const assistantId: string = created.assistant.id;
    expect(await suite.server.command('FLUSHALL')).toBe('+OK\r\n');

    // A fresh instance: nothing in memory, nothing in Redis.
    const recording = recordingDatabase(sharedDatabase());
    const reader = await readyApp({}, recording.db);
    const bySlugSql = (s: string) => s.includes('FROM company_assistants WHERE company_slug');
    const byAssistantSql = (s: string) => s.includes('FROM company_assistants WHERE assistant_id');

    for (let i = 0; i < 3; i++) {
      const res = await getBySlug(reader, 'hooli');
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ assistantId, companyName: 'Hooli', location: 'Palo Alto' });
    }
    expect(recording.statements.filter(bySlugSql)).toHaveLength(1);
    for (let i = 0; i < 3; i++) {
      expect((await getByAssistant(reader, assistantId)).json().companySlug).toBe('hooli');
    }
    expect(recording.statements.filter(byAssistantSql)).toHaveLength(1);
    expect(recording.statements.filter(bySlugSql)).toHaveLength(1);

    // Rebuilt in Redis with the mapping TTL: a third instance does not query Postgres.
    const pttl = integerReply(await suite.server.command('PTTL', mappingKey('slug:hooli')));
    expect(pttl).toBeGreaterThan(THIRTY_DAYS_MS - 10_000);
    const third = recordingDatabase(sharedDatabase());
    const other = await readyApp({}, third.db);
    expect((await getByAssistant(other, assistantId)).json().companySlug).toBe('hooli');
    expect(third.statements.filter((s) => s.includes('company_assistants'))).toEqual([]);
  });

  it('caches "not found" briefly, and a new prototype replaces it at once', async () => {
    const recording = recordingDatabase(sharedDatabase());
    const app = await readyApp({}, recording.db);
    expect((await getBySlug(app, 'pied-piper')).statusCode).toBe(404);
    expect((await getBySlug(app, 'pied-piper')).statusCode).toBe(404);
    expect(recording.statements.filter((s) => s.includes('WHERE company_slug'))).toHaveLength(1);
    const pttl = integerReply(await suite.server.command('PTTL', mappingKey('slug:pied-piper')));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(30_000);

    expect((await postPrototype(app, { companyName: 'Pied Piper', location: 'SF' })).statusCode).toBe(201);
    expect((await getBySlug(app, 'pied-piper')).json().companyName).toBe('Pied Piper');
  });
});

describe('400 on bad input, naming the field', () => {
  it.each([
    ['no companyName', { location: 'Paris' }, 'companyName'],
    ['no location', { companyName: 'Acme' }, 'location'],
    ['an empty companyName', { companyName: '', location: 'Paris' }, 'companyName'],
    ['a blank companyName', { companyName: ' \t ', location: 'Paris' }, 'companyName'],
    ['a 201-character companyName', { companyName: 'x'.repeat(201), location: 'Paris' }, 'companyName'],
    ['a numeric companyName', { companyName: 42, location: 'Paris' }, 'companyName'],
    ['an empty location', { companyName: 'Acme', location: '' }, 'location'],
    ['a blank location', { companyName: 'Acme', location: '   ' }, 'location'],
    ['a 201-character location', { companyName: 'Acme', location: 'y'.repeat(201) }, 'location'],
    ['a null location', { companyName: 'Acme', location: null }, 'location'],
  ])('POST with %s', async (_, body, field) => {
    const app = appFromEnv({});
    const res = await postPrototype(app, body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({ code: 'E_VALIDATION', message: expect.stringContaining(field) });
  });

  it.each([
    ['日本', '"日本"'],
    ['!!!', '"!!!"'],
  ])('POST with a companyName that yields no slug (%s)', async (companyName, quoted) => {
    const app = appFromEnv({ OPENAI_API_KEY: KEY, OPENAI_BASE_URL: standIn.baseUrl });
    const res = await postPrototype(app, { companyName, location: 'Tokyo' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({ code: 'E_EMPTY_SLUG', message: expect.stringContaining(quoted) });
    // Refused before any assistant was created.
    expect(standIn.requests).toHaveLength(0);
  });

  it('POST with the maximum lengths, an array body, no body', async () => {
    const app = appFromEnv({});
    const max = await postPrototype(app, { companyName: 'z'.repeat(200), location: 'w'.repeat(200) });
    expect(max.statusCode).toBe(201);
    expect(max.json().companySlug).toBe('z'.repeat(64));
    expect((await postPrototype(app, [{ companyName: 'Acme', location: 'Paris' }])).statusCode).toBe(400);
    expect((await app.inject({ method: 'POST', url: '/api/prototypes' })).statusCode).toBe(400);
  });
});

describe('assistant provider', () => {
  it('is the local one without OPENAI_API_KEY, even with OPENAI_BASE_URL set', async () => {
    const app = appFromEnv({ OPENAI_BASE_URL: standIn.baseUrl });
    const res = await postPrototype(app, { companyName: 'Acme', location: 'Paris' });
    expect(res.json().assistant.provider).toBe('local');
    expect(standIn.requests).toHaveLength(0);
  });

  it('is OpenAI with OPENAI_API_KEY: the stand-in creates the assistant', async () => {
    const { app, lines } = loggedApp({
      OPENAI_API_KEY: KEY,
      OPENAI_BASE_URL: standIn.baseUrl,
      OPENAI_MODEL: 'gpt-4o',
    });
    const res = await postPrototype(app, { companyName: 'Acme', location: 'Paris' });
    expect(res.statusCode).toBe(201);
    expect(standIn.requests).toHaveLength(1);
    expect(standIn.requests[0]?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(standIn.requests[0]?.body).toMatchObject({ model: 'gpt-4o', name: 'Acme Assistant' });
    const { assistant } = res.json();
    expect(assistant).toMatchObject({
      id: expect.stringMatching(/^asst_standin/),
      provider: 'openai',
      model: 'gpt-4o',
    });
    const row = await sharedDatabase().query(
      'SELECT provider, model, demo_url FROM assistants WHERE id = $1',
      [assistant.id],
    );
    expect(row.rows).toEqual([{ provider: 'openai', model: 'gpt-4o', demo_url: res.json().demoUrl }]);
    expect((await getByAssistant(app, assistant.id)).json().companySlug).toBe('acme');
    expect(lines.join('')).not.toContain(KEY);
    expect(res.body).not.toContain(KEY);
  });

  it('fails with 502 E_UPSTREAM and stores nothing when OpenAI refuses; the key is nowhere', async () => {
    standIn.replyWith(() => ({
      status: 401,
      body: { error: { message: `Incorrect API key provided: ${KEY}.`, code: 'invalid_api_key' } },
    }));
    const { app, lines } = loggedApp({ OPENAI_API_KEY: KEY, OPENAI_BASE_URL: standIn.baseUrl });
    const res = await postPrototype(app, { companyName: 'Acme', location: 'Paris' });
    expect(res.statusCode).toBe(502);
    expect(res.json().error).toEqual({
      code: 'E_UPSTREAM',
      message: expect.stringContaining('HTTP 401'),
    });
    expect(res.body).not.toContain(KEY);
    const logged = lines.join('');
    expect(logged).toContain('E_UPSTREAM');
    expect(logged).not.toContain(KEY);
    expect(await stored()).toEqual({ companies: 0, assistants: 0, mappings: 0 });
    expect((await getBySlug(app, 'acme')).statusCode).toBe(404);

    // The slug is still free for the next, successful attempt.
    standIn.reset();
    expect((await postPrototype(app, { companyName: 'Acme', location: 'Paris' })).json().companySlug).toBe(
      'acme',
    );
  });

  it('fails with 504 E_UPSTREAM_TIMEOUT and stores nothing when OpenAI does not answer', async () => {
    standIn.replyWith(() => 'hang');
    const app = appFromEnv({
      OPENAI_API_KEY: KEY,
      OPENAI_BASE_URL: standIn.baseUrl,
      OPENAI_TIMEOUT_MS: '300',
    });
    const res = await postPrototype(app, { companyName: 'Acme', location: 'Paris' });
    expect(res.statusCode).toBe(504);
    expect(res.json().error.code).toBe('E_UPSTREAM_TIMEOUT');
    expect(await stored()).toEqual({ companies: 0, assistants: 0, mappings: 0 });
  });
});

describe('Redis killed mid-request', () => {
  it('still creates the prototype (201) and answers lookups (200) from memory and Postgres', async () => {
    let release: (() => void) | undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    standIn.replyWith(async (request) => {
      await held;
      return createdAssistant(request);
    });
    const app = await readyApp({ OPENAI_API_KEY: KEY, OPENAI_BASE_URL: standIn.baseUrl });
    const inFlight = postPrototype(app, { companyName: 'Umbrella', location: 'Raccoon City' });
    await expect.poll(() => standIn.requests.length, { timeout: 5000, interval: 5 }).toBe(1);
    await suite.server.kill();
    release?.();
    const res = await inFlight;
    expect(res.statusCode).toBe(201);
    const { assistant, companySlug } = res.json();
    expect(companySlug).toBe('umbrella');
    expect(await stored()).toEqual({ companies: 1, assistants: 1, mappings: 1 });

    for (let i = 0; i < 8; i++) {
      expect((await getBySlug(app, 'umbrella')).statusCode).toBe(200);
      expect((await getByAssistant(app, assistant.id)).json().companySlug).toBe('umbrella');
    }
    // Another instance, started while Redis is down, answers from Postgres.
    const other = appFromEnv({ REDIS_URL: suite.server.url });
    expect((await getByAssistant(other, assistant.id)).json().companySlug).toBe('umbrella');
    standIn.reset();
    const second = await postPrototype(app, { companyName: 'Umbrella', location: 'Paris' });
    expect(second.statusCode).toBe(201);
    expect(second.json().companySlug).toBe('umbrella-2');

    await suite.server.restart();
    await waitForHealth(app, 'ok', 10_000);
    expect((await getBySlug(app, 'umbrella-2')).json().location).toBe('Paris');
  });
});
