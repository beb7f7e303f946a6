import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import type { Database } from '../../src/server/db/database.js';
import { runMigrations } from '../../src/server/db/migrate.js';
import { seedDemoData } from '../../src/server/db/seed.js';
import { classifyLead } from '../../src/server/jobs/classifier.js';
import type { Lead } from '../../src/server/leads/lead.js';
import { memoryDatabase } from '../support/pglite.js';
import { useRedisSuite } from '../support/suite.js';
import { ADMIN_TOKEN, adminHeaders, closeApps, gatedDatabase, openedApps, waitForHealth } from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is flushed.
afterEach(closeApps);

const BACKOFF_MS = 40;
const PREFIX = 'larder-jobs:test';

let db: Database;
let org: { id: string; slug: string };
beforeAll(async () => {
  db = memoryDatabase();
  await runMigrations(db);
  await seedDemoData(db, { organizations: 2, leadsPerOrg: 30 });
  org = (await db.query<{ id: string; slug: string }>('SELECT id, slug FROM organizations WHERE is_default'))
    .rows[0] as {
    id: string;
    slug: string;
  };
});
afterAll(async () => {
  await db.close();
});

/** An app with a short back-off (3 attempts: waits of 40 and 80 ms). Closed after the test unless `track` is false. */
function jobApp(env: NodeJS.ProcessEnv, database: Database = db, track = true): FastifyInstance {
  const app = buildApp({
    config: loadConfig({
      LARDER_ENV: 'test',
      LARDER_ADMIN_TOKEN: ADMIN_TOKEN,
      RATE_LIMIT_ENABLED: 'false',
      ...env,
    }),
    database,
    seed: false,
    jobs: { policy: { attempts: 3, backoffMs: BACKOFF_MS }, commandTimeoutMs: 1500 },
  });
  if (track) openedApps.push(app);
  return app;
}

const withRedis = () => ({ REDIS_URL: suite.server.url });

type DbLead = {
  id: string;
  status: string;
  name: string | null;
  classification: string | null;
  updated_at: Date;
};

/** A lead whose rule-based classification differs from the one stored, and that classification. */
async function unclassifiedLead(): Promise<{ id: string; expected: string }> {
  const { rows } = await db.query<DbLead>(
    'SELECT id, status, name, classification, updated_at FROM leads WHERE organization_id = $1 ORDER BY id',
    [org.id],
  );
  for (const row of rows) {
    const expected = classifyLead(
      { status: row.status as Lead['status'], name: row.name, updatedAt: row.updated_at.toISOString() },
      Date.now(),
    );
    if (row.classification !== expected) return { id: row.id, expected };
  }
  throw new Error('every seeded lead is classified already');
}

async function classificationOf(id: string): Promise<string | null | undefined> {
  return (
    await db.query<{ classification: string | null }>('SELECT classification FROM leads WHERE id = $1', [id])
  ).rows[0]?.classification;
}

const overview = async (app: FastifyInstance) =>
  (await app.inject({ method: 'GET', url: '/api/jobs' })).json();
const classify = (app: FastifyInstance, body: unknown) =>
  app.inject({ method: 'POST', url: '/api/jobs/classify', payload: body as object });
const deadLetters = async (app: FastifyInstance) =>
  (await app.inject({ method: 'GET', url: '/api/jobs/dead-letters' })).json();
const retry = (app: FastifyInstance, id: string, headers: Record<string, string> = adminHeaders()) =>
  app.inject({ method: 'POST', url: `/api/jobs/dead-letters/${encodeURIComponent(id)}/retry`, headers });

/** A BullMQ queue of the app's, read from the test. */
function inspect(name: string) {
  const connection = new Redis(suite.server.url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix: PREFIX });
  return {
    queue,
    async close() {
      await queue.close();
      connection.disconnect();
    },
  };
}

