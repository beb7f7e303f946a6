import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { useRedisSuite } from '../support/suite.js';
import { adminHeaders, appFromEnv, closeApps, waitForHealth } from './helpers.js';

const suite = useRedisSuite();
// Registered after the suite's hooks, so it runs before them: apps close before the server is flushed.
afterEach(closeApps);
// A first start also connects the job queues; on a busy 2-core machine that can take seconds.
const HEALTHY_WITHIN_MS = 20_000;
vi.setConfig({ testTimeout: 60_000 });

async function redisApp(): Promise<FastifyInstance> {
  const app = appFromEnv({ REDIS_URL: suite.server.url });
  await waitForHealth(app, 'ok', HEALTHY_WITHIN_MS);
  return app;
}

function invalidate(app: FastifyInstance, payload: unknown, headers = adminHeaders()) {
  return app.inject({ method: 'POST', url: '/api/admin/invalidate', headers, payload: payload as object });
}

function redisSwitch(app: FastifyInstance, payload: unknown, headers = adminHeaders()) {
  return app.inject({ method: 'POST', url: '/api/admin/redis', headers, payload: payload as object });
}

/** Entries in two tenants of `kpi` (one tagged), and one in another namespace. */
async function fill(app: FastifyInstance) {
  const kpi = app.cache.namespace('kpi');
  await kpi.forTenant('org-1').set('revenue', 1, { tags: ['daily'] });
  await kpi.forTenant('org-1').set('users', 2);
  await kpi.forTenant('org-2').set('revenue', 3, { tags: ['daily'] });
  await app.cache.namespace('other').set('kept', 4, { tags: ['daily'] });
}

/** Which of the filled entries are still there, as seen by `app`. */
async function present(app: FastifyInstance) {
  const kpi = app.cache.namespace('kpi');
  return {
    org1Revenue: (await kpi.forTenant('org-1').get('revenue')) !== undefined,
    org1Users: (await kpi.forTenant('org-1').get('users')) !== undefined,
    org2Revenue: (await kpi.forTenant('org-2').get('revenue')) !== undefined,
    other: (await app.cache.namespace('other').get('kept')) !== undefined,
  };
}

describe('POST /api/admin/invalidate', () => {
  it('invalidates a tag in one tenant of a namespace, on every instance', async () => {
    const a = await redisApp();
    const b = await redisApp();
    await fill(a);
    expect(await present(b)).toEqual({ org1Revenue: true, org1Users: true, org2Revenue: true, other: true });
    const res = await invalidate(a, { namespace: 'kpi', tenant: 'org-1', tag: 'daily' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ namespace: 'kpi', tenant: 'org-1', tag: 'daily', action: 'deleteByTag' });
    const expected = { org1Revenue: false, org1Users: true, org2Revenue: true, other: true };
    expect(await present(a)).toEqual(expected);
    // b read (and kept in memory) the entries before: the bump reaches it over the bus.
    await expect.poll(() => present(b)).toEqual(expected);
  });

  it('invalidates a tag in a whole namespace, all tenants included', async () => {
    const app = await redisApp();
    await fill(app);
    expect((await invalidate(app, { namespace: 'kpi', tag: 'daily' })).statusCode).toBe(200);
    // Tags are scoped like keys: the namespace's tag is not the tenants' tag of the same name.
    expect(await present(app)).toEqual({
      org1Revenue: true,
      org1Users: true,
      org2Revenue: true,
      other: true,
    });
    expect((await invalidate(app, { namespace: 'other', tag: 'daily' })).statusCode).toBe(200);
    expect((await present(app)).other).toBe(false);
  });

  it('clears a tenant of a namespace, or the whole namespace', async () => {
    const app = await redisApp();
    await fill(app);
    const tenant = await invalidate(app, { namespace: 'kpi', tenant: 'org-1' });
    expect(tenant.json()).toEqual({ namespace: 'kpi', tenant: 'org-1', action: 'clear' });
    expect(await present(app)).toEqual({
      org1Revenue: false,
      org1Users: false,
      org2Revenue: true,
      other: true,
    });
    const all = await invalidate(app, { namespace: 'kpi' });
    expect(all.json()).toEqual({ namespace: 'kpi', action: 'clear' });
    expect(await present(app)).toEqual({
      org1Revenue: false,
      org1Users: false,
      org2Revenue: false,
      other: true,
    });
  });

  it('needs the admin token: none or a wrong one is a 401, and nothing is invalidated', async () => {
    const app = await redisApp();
    await fill(app);
    for (const headers of [{}, adminHeaders('wrong-token-0123456789')]) {
      const res = await invalidate(app, { namespace: 'kpi' }, headers);
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('E_UNAUTHORIZED');
    }
    expect(await present(app)).toEqual({
      org1Revenue: true,
      org1Users: true,
      org2Revenue: true,
      other: true,
    });
  });

  it('answers bad input with a 400 naming the field, and invalidates nothing', async () => {
    const app = await redisApp();
    await fill(app);
    const cases: Array<[unknown, RegExp]> = [
      [{}, /namespace/],
      [{ namespace: '' }, /namespace/],
      [{ namespace: 42 }, /namespace/],
      [{ namespace: 'kpi', tenant: 7 }, /tenant/],
      [{ namespace: 'kpi', tag: '' }, /tag/],
      [{ namespace: 'kpi', tags: 'daily' }, /tags/],
      [{ namespace: 'x'.repeat(300) }, /namespace/],
      [{ namespace: 'kpi', tenant: 'org-1', tag: 'x'.repeat(300) }, /tag/],
    ];
    for (const [payload, field] of cases) {
      const res = await invalidate(app, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.message, JSON.stringify(payload)).toMatch(field);
    }
    expect(await present(app)).toEqual({
      org1Revenue: true,
      org1Users: true,
      org2Revenue: true,
      other: true,
    });
  });

  it('still answers when Redis dies mid-request, and the invalidation holds on this instance', async () => {
    const app = await redisApp();
    await fill(app);
    suite.server.pause();
    const inFlight = [
      invalidate(app, { namespace: 'kpi', tenant: 'org-1', tag: 'daily' }),
      invalidate(app, { namespace: 'kpi', tenant: 'org-2' }),
    ];
    await suite.server.kill();
    const answered = await Promise.all(inFlight);
    expect(answered.map((r) => r.statusCode)).toEqual([200, 200]);
    const expected = { org1Revenue: false, org1Users: true, org2Revenue: false, other: true };
    expect(await present(app)).toEqual(expected);
    expect((await invalidate(app, { namespace: 'other' })).statusCode).toBe(200);
    expect((await present(app)).other).toBe(false);
  });
});

