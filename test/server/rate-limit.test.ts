import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/server/db/database.js';
import { runMigrations } from '../../src/server/db/migrate.js';
import { seedDemoData } from '../../src/server/db/seed.js';
import { isRateLimited, tenantOf } from '../../src/server/rate-limit/rate-limit.js';
import { memoryDatabase } from '../support/pglite.js';
import { useRedisSuite } from '../support/suite.js';
import { adminHeaders, appFromEnv, closeApps, waitForHealth } from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is flushed.
afterEach(closeApps);

let db: Database;
let orgSlugs: string[];
let leadPhone: string;
beforeAll(async () => {
  db = memoryDatabase();
  await runMigrations(db);
  await seedDemoData(db, { organizations: 3, leadsPerOrg: 2 });
  orgSlugs = (await db.query<{ slug: string }>('SELECT slug FROM organizations ORDER BY slug')).rows.map(
    (r) => r.slug,
  );
  leadPhone = (await db.query<{ phone: string }>('SELECT phone FROM leads LIMIT 1')).rows[0]?.phone as string;
});
afterAll(async () => {
  await db.close();
});

/** An app with rate limiting on (the helpers turn it off by default). */
function limitedApp(env: NodeJS.ProcessEnv) {
  return appFromEnv({ RATE_LIMIT_ENABLED: 'true', ...env }, undefined, { database: db });
}

/** GET /api/leads/lookup from `ip`, naming `org` when given. */
function lookup(app: FastifyInstance, ip = '203.0.113.10', org?: string) {
  return app.inject({
    method: 'GET',
    url: '/api/leads/lookup',
    query: org === undefined ? { phone: leadPhone } : { phone: leadPhone, org },
    remoteAddress: ip,
  });
}

function rateHeaders(res: { headers: Record<string, unknown> }) {
  return {
    limit: res.headers['ratelimit-limit'],
    remaining: res.headers['ratelimit-remaining'],
    reset: res.headers['ratelimit-reset'],
    retryAfter: res.headers['retry-after'],
  };
}

/** The Redis key of an IP's counter, for LARDER_ENV=test. */
function ipKey(ip: string): string {
  return `larder:test:rate-limit:ip:${encodeURIComponent(ip)}`;
}

/** An IP's counter in Redis (`GET`), or `null` when there is none. */
async function counter(ip: string): Promise<string | null> {
  const reply = await suite.server.command('GET', ipKey(ip));
  return reply.startsWith('$-1') ? null : (reply.split('\r\n')[1] ?? null);
}

let throwaway = 0;
/**
 * Resolves once the app's limiters count in Redis (their client connects in the background): sends
 * requests from fresh IPs until one's counter shows up there.
 */
async function waitForSharedCounters(app: FastifyInstance): Promise<void> {
  await expect
    .poll(
      async () => {
        const ip = `198.51.100.${++throwaway}`;
        await lookup(app, ip);
        return counter(ip);
      },
      { timeout: 10_000, interval: 20 },
    )
    .toBe('1');
}