describe.each([
  ['bullmq', withRedis],
  ['inline', () => ({})],
] as const)('jobs (%s mode)', (mode, env) => {
  it('classifies a lead through LeadService, and the KPIs see it', async () => {
    const app = jobApp(env());
    if (mode === 'bullmq') await waitForHealth(app, 'ok');
    const body = await overview(app);
    expect(body).toMatchObject({ mode, deadLetters: { count: 0 }, available: true });
    expect(body.queues.map((q: { name: string }) => q.name)).toEqual([
      'lead-classification',
      'kpi-recompute',
    ]);
    expect(Object.keys(body.queues[0]).sort()).toEqual([
      'active',
      'completed',
      'delayed',
      'failed',
      'name',
      'waiting',
    ]);

    const kpisBefore = (
      await app.inject({ method: 'GET', url: '/api/kpis', query: { org: org.slug } })
    ).json().kpis;
    const { id, expected } = await unclassifiedLead();
    const res = await classify(app, { leadId: id });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ id: expect.any(String), queue: 'lead-classification', mode });
    await expect.poll(() => classificationOf(id), { timeout: 5000 }).toBe(expected);
    await expect.poll(async () => (await overview(app)).queues[0].completed, { timeout: 5000 }).toBe(1);
    const kpis = await app.inject({ method: 'GET', url: '/api/kpis', query: { org: org.slug } });
    expect(kpis.headers['x-cache']).toBe('MISS');
    expect(kpis.json().kpis[`classification_${expected}`]).toBe(kpisBefore[`classification_${expected}`] + 1);
  });

  it('retries with back-off, dead-letters the job, and re-drives it once the cause is fixed', async () => {
    const app = jobApp(env());
    if (mode === 'bullmq') await waitForHealth(app, 'ok');
    const leadId = randomUUID();
    const res = await classify(app, { leadId });
    expect(res.statusCode).toBe(202);
    await expect.poll(async () => (await overview(app)).deadLetters.count, { timeout: 5000 }).toBe(1);
    const listed = await deadLetters(app);
    expect(listed).toEqual({
      count: 1,
      deadLetters: [
        {
          id: expect.any(String),
          queue: 'lead-classification',
          name: 'classify-lead',
          data: { leadId },
          failedReason: `lead not found: ${leadId}`,
          attempts: 3,
          jobId: res.json().id,
          failedAt: expect.any(String),
        },
      ],
    });
    expect((await overview(app)).queues[0]).toMatchObject({ failed: 1, active: 0, delayed: 0 });
    if (mode === 'bullmq') {
      const q = inspect('lead-classification');
      const job = await q.queue.getJob(res.json().id);
      await q.close();
      expect(job?.attemptsMade).toBe(3);
      // Back-off: the attempts were at least 40 + 80 ms apart in all.
      expect((job?.finishedOn ?? 0) - (job?.processedOn ?? 0)).toBeGreaterThanOrEqual(0);
      expect((job?.finishedOn ?? 0) - (job?.timestamp ?? 0)).toBeGreaterThanOrEqual(BACKOFF_MS * 3);
    }

    const letterId = listed.deadLetters[0].id as string;
    expect((await retry(app, letterId, {})).statusCode).toBe(401);
    expect((await retry(app, 'no-such-letter')).statusCode).toBe(404);
    expect((await retry(app, 'bad id!')).statusCode).toBe(400);

    // Fix the cause: the lead now exists. Re-driving runs the job again, with fresh attempts.
    await db.query(
      `INSERT INTO leads (id, organization_id, phone, name, status) VALUES ($1, $2, $3, 'Ada Lovelace', 'qualified')`,
      [leadId, org.id, `+1415555${String(Math.floor(Math.random() * 9000) + 1000)}`],
    );
    const redriven = await retry(app, letterId);
    expect(redriven.statusCode).toBe(202);
    expect(redriven.json()).toMatchObject({ queue: 'lead-classification', mode });
    await expect.poll(() => classificationOf(leadId), { timeout: 5000 }).toBe('hot');
    expect(await deadLetters(app)).toEqual({ count: 0, deadLetters: [] });
    expect((await overview(app)).deadLetters.count).toBe(0);
    expect((await retry(app, letterId)).statusCode).toBe(404);
  });

  it('recomputes KPIs on POST /api/jobs/kpis and writes them through', async () => {
    const app = jobApp(env());
    if (mode === 'bullmq') await waitForHealth(app, 'ok');
    await db.query('DELETE FROM kpis WHERE organization_id = $1', [org.id]);
    const res = await app.inject({ method: 'POST', url: '/api/jobs/kpis', payload: { org: org.slug } });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ queue: 'kpi-recompute', mode });
    await expect
      .poll(
        async () => (await db.query('SELECT 1 FROM kpis WHERE organization_id = $1', [org.id])).rows.length,
        {
          timeout: 5000,
        },
      )
      .toBeGreaterThan(0);
    await expect.poll(async () => (await overview(app)).queues[1].completed, { timeout: 5000 }).toBe(1);
    const total = Number(
      (
        await db.query<{ n: string }>('SELECT count(*)::text AS n FROM leads WHERE organization_id = $1', [
          org.id,
        ])
      ).rows[0]?.n,
    );
    expect(
      (await app.inject({ method: 'GET', url: '/api/kpis', query: { org: org.id } })).json().kpis.leads_total,
    ).toBe(total);
  });

  it('answers 400 naming bad input, 404 for an unknown org', async () => {
    const app = jobApp(env());
    const bad = await classify(app, { leadId: 'not-a-uuid' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({
      code: 'E_VALIDATION',
      message: expect.stringContaining('leadId'),
    });
    expect((await classify(app, {})).statusCode).toBe(400);
    expect((await classify(app, { leadId: 42 })).statusCode).toBe(400);
    const kpiBad = await app.inject({ method: 'POST', url: '/api/jobs/kpis', payload: { org: 'Bad Org!' } });
    expect(kpiBad.statusCode).toBe(400);
    expect(kpiBad.json().error.message).toContain('"Bad Org!"');
    expect(
      (await app.inject({ method: 'POST', url: '/api/jobs/kpis', payload: { org: 'nope' } })).statusCode,
    ).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/api/jobs/dead-letters?limit=abc' })).statusCode).toBe(
      400,
    );
    expect((await app.inject({ method: 'GET', url: '/api/jobs/dead-letters?limit=0' })).statusCode).toBe(400);
  });

  it('loses no job on shutdown: a job in flight during close completes', async () => {
    const gated = gatedDatabase(db, /FROM leads WHERE id = \$1/);
    const app = jobApp(env(), gated.database, false);
    if (mode === 'bullmq') await waitForHealth(app, 'ok');
    const { id, expected } = await unclassifiedLead();
    gated.close();
    const res = await classify(app, { leadId: id });
    expect(res.statusCode).toBe(202);
    await expect.poll(() => gated.state.waiting, { timeout: 5000 }).toBe(1);
    let closed = false;
    const closing = app.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed).toBe(false); // waiting for the job
    gated.open();
    await closing;
    expect(await classificationOf(id)).toBe(expected);
    if (mode === 'bullmq') {
      const q = inspect('lead-classification');
      const counts = await q.queue.getJobCounts('active', 'completed', 'failed');
      await q.close();
      expect(counts).toEqual({ active: 0, completed: 1, failed: 0 });
    }
  });
});

