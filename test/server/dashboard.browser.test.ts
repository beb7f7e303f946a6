import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheStats } from '../../src/index.js';
import { useRedisSuite } from '../support/suite.js';
import { ADMIN_TOKEN, appFromEnv, closeApps, waitForHealth } from './helpers.js';

// Debian's chromium (`apt-get install chromium`); playwright-core downloads no browser.
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = resolve('test-results/dashboard.png');
// Generous: a slow, shared 2-core machine runs a browser, an app and redis-server at once.
const WAIT = { timeout: 30_000, interval: 200 } as const;
/** Markup a dead letter carries, which the page must show as text (and never run). */
const HOSTILE = '<img src=x onerror="window.__larderXss=1"><b>bold</b>';

const suite = useRedisSuite();

let app: FastifyInstance;
let baseUrl: string;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `The dashboard browser test needs Chromium at ${CHROMIUM}: install it with ` +
        '`sudo apt-get install -y chromium` (Debian/Ubuntu; .ci/run installs it in CI).',
    );
  }
  // A short back-off (2 attempts, 100 ms apart) so a failing job becomes a dead letter quickly.
  app = appFromEnv({ REDIS_URL: suite.server.url }, undefined, {
    jobs: { policy: { attempts: 2, backoffMs: 100 } },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  await waitForHealth(app, 'ok', 30_000);
  baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  page.setDefaultTimeout(30_000);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await closeApps();
}, 30_000);

/**
 * Cache traffic until stopped: reads of 40 keys through getOrSet (misses, then memory hits) and a
 * second namespace read with `get` (Redis round trips, recorded as latency).
 */