describe('rate limit: per IP', () => {
  it('answers 429 E_RATE_LIMITED with Retry-After once the limit is reached, and headers on every response', async () => {
    const app = limitedApp({ RATE_LIMIT_PER_IP: '5' });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await lookup(app);
      statuses.push(res.statusCode);
      expect(rateHeaders(res)).toEqual({
        limit: '5',
        remaining: String(4 - i),
        reset: expect.stringMatching(/^\d+$/),
        retryAfter: undefined,
      });
      expect(Number(res.headers['ratelimit-reset'])).toBeLessThanOrEqual(60);
      expect(res.headers['ratelimit-policy']).toBe('5;w=60');
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200]);

    const refused = await lookup(app);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({
      error: {
        code: 'E_RATE_LIMITED',
        message: expect.stringMatching(
          /^Too many requests from IP 203\.0\.113\.10: the limit is 5 per minute; retry in \d+ s$/,
        ),
      },
    });
    const headers = rateHeaders(refused);
    expect(headers).toMatchObject({ limit: '5', remaining: '0' });
    expect(Number(headers.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(headers.retryAfter)).toBeLessThanOrEqual(60);
    // Refused requests never reach the handler: a bad one is a 429 too, not a 400.
    const bad = await app.inject({
      method: 'GET',
      url: '/api/leads/lookup?phone=nope',
      remoteAddress: '203.0.113.10',
    });
    expect(bad.statusCode).toBe(429);

    // Another IP has its own budget.
    expect((await lookup(app, '203.0.113.11')).statusCode).toBe(200);
  });

  it('counts bad requests too, and puts the headers on error responses', async () => {
    const app = limitedApp({ RATE_LIMIT_PER_IP: '3' });
    const ip = '203.0.113.20';
    const bad = await app.inject({ method: 'GET', url: '/api/leads/lookup?phone=nope', remoteAddress: ip });
    expect(bad.statusCode).toBe(400);
    expect(rateHeaders(bad)).toMatchObject({ limit: '3', remaining: '2' });
    const post = await app.inject({
      method: 'POST',
      url: '/api/conversations/messages',
      payload: { phone: leadPhone, role: 'robot', content: 'x' },
      remoteAddress: ip,
    });
    expect(post.statusCode).toBe(400);
    expect(rateHeaders(post)).toMatchObject({ limit: '3', remaining: '1' });
    expect((await lookup(app, ip)).statusCode).toBe(200);
    expect((await lookup(app, ip)).statusCode).toBe(429);
  });

  it('never limits health, stats, metrics and admin routes, nor unknown routes', async () => {
    const app = limitedApp({ RATE_LIMIT_PER_IP: '1' });
    const ip = '203.0.113.30';
    expect((await lookup(app, ip)).statusCode).toBe(200);
    expect((await lookup(app, ip)).statusCode).toBe(429);
    for (const url of ['/api/health', '/api/health/redis', '/api/cache/stats', '/metrics']) {
      for (let i = 0; i < 3; i++) {
        const res = await app.inject({ method: 'GET', url, remoteAddress: ip });
        expect(res.statusCode, url).not.toBe(429);
        expect(res.headers['ratelimit-limit'], url).toBeUndefined();
      }
    }
    const admin = await app.inject({
      method: 'POST',
      url: '/api/admin/invalidate',
      headers: adminHeaders(),
      payload: { namespace: 'leads' },
      remoteAddress: ip,
    });
    expect(admin.statusCode).toBe(200);
    expect(admin.headers['ratelimit-limit']).toBeUndefined();
    expect((await app.inject({ method: 'GET', url: '/api/nope', remoteAddress: ip })).statusCode).toBe(404);
  });

  it('is off with RATE_LIMIT_ENABLED=false', async () => {
    const app = limitedApp({ RATE_LIMIT_ENABLED: 'false', RATE_LIMIT_PER_IP: '1' });
    for (let i = 0; i < 5; i++) {
      const res = await lookup(app);
      expect(res.statusCode).toBe(200);
      expect(res.headers['ratelimit-limit']).toBeUndefined();
    }
  });
});