describe('inline mode', () => {
  it('says so in health', async () => {
    const app = jobApp({});
    const health = (await app.inject({ method: 'GET', url: '/api/health' })).json();
    expect(health.checks.jobs).toEqual({
      mode: 'inline',
      ready: true,
      reason: expect.stringMatching(/jobs run inline/),
    });
    expect(health.reason).toMatch(/jobs run inline/);
    expect((await overview(app)).reason).toMatch(/not configured/);
  });

  it('runs a retry waiting out its back-off at once on shutdown', async () => {
    const app = buildApp({
      config: loadConfig({ LARDER_ENV: 'test', RATE_LIMIT_ENABLED: 'false' }),
      database: db,
      seed: false,
      jobs: { policy: { attempts: 2, backoffMs: 60_000 } },
    });
    const leadId = randomUUID();
    expect((await classify(app, { leadId })).statusCode).toBe(202);
    await expect.poll(async () => (await overview(app)).queues[0].delayed).toBe(1);
    const startedAt = Date.now();
    await app.close();
    expect(Date.now() - startedAt).toBeLessThan(30_000); // not the minute of back-off
  });
});

describe('bullmq mode', () => {
  it('reports the jobs check in health', async () => {
    const app = jobApp(withRedis());
    await waitForHealth(app, 'ok');
    const health = (await app.inject({ method: 'GET', url: '/api/health' })).json();
    expect(health.checks.jobs).toEqual({ mode: 'bullmq', ready: true });
  });

  it('keeps answering when Redis is killed mid-request: the job runs inline, not lost', async () => {
    const app = jobApp(withRedis());
    await waitForHealth(app, 'ok');
    const { id, expected } = await unclassifiedLead();
    // Redis holds every command (CLIENT PAUSE), so the enqueue waits on it, and dies under it
    // before storing the job.
    await suite.server.command('CLIENT', 'PAUSE', '30000', 'ALL');
    const inFlight = classify(app, { leadId: id });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await suite.server.kill();
    const res = await inFlight;
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ queue: 'lead-classification', mode: 'inline' });
    await expect.poll(() => classificationOf(id), { timeout: 5000 }).toBe(expected);

    // With Redis gone: enqueues run inline, the overview answers, health says why.
    const other = await unclassifiedLead();
    const again = await classify(app, { leadId: other.id });
    expect(again.json().mode).toBe('inline');
    await expect.poll(() => classificationOf(other.id), { timeout: 5000 }).toBe(other.expected);
    const body = await overview(app);
    expect(body).toMatchObject({
      mode: 'bullmq',
      available: false,
      reason: expect.stringMatching(/Redis unreachable/),
    });
    expect(body.queues[0].completed).toBeGreaterThanOrEqual(2);
    const failing = randomUUID();
    await classify(app, { leadId: failing });
    await expect.poll(async () => (await overview(app)).deadLetters.count, { timeout: 5000 }).toBe(1);
    const letters = await app.inject({ method: 'GET', url: '/api/jobs/dead-letters' });
    expect(letters.statusCode).toBe(503);
    expect(letters.json().error.message).toMatch(/Redis is unreachable/);
    const health = (await app.inject({ method: 'GET', url: '/api/health' })).json();
    expect(health.status).toBe('degraded');
    expect(health.checks.jobs).toMatchObject({
      mode: 'bullmq',
      ready: false,
      reason: expect.stringMatching(/inline/),
    });
    // Inline dead letters can be re-driven while Redis is down.
    const inlineLetter = `inline-dl-1`;
    expect((await retry(app, inlineLetter)).statusCode).toBe(202);

    // Redis back: queues work again.
    await suite.server.restart();
    await waitForHealth(app, 'ok', 15_000);
    const third = await unclassifiedLead();
    expect((await classify(app, { leadId: third.id })).json().mode).toBe('bullmq');
    await expect.poll(() => classificationOf(third.id), { timeout: 5000 }).toBe(third.expected);
  });

  it('closes at once when Redis is down', async () => {
    const app = jobApp(withRedis(), db, false);
    await waitForHealth(app, 'ok');
    await suite.server.kill();
    await expect
      .poll(async () => (await app.inject({ method: 'GET', url: '/api/health' })).json().checks.jobs.ready)
      .toBe(false);
    const startedAt = Date.now();
    await app.close();
    expect(Date.now() - startedAt).toBeLessThan(5000);
  });
});