function startTraffic(): { stop: () => Promise<void> } {
  let running = true;
  const demo = app.cache.namespace('demo');
  const loop = (async () => {
    let i = 0;
    while (running) {
      const key = `item-${i % 40}`;
      await demo.getOrSet(key, async () => ({ i }), { ttl: '1m' });
      await app.cache.namespace('probe').get(`absent-${i % 5}`);
      i++;
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

async function stats(): Promise<CacheStats> {
  return (await app.inject({ method: 'GET', url: '/api/cache/stats' })).json<CacheStats>();
}

async function readout(testId: string): Promise<string | null> {
  return page.getByTestId(testId).getAttribute('data-value');
}

async function numberAt(testId: string): Promise<number> {
  return Number(await readout(testId));
}

type DeadLetter = {
  id: string;
  queue: string;
  name: string;
  data: unknown;
  failedReason: string;
  attempts: number;
  jobId: string;
  failedAt: string;
};

async function deadLetterIds(): Promise<string[]> {
  const res = await app.inject({ method: 'GET', url: '/api/jobs/dead-letters' });
  return res.json<{ deadLetters: DeadLetter[] }>().deadLetters.map((letter) => letter.id);
}

/** The page's row of one dead letter, by its id. */
function letterRow(id: string) {
  return page.locator(`[data-testid="dead-letter-row"][data-id="${id}"]`);
}

/**
 * Puts a dead letter full of markup straight into the app's BullMQ dead-letter queue (keys
 * `larder-jobs:test`), as a job that failed with such a reason would leave it.
 */
async function addHostileLetter(): Promise<void> {
  const connection = new Redis(suite.server.url, { maxRetriesPerRequest: null });
  const queue = new Queue('dead-letter', { connection, prefix: 'larder-jobs:test' });
  try {
    await queue.add('dead-letter', {
      queue: 'lead-classification',
      name: 'classify-lead',
      data: { leadId: HOSTILE },
      failedReason: HOSTILE,
      attempts: 2,
      jobId: '<b>job</b>',
      failedAt: new Date().toISOString(),
    });
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** What the page shows, by readout, as the raw values it keeps in `data-value`. */
async function shown(): Promise<Record<string, string | null>> {
  const ids = ['hit-rate', 'hits', 'hits-memory', 'hits-redis', 'misses', 'latency-p50', 'latency-p99'];
  const values: Record<string, string | null> = {};
  for (const id of [...ids, 'fallbacks', 'circuit', 'redis-state']) values[id] = await readout(id);
  return values;
}

/** The same readouts computed from /api/cache/stats the way the page documents them. */
function expected(s: CacheStats): Record<string, string | null> {
  const measured = Object.values(s.namespaces).filter((ns) => ns.redisLatencyMicros.count > 0);
  const max = (pick: (ns: (typeof measured)[number]) => number) => String(Math.max(0, ...measured.map(pick)));
  return {
    'hit-rate': String(s.totals.hitRate),
    hits: String(s.totals.hits.total),
    'hits-memory': String(s.totals.hits.memory),
    'hits-redis': String(s.totals.hits.redis),
    misses: String(s.totals.misses),
    'latency-p50': max((ns) => ns.redisLatencyMicros.p50),
    'latency-p99': max((ns) => ns.redisLatencyMicros.p99),
    fallbacks: String(s.totals.fallbacks),
    circuit: s.redis.circuit,
    'redis-state': s.redis.switchedOff ? 'switched off' : s.redis.ready ? 'connected' : 'unreachable',
  };
}

describe('the dashboard in Chromium', () => {
  it('shows live numbers matching /api/cache/stats, invalidates, re-drives dead letters, and pauses Redis', async () => {
    const traffic = startTraffic();
    await page.goto(baseUrl);
    await expect(page.title()).resolves.toBe('Larder dashboard');

    // Live: while traffic runs the page reports memory hits per second, and every chart has drawn.
    await expect.poll(() => numberAt('ops-memory'), WAIT).toBeGreaterThan(0);
    for (const chart of ['hit-rate', 'latency', 'ops', 'fallbacks', 'circuit', 'jobs']) {
      await expect.poll(() => page.locator(`#chart-${chart} canvas`).count(), WAIT).toBe(1);
    }

    // Traffic paused: the counters stop, and the page catches up with /api/cache/stats.
    await traffic.stop();
    const settled = expected(await stats());
    expect(Number(settled.hits)).toBeGreaterThan(0);
    expect(Number(settled.misses)).toBeGreaterThan(0);
    expect(Number(settled['latency-p99'])).toBeGreaterThan(0);
    await expect.poll(shown, WAIT).toEqual(settled);
    expect(expected(await stats())).toEqual(settled); // nothing moved meanwhile: a fair comparison
    await expect.poll(() => numberAt('ops-memory'), WAIT).toBe(0);
    expect(await numberAt('ops-miss')).toBe(0);
    const hitRateText = (await page.getByTestId('hit-rate').textContent()) ?? '';
    expect(hitRateText).toMatch(/^\d+(\.\d)? %$/);
    expect(Math.abs(Number.parseFloat(hitRateText) - Number(settled['hit-rate']) * 100)).toBeLessThanOrEqual(
      0.05,
    );

    // Jobs: the numbers of /api/jobs, or "n/a" while that route does not exist.
    const jobs = await app.inject({ method: 'GET', url: '/api/jobs' });
    if (jobs.statusCode === 404) {
      await expect.poll(() => page.getByTestId('queue-depth').textContent(), WAIT).toBe('jobs: n/a');
      expect(await page.getByTestId('dead-letters').textContent()).toBe('jobs: n/a');
    } else {
      const body = jobs.json<{
        queues: Array<{ waiting: number; active: number; delayed: number }>;
        deadLetters: { count: number };
      }>();
      const depth = body.queues.reduce((sum, q) => sum + q.waiting + q.active + q.delayed, 0);
      await expect.poll(() => numberAt('queue-depth'), WAIT).toBe(depth);
      await expect.poll(() => numberAt('dead-letters'), WAIT).toBe(body.deadLetters.count);
    }

    // Admin controls need a login; a wrong token is refused on the page.
    await expect(page.getByTestId('admin-controls').isHidden()).resolves.toBe(true);
    await page.getByTestId('login-token').fill('wrong-token-0123456789');
    await page.getByTestId('login').click();
    await expect.poll(() => page.getByTestId('login-message').textContent(), WAIT).toMatch(/wrong/);
    await page.getByTestId('login-token').fill(ADMIN_TOKEN);
    await page.getByTestId('login').click();
    await page.getByTestId('admin-controls').waitFor({ state: 'visible' });
    expect(await page.getByTestId('login-form').isVisible()).toBe(false);

    // Dead letters: none yet, then a letter full of markup (shown as text, never run) and a job
    // that fails every attempt (its lead does not exist) show in the admin table.
    await page.getByTestId('dead-letter-empty').waitFor({ state: 'visible' });
    expect(await readout('dead-letter-count')).toBe('0');
    await addHostileLetter();
    const leadId = randomUUID();
    const enqueued = await app.inject({ method: 'POST', url: '/api/jobs/classify', payload: { leadId } });
    expect(enqueued.statusCode).toBe(202);
    const failing = page.getByTestId('dead-letter-row').filter({ hasText: leadId });
    await expect.poll(() => failing.count(), WAIT).toBe(1);
    const letterId = (await failing.getAttribute('data-id')) ?? '';
    const listed = (await app.inject({ method: 'GET', url: '/api/jobs/dead-letters' })).json<{
      count: number;
      deadLetters: DeadLetter[];
    }>();
    expect(listed.count).toBe(2);
    expect(listed.deadLetters.find((letter) => letter.id === letterId)).toMatchObject({
      queue: 'lead-classification',
      data: { leadId },
      failedReason: `lead not found: ${leadId}`,
      attempts: 2,
      jobId: enqueued.json<{ id: string }>().id,
    });
    expect(await failing.getByTestId('dead-letter-reason').textContent()).toBe(`lead not found: ${leadId}`);
    expect(await failing.getByTestId('dead-letter-queue').textContent()).toBe('lead-classification');
    expect(await failing.getByTestId('dead-letter-job').textContent()).toBe(
      enqueued.json<{ id: string }>().id,
    );
    expect(await failing.getByTestId('dead-letter-attempts').textContent()).toBe('2');
    expect(await failing.getByTestId('dead-letter-data').textContent()).toBe(JSON.stringify({ leadId }));
    await expect.poll(() => readout('dead-letter-count'), WAIT).toBe('2');
    await expect.poll(() => numberAt('dead-letters'), WAIT).toBe(2);
    const hostile = page.getByTestId('dead-letter-row').filter({ hasText: HOSTILE });
    expect(await hostile.count()).toBe(1);
    expect(await hostile.getByTestId('dead-letter-reason').textContent()).toBe(HOSTILE);
    expect(await hostile.getByTestId('dead-letter-job').textContent()).toBe('<b>job</b>');
    expect(await page.locator('[data-testid="dead-letter-rows"] :is(img, b)').count()).toBe(0);
    expect(await page.evaluate('window.__larderXss === undefined')).toBe(true);

    // Retry re-queues the failing job: the page says so and that letter leaves the list. (The job
    // fails again, so it comes back as a new letter of the job the page named.)
    await failing.getByTestId('dead-letter-retry').click();
    await expect
      .poll(() => page.getByTestId('dead-letter-message').textContent(), WAIT)
      .toMatch(new RegExp(`^Dead letter ${letterId} re-queued as job \\S+ in lead-classification$`));
    const requeuedAs = /re-queued as job (\S+) in/.exec(
      (await page.getByTestId('dead-letter-message').textContent()) ?? '',
    )?.[1];
    expect(requeuedAs).toBeDefined();
    await expect.poll(() => letterRow(letterId).count(), WAIT).toBe(0);
    expect(await deadLetterIds()).not.toContain(letterId);
    const again = page.getByTestId('dead-letter-row').filter({ hasText: leadId });
    await expect.poll(() => again.getByTestId('dead-letter-job').textContent(), WAIT).toBe(requeuedAs);
    expect(await again.getAttribute('data-id')).not.toBe(letterId);

    // Invalidate a tag: tagged entries go, others stay.
    const demo = app.cache.namespace('demo');
    await demo.set('tagged', 'v', { tags: ['promo'] });
    await demo.set('untagged', 'v');
    await page.getByTestId('invalidate-namespace').fill('demo');
    await page.getByTestId('invalidate-tag').fill('promo');
    await page.getByTestId('invalidate').click();
    await expect
      .poll(() => page.getByTestId('invalidate-result').textContent(), WAIT)
      .toBe('invalidated tag promo in demo');
    expect(await demo.get('tagged')).toBeUndefined();
    expect(await demo.get('untagged')).toBe('v');

    // Clear the namespace: everything in it goes; the misses readout moves when it is read again.
    const missesBefore = (await stats()).totals.misses;
    await page.getByTestId('invalidate-tag').fill('');
    await page.getByTestId('invalidate').click();
    await expect.poll(() => page.getByTestId('invalidate-result').textContent(), WAIT).toBe('cleared demo');
    expect(await demo.get('untagged')).toBeUndefined();
    expect(await demo.get('item-1')).toBeUndefined();
    await expect.poll(() => numberAt('misses'), WAIT).toBeGreaterThanOrEqual(missesBefore + 2);

    // Kill switch: Redis paused, the page says so, and reads fall back (the fallbacks readout moves).
    const fallbacksBefore = (await stats()).totals.fallbacks;
    await expect.poll(() => page.getByTestId('redis-toggle').textContent(), WAIT).toBe('Pause Redis');
    await page.getByTestId('redis-toggle').click();
    await expect.poll(() => readout('redis-state'), WAIT).toBe('switched off');
    expect(await readout('redis-toggle')).toBe('off');
    expect((await stats()).redis.switchedOff).toBe(true);
    const paused = startTraffic();
    await expect.poll(() => numberAt('fallbacks'), WAIT).toBeGreaterThan(fallbacksBefore);
    await expect.poll(() => readout('health'), WAIT).toBe('degraded');
    await paused.stop();
    await page.getByTestId('dead-letter-panel').scrollIntoViewIfNeeded();
    await mkdir(resolve('test-results'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);

    // And back on.
    await page.getByTestId('redis-toggle').click();
    await expect.poll(() => readout('redis-state'), WAIT).toBe('connected');
    expect((await stats()).redis.switchedOff).toBe(false);
    await expect.poll(() => readout('health'), WAIT).toBe('ok');
    expect(await page.getByTestId('redis-toggle').textContent()).toBe('Pause Redis');

    // Redis dies: the table says dead letters are unavailable and keeps the last list, and a Retry
    // reports the 503 in its row. Back up (empty: the test server persists nothing), it refreshes.
    await suite.server.kill();
    await expect
      .poll(() => page.getByTestId('dead-letter-status').textContent(), WAIT)
      .toMatch(/^Dead letters unavailable: Redis is unreachable/);
    expect(await page.getByTestId('dead-letter-table').getAttribute('class')).toContain('stale');
    await hostile.getByTestId('dead-letter-retry').click();
    await expect
      .poll(() => hostile.getByTestId('dead-letter-result').textContent(), WAIT)
      .toMatch(/Redis is unreachable/);
    expect(await hostile.getByTestId('dead-letter-retry').isEnabled()).toBe(true);
    await suite.server.restart();
    await waitForHealth(app, 'ok', 30_000);
    await expect.poll(() => page.getByTestId('dead-letter-status').textContent(), WAIT).toBe('');
    await expect.poll(() => readout('dead-letter-count'), WAIT).toBe('0');
    await page.getByTestId('dead-letter-empty').waitFor({ state: 'visible' });
    expect(await page.getByTestId('dead-letter-rows').locator('tr').count()).toBe(0);

    // Logging out hides the controls and the old session no longer works.
    await page.getByTestId('logout').click();
    await page.getByTestId('login-form').waitFor({ state: 'visible' });
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'larder_session')).toBeUndefined();
  }, 180_000);
});