describe('rate limit: per tenant', () => {
  it('limits the org a request names across IPs, independently of the IP limit', async () => {
    const app = limitedApp({ RATE_LIMIT_PER_IP: '100', RATE_LIMIT_PER_TENANT: '3' });
    const [busy, quiet] = orgSlugs as [string, string];
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await lookup(app, `203.0.113.${40 + i}`, busy);
      statuses.push(res.statusCode);
      // The tenant limit is the one closest to running out: its numbers are in the headers.
      expect(rateHeaders(res)).toMatchObject({ limit: '3', remaining: String(2 - i) });
    }
    expect(statuses).toEqual([200, 200, 200]);
    // The same tenant in a JSON body, and with other letter case, from yet another IP.
    const refused = await app.inject({
      method: 'POST',
      url: '/api/conversations/messages',
      payload: { phone: leadPhone, org: busy.toUpperCase(), role: 'user', content: 'hi' },
      remoteAddress: '203.0.113.49',
    });
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error).toEqual({
      code: 'E_RATE_LIMITED',
      message: expect.stringContaining(`for organization ${JSON.stringify(busy)}: the limit is 3 per minute`),
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(rateHeaders(refused)).toMatchObject({ limit: '3', remaining: '0' });

    // Another tenant, and requests naming none, are not affected; the IP budget shows again.
    const other = await lookup(app, '203.0.113.40', quiet);
    expect(other.statusCode).toBe(200);
    const none = await lookup(app, '203.0.113.40');
    expect(none.statusCode).toBe(200);
    expect(rateHeaders(none)).toMatchObject({ limit: '100', remaining: '97' });
  });

  it('limits one IP across tenants', async () => {
    const app = limitedApp({ RATE_LIMIT_PER_IP: '3', RATE_LIMIT_PER_TENANT: '100' });
    const ip = '203.0.113.60';
    const statuses = [];
    for (const org of [...orgSlugs, ...orgSlugs]) statuses.push((await lookup(app, ip, org)).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
  });

  it('takes the tenant from the query, else a JSON body; nothing else', () => {
    const req = (query: unknown, body?: unknown) => ({ query, body }) as never;
    expect(tenantOf(req({ org: 'Acme' }))).toBe('acme');
    expect(tenantOf(req({}, { org: 'acme' }))).toBe('acme');
    expect(tenantOf(req({ org: 'a' }, { org: 'b' }))).toBe('a');
    expect(tenantOf(req({ org: ['a', 'b'] }))).toBeUndefined();
    expect(tenantOf(req({}, [{ org: 'a' }]))).toBeUndefined();
    expect(tenantOf(req({}, 'org=a'))).toBeUndefined();
    expect(tenantOf(req({ org: '' }))).toBeUndefined();
    expect(tenantOf(req({ org: 'x'.repeat(129) }))).toBeUndefined();
  });

  it('applies to /api routes but health, stats, admin and guarded ones', () => {
    const guard = () => undefined;
    expect(isRateLimited({ url: '/api/leads/lookup' }, guard)).toBe(true);
    expect(isRateLimited({ url: '/api/session/login' }, guard)).toBe(true);
    expect(isRateLimited({ url: '/api/healthz' }, guard)).toBe(true);
    expect(isRateLimited({ url: '/api/health' }, guard)).toBe(false);
    expect(isRateLimited({ url: '/api/health/redis' }, guard)).toBe(false);
    expect(isRateLimited({ url: '/api/cache/stats' }, guard)).toBe(false);
    expect(isRateLimited({ url: '/api/admin/redis' }, guard)).toBe(false);
    expect(isRateLimited({ url: '/metrics' }, guard)).toBe(false);
    expect(isRateLimited({ url: '/' }, guard)).toBe(false);
    expect(isRateLimited({ url: '/api/jobs/:id/retry', preHandler: [guard] }, guard)).toBe(false);
    expect(isRateLimited({ url: '/api/jobs/:id/retry', preHandler: guard }, guard)).toBe(false);
    expect(isRateLimited({ url: '/api/x', config: { rateLimit: false } }, guard)).toBe(false);
  });
});

describe('rate limit: shared in Redis', () => {
  it('shares one counter between two instances, under keys prefixed with the environment', async () => {
    const env = { REDIS_URL: suite.server.url, RATE_LIMIT_PER_IP: '10' };
    const [a, b] = [limitedApp(env), limitedApp(env)];
    await Promise.all([waitForSharedCounters(a), waitForSharedCounters(b)]);
    const ip = '203.0.113.70';
    const remaining: string[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await lookup(i % 2 === 0 ? a : b, ip);
      expect(res.statusCode).toBe(200);
      remaining.push(res.headers['ratelimit-remaining'] as string);
    }
    expect(remaining).toEqual(['9', '8', '7', '6', '5', '4', '3', '2', '1', '0']);
    expect((await lookup(a, ip)).statusCode).toBe(429);
    expect((await lookup(b, ip)).statusCode).toBe(429);
    expect(await counter(ip)).toBe('12');

    // Another environment on the same Redis counts apart.
    const staging = appFromEnv({ ...env, RATE_LIMIT_ENABLED: 'true', LARDER_ENV: 'staging' }, undefined, {
      database: db,
    });
    await expect
      .poll(
        async () => {
          await lookup(staging, `198.51.100.${++throwaway}`);
          return (await suite.server.command('KEYS', 'larder:staging:rate-limit:ip:*')).includes(
            'larder:staging',
          );
        },
        { timeout: 10_000, interval: 20 },
      )
      .toBe(true);
    expect((await lookup(staging, ip)).statusCode).toBe(200);
  });

  it('keeps limiting in memory when Redis is killed mid-request, never hanging or failing', async () => {
    const env = { REDIS_URL: suite.server.url, RATE_LIMIT_PER_IP: '5' };
    const app = limitedApp(env);
    await waitForHealth(app, 'ok');
    await waitForSharedCounters(app);
    const ip = '203.0.113.80';
    expect((await lookup(app, ip)).statusCode).toBe(200);
    expect((await lookup(app, ip)).statusCode).toBe(200);

    // Requests wait on a stalled Redis, which then dies under them.
    suite.server.pause();
    const inFlight = Array.from({ length: 4 }, () => lookup(app, ip));
    await suite.server.kill();
    const answered = await Promise.all(inFlight);
    // The memory limiter took over with its own count: 4 of its 5 points.
    expect(answered.map((r) => r.statusCode)).toEqual([200, 200, 200, 200]);
    expect(answered.every((r) => r.headers['ratelimit-limit'] === '5')).toBe(true);

    // Redis gone: the limit still holds, and nothing fails or hangs.
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await lookup(app, ip)).statusCode);
    expect(statuses).toEqual([200, 429, 429, 429, 429, 429]);
    const refused = await lookup(app, ip);
    expect(refused.json().error.code).toBe('E_RATE_LIMITED');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await lookup(app, '203.0.113.81')).statusCode).toBe(200);
  });

  it('shares counters again once Redis is back', async () => {
    const env = { REDIS_URL: suite.server.url, RATE_LIMIT_PER_IP: '4' };
    const [a, b] = [limitedApp(env), limitedApp(env)];
    await Promise.all([waitForSharedCounters(a), waitForSharedCounters(b)]);
    await suite.server.kill();
    // While Redis is down each instance counts alone: 4 requests pass on each.
    const ip = '203.0.113.90';
    const down = [];
    for (const app of [a, b]) for (let i = 0; i < 5; i++) down.push((await lookup(app, ip)).statusCode);
    expect(down).toEqual([200, 200, 200, 200, 429, 200, 200, 200, 200, 429]);

    await suite.server.restart();
    await Promise.all([waitForSharedCounters(a), waitForSharedCounters(b)]);
    const fresh = '203.0.113.91';
    const up = [];
    for (let i = 0; i < 5; i++) up.push((await lookup(i % 2 === 0 ? a : b, fresh)).statusCode);
    expect(up).toEqual([200, 200, 200, 200, 429]);
    expect(await counter(fresh)).toBe('5');
  });

  it('starts and limits in memory while Redis is down from the beginning', async () => {
    await suite.server.kill();
    const app = limitedApp({ REDIS_URL: suite.server.url, RATE_LIMIT_PER_IP: '2' });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await lookup(app, '203.0.113.100')).statusCode);
    expect(statuses).toEqual([200, 200, 429]);
  });
});