describe('POST /api/admin/redis', () => {
  it('switches Redis off and on: reads fall back to memory while off, health says so', async () => {
    const app = await redisApp();
    const off = await redisSwitch(app, { enabled: false });
    expect(off.statusCode).toBe(200);
    expect(off.json()).toEqual({
      redis: { enabled: true, switchedOff: true, circuit: 'closed', ready: true },
    });
    const before = app.cache.stats().totals.fallbacks;
    await app.cache.namespace('kpi').getOrSet('k', async () => 1);
    expect(app.cache.stats().totals.fallbacks).toBeGreaterThan(before);
    // Nothing was written to Redis while off.
    expect(await suite.server.command('EXISTS', 'larder:test:1:d:kpi:k')).toBe(':0\r\n');
    const health = (await app.inject({ method: 'GET', url: '/api/health' })).json();
    expect(health.status).toBe('degraded');
    expect(health.reason).toMatch(/switched off/);

    const on = await redisSwitch(app, { enabled: true });
    expect(on.json().redis).toMatchObject({ switchedOff: false });
    await waitForHealth(app, 'ok', HEALTHY_WITHIN_MS);
    // The write kept while off is replayed once Redis is back on.
    await expect.poll(() => suite.server.command('EXISTS', 'larder:test:1:d:kpi:k')).toBe(':1\r\n');
    // Switching twice is harmless.
    expect((await redisSwitch(app, { enabled: true })).statusCode).toBe(200);
  });

  it('needs the admin token, and answers bad input with a 400 naming `enabled`', async () => {
    const app = await redisApp();
    const anonymous = await redisSwitch(app, { enabled: false }, {});
    expect(anonymous.statusCode).toBe(401);
    expect(app.cache.stats().redis.switchedOff).toBe(false);
    for (const payload of [
      {},
      { enabled: 'false' },
      { enabled: 0 },
      { enabled: null },
      { enabled: true, extra: 1 },
    ]) {
      const res = await redisSwitch(app, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.message).toMatch(/enabled|extra/);
    }
    expect(app.cache.stats().redis.switchedOff).toBe(false);
  });

  it('answers while Redis is dead, and on a memory-only app says Redis is not enabled', async () => {
    const app = await redisApp();
    await suite.server.kill();
    expect((await redisSwitch(app, { enabled: false })).json().redis).toMatchObject({ switchedOff: true });
    expect((await redisSwitch(app, { enabled: true })).json().redis).toMatchObject({ switchedOff: false });

    const memoryOnly = appFromEnv({});
    const res = await redisSwitch(memoryOnly, { enabled: false });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      redis: { enabled: false, switchedOff: false, circuit: 'disabled', ready: false },
    });
  });
});
